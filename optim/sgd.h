// SGD with momentum, dampening, Nesterov momentum and weight decay, as torch.optim.SGD.
#pragma once

#include "optim/optimizer.h"

namespace xgrad::optim {

struct SGDOptions {
    explicit SGDOptions(double lr) : lr_(lr) {}   // as PyTorch, there is no default learning rate
    SGDOptions& momentum(double v) { momentum_ = v; return *this; }
    SGDOptions& dampening(double v) { dampening_ = v; return *this; }
    SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
    SGDOptions& nesterov(bool v) { nesterov_ = v; return *this; }
    SGDOptions& maximize(bool v) { maximize_ = v; return *this; }

    double lr_, momentum_ = 0.0, dampening_ = 0.0, weight_decay_ = 0.0;
    bool nesterov_ = false, maximize_ = false;
};

// For each parameter with a gradient g:
//   g = -g if maximize;  g = g + weight_decay p
//   b = g at the first step, then b = momentum b + (1 - dampening) g     (when momentum != 0)
//   g = g + momentum b if nesterov, else g = b
//   p = p - lr g
class SGD : public Optimizer {
public:
    SGD(std::vector<Tensor> params, SGDOptions options);
    SGD(std::vector<ParamGroup> groups, SGDOptions options);
    void step() override;
    // The options a group's parameters are stepped with: the optimizer's, with the group's own on top.
    SGDOptions options_for(const Group& group) const;

private:
    static void validate(const std::string& who, const SGDOptions& options);
    template <class T>
    static void update(const SGDOptions& o, const Tensor& p, State& state);
    SGDOptions options_;
};

}  // namespace xgrad::optim
