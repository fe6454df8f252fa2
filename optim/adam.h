// Adam and AdamW, with PyTorch's exact update (Kingma & Ba, 2015, "Adam: A Method for Stochastic
// Optimization"; AdamW: Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization").
#pragma once

#include "optim/optimizer.h"

namespace xgrad::optim {

struct AdamOptions {
    AdamOptions& lr(double v) { lr_ = v; return *this; }
    AdamOptions& betas(double beta1, double beta2) { beta1_ = beta1, beta2_ = beta2; return *this; }
    AdamOptions& eps(double v) { eps_ = v; return *this; }
    AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
    AdamOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
    AdamOptions& maximize(bool v) { maximize_ = v; return *this; }

    double lr_ = 1e-3, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0.0;
    bool amsgrad_ = false, maximize_ = false;
};

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
    const AdamOptions& options() const { return options_; }

protected:
    Adam(std::string name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay);

private:
    void dense_step(const Group& group, const Tensor& p, State& state);
    void sparse_step(const Group& group, const Tensor& p, State& state);

    AdamOptions options_;
    bool decoupled_;   // AdamW: p *= 1 - lr weight_decay, instead of adding weight_decay p to g
};

// AdamW: decoupled weight decay, p = p (1 - lr weight_decay), then the Adam update without it.
// Its default weight_decay is 0.01, as PyTorch's.
class AdamW : public Adam {
public:
    AdamW(std::vector<Tensor> params, AdamOptions options = AdamOptions().weight_decay(0.01));
    AdamW(std::vector<ParamGroup> groups, AdamOptions options = AdamOptions().weight_decay(0.01));
};

}  // namespace xgrad::optim
