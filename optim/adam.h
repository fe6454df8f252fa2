// Adam, AdamW and SparseAdam, with PyTorch's exact updates (Kingma & Ba, 2015, "Adam: A Method for
// Stochastic Optimization"; AdamW: Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization").
#pragma once

#include <optional>

#include "optim/optimizer.h"

namespace xgrad::optim {

struct AdamOptions {
    AdamOptions& lr(double v) { lr_ = v; return *this; }
    AdamOptions& betas(double beta1, double beta2) { beta1_ = beta1, beta2_ = beta2; return *this; }
    AdamOptions& eps(double v) { eps_ = v; return *this; }
    AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
    AdamOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
    AdamOptions& maximize(bool v) { maximize_ = v; return *this; }

    double lr_ = 1e-3, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8;
    // Unset means the optimizer's own default, as in PyTorch: Adam 0, AdamW 0.01. The default lives
    // here rather than in a default argument so that AdamW(params, AdamOptions().lr(1e-3)) gets it too.
    std::optional<double> weight_decay_;
    bool amsgrad_ = false, maximize_ = false;
};

// libtorch's name for AdamW's options. The same struct: only weight_decay's default differs, and
// that is AdamW's to fill in.
using AdamWOptions = AdamOptions;

// For each parameter with a gradient g, at its step t = 1, 2, ...:
//   g = -g if maximize;  g = g + weight_decay p          (Adam: L2 penalty in the gradient)
//   m = beta1 m + (1 - beta1) g                            first moment
//   v = beta2 v + (1 - beta2) g^2                          second moment
//   v_max = max(v_max, v) if amsgrad, and used for v below
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// One fused pass per parameter reads p, g, m, v once and writes p, m, v once.
// A row-sparse gradient (nn::Embedding with sparse) updates only its rows, as PyTorch's SparseAdam:
//   m_r += (1 - beta1)(g_r - m_r);  v_r += (1 - beta2)(g_r^2 - v_r)
//   p_r -= lr sqrt(1 - beta2^t) / (1 - beta1^t) * m_r / (sqrt(v_r) + eps)
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
    void step() override;
    const AdamOptions& options() const { return options_; }   // weight_decay_ always set here
    // The options a group's parameters are stepped with: the optimizer's, with the group's own on top.
    AdamOptions options_for(const Group& group) const;

protected:
    // `options.weight_decay_` must be set: each public constructor fills in its own default first.
    Adam(std::string name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay);
    void sparse_step(const Group& group, const Tensor& p, State& state);

private:
    void dense_step(const Group& group, const Tensor& p, State& state);
    template <class T>
    void dense_update(const Group& group, const Tensor& p, State& state);

    AdamOptions options_;
    bool decoupled_;   // AdamW: p *= 1 - lr weight_decay, instead of adding weight_decay p to g
};

// AdamW: decoupled weight decay, p = p (1 - lr weight_decay), then the Adam update without it.
// Its weight_decay is 0.01 unless the options set one, as torch.optim.AdamW(lr=...).
class AdamW : public Adam {
public:
    AdamW(std::vector<Tensor> params, AdamWOptions options = {});
    AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
};

struct SparseAdamOptions {
    SparseAdamOptions& lr(double v) { lr_ = v; return *this; }
    SparseAdamOptions& betas(double beta1, double beta2) { beta1_ = beta1, beta2_ = beta2; return *this; }
    SparseAdamOptions& eps(double v) { eps_ = v; return *this; }

    double lr_ = 1e-3, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8;
};

// torch.optim.SparseAdam: for row-sparse gradients only (nn::Embedding with sparse), each step moves
// only the rows it touched, by the row-sparse update above. No weight decay, amsgrad or maximize.
// A dense gradient is an error: such a parameter belongs in an Adam.
class SparseAdam : public Adam {
public:
    SparseAdam(std::vector<Tensor> params, SparseAdamOptions options = {});
    SparseAdam(std::vector<ParamGroup> groups, SparseAdamOptions options = {});
    void step() override;
};

}  // namespace xgrad::optim
