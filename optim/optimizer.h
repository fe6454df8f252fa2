// optim::Optimizer: parameter groups, zero_grad, and per-parameter state that saves and loads.
//
//     optim::Adam adam({{decay_params, {}}, {no_decay_params, optim::GroupOptions().weight_decay(0)}},
//                      optim::AdamOptions().lr(3e-4).weight_decay(0.1));
//     adam.zero_grad(); loss.backward(); adam.step();
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace xgrad::optim {

// What a group may set differently from the optimizer's options, as the keys of PyTorch's
// param_groups. Unset means the optimizer's value. An optimizer refuses a setting it does not have
// (momentum for Adam, betas for SGD), naming the group.
struct GroupOptions {
    GroupOptions& lr(double v) { lr_ = v; return *this; }
    GroupOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
    GroupOptions& maximize(bool v) { maximize_ = v; return *this; }
    // Adam, AdamW, SparseAdam
    GroupOptions& betas(double beta1, double beta2) { betas_ = {beta1, beta2}; return *this; }
    GroupOptions& eps(double v) { eps_ = v; return *this; }
    GroupOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
    // SGD
    GroupOptions& momentum(double v) { momentum_ = v; return *this; }
    GroupOptions& dampening(double v) { dampening_ = v; return *this; }
    GroupOptions& nesterov(bool v) { nesterov_ = v; return *this; }

    std::optional<double> lr_, weight_decay_;
    std::optional<bool> maximize_;
    std::optional<std::pair<double, double>> betas_;
    std::optional<double> eps_;
    std::optional<bool> amsgrad_;
    std::optional<double> momentum_, dampening_;
    std::optional<bool> nesterov_;
};

struct ParamGroup {
    std::vector<Tensor> params;
    GroupOptions options = {};
};

class Optimizer {
public:
    struct Group {
        std::vector<Tensor> params;
        double lr;             // schedules change this
        double weight_decay;
        double initial_lr;     // the lr the group started with; schedules scale from it
        GroupOptions options;  // what the group set itself (lr and weight_decay are resolved above)
    };

    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    virtual void step() = 0;
    void zero_grad(bool set_to_none = true);   // every parameter of every group
    std::vector<Group>& param_groups() { return groups_; }
    const std::vector<Group>& param_groups() const { return groups_; }
    const std::string& name() const { return name_; }

    // The state as named arrays and metadata, under "optimizer.": step counts, moments, group lrs.
    // load_state checks the file against this optimizer before changing anything. Virtual for an
    // optimizer whose state lives elsewhere (distributed::ZeroRedundancyOptimizer, sharded over ranks).
    virtual void save_state(io::NamedTensors& tensors, io::Metadata& metadata) const;
    virtual void load_state(const io::Safetensors& file, const std::string& path);

protected:
    // `slots`: the names of the per-parameter buffers ("exp_avg", ...), allocated on first use.
    Optimizer(std::string name, std::vector<ParamGroup> groups, double lr, double weight_decay,
              std::vector<std::string> slots);

    struct State {
        std::int64_t step = 0;        // steps this parameter has taken (PyTorch counts per parameter)
        std::vector<std::optional<Tensor>> slots;   // as named by slot_names_, made on first use, in p's dtype

        // The buffer `slot`, made as zeros shaped like `p` the first time it is asked for. T is p's
        // element type: float, or double for a float64 parameter.
        template <class T>
        T* buffer(std::size_t slot, const Tensor& p)
        {
            if (!slots[slot]) slots[slot] = zeros(p.shape(), p.dtype());
            return slots[slot]->mutable_data_ptr<T>();
        }
    };
    std::vector<State>& states() { return states_; }   // one per parameter, groups in order

    // Before a step changes anything: every parameter contiguous, with a gradient of its own shape,
    // and state made for that shape. A parameter given data of another shape (p.data = t, set_data)
    // since the state was made is refused here, by name, rather than read past its buffers.
    void check_before_step() const;

private:
    std::string name_;
    std::vector<Group> groups_;
    std::vector<std::string> slot_names_;
    std::vector<State> states_;
};

// Throws "Adam: lr must be positive, got -1" style errors for the options every optimizer shares.
void check_option(bool ok, const std::string& optimizer, const char* option, double value, const char* expected);

}  // namespace xgrad::optim
