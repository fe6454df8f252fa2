// The fused Adam update, dense and row-sparse; AdamW and SparseAdam on top of it.
#include "optim/adam.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/autograd.h"
#include "core/check.h"
#include "core/parallel.h"

namespace xgrad::optim {

namespace {

enum Slot { exp_avg, exp_avg_sq, max_exp_avg_sq };

void validate(const std::string& name, const AdamOptions& o)
{
    check_option(o.lr_ > 0.0, name, "lr", o.lr_, "positive");
    check_option(o.beta1_ >= 0.0 && o.beta1_ < 1.0, name, "beta1", o.beta1_, "in [0, 1)");
    check_option(o.beta2_ >= 0.0 && o.beta2_ < 1.0, name, "beta2", o.beta2_, "in [0, 1)");
    check_option(o.eps_ >= 0.0, name, "eps", o.eps_, "non-negative");
    check_option(*o.weight_decay_ >= 0.0, name, "weight_decay", *o.weight_decay_, "non-negative");
}

// The options with weight_decay filled in by the optimizer's default when they leave it unset.
AdamOptions with_weight_decay(AdamOptions options, double default_weight_decay)
{
    if (!options.weight_decay_) options.weight_decay_ = default_weight_decay;
    return options;
}

AdamOptions from_sparse(const SparseAdamOptions& o)
{
    return AdamOptions().lr(o.lr_).betas(o.beta1_, o.beta2_).eps(o.eps_).weight_decay(0.0);
}

std::vector<ParamGroup> one_group(std::vector<Tensor> params) { return {ParamGroup{std::move(params)}}; }

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(one_group(std::move(params)), options) {}

Adam::Adam(std::string name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(name, std::move(groups), options.lr_, options.weight_decay_.value(),
                {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
      options_(options), decoupled_(decoupled_weight_decay)
{
    validate(name, options);
    for (std::size_t g = 0; g < param_groups().size(); ++g) {
        const GroupOptions& own = param_groups()[g].options;
        const std::string who = name + " group " + std::to_string(g);
        for (auto [set, option] : {std::pair{own.momentum_.has_value(), "momentum"},
                                   std::pair{own.dampening_.has_value(), "dampening"},
                                   std::pair{own.nesterov_.has_value(), "nesterov"}}) {
            XGRAD_CHECK(!set, who, " sets ", option, ", which ", name, " does not have (it is SGD's)");
        }
        validate(who, options_for(param_groups()[g]));
    }
}

AdamOptions Adam::options_for(const Group& group) const
{
    AdamOptions o = options_;
    const GroupOptions& own = group.options;
    o.lr(group.lr).weight_decay(group.weight_decay);
    if (own.betas_) o.betas(own.betas_->first, own.betas_->second);
    if (own.eps_) o.eps(*own.eps_);
    if (own.amsgrad_) o.amsgrad(*own.amsgrad_);
    if (own.maximize_) o.maximize(*own.maximize_);
    return o;
}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam("Adam", std::move(groups), with_weight_decay(options, 0.0), false)
{
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options) : AdamW(one_group(std::move(params)), options) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Adam("AdamW", std::move(groups), with_weight_decay(options, 0.01), true)   // torch.optim.AdamW's default
{
}

SparseAdam::SparseAdam(std::vector<Tensor> params, SparseAdamOptions options)
    : SparseAdam(one_group(std::move(params)), options)
{
}
SparseAdam::SparseAdam(std::vector<ParamGroup> groups, SparseAdamOptions options)
    : Adam("SparseAdam", std::move(groups), from_sparse(options), false)
{
    for (std::size_t g = 0; g < param_groups().size(); ++g) {
        const double decay = param_groups()[g].weight_decay;
        XGRAD_CHECK(decay == 0.0, "SparseAdam: group ", g, " sets weight_decay ", decay,
                    ", which SparseAdam does not have (PyTorch's has none either); use AdamW for decayed parameters");
        const GroupOptions& own = param_groups()[g].options;
        XGRAD_CHECK(!own.amsgrad_.value_or(false) && !own.maximize_.value_or(false), "SparseAdam: group ", g,
                    " sets amsgrad or maximize, which SparseAdam does not have; use Adam for this group");
    }
}

void SparseAdam::step()
{
    // Every gradient is checked before any parameter moves, so a refused step changes nothing.
    for (std::size_t g = 0; g < param_groups().size(); ++g) {
        const auto& params = param_groups()[g].params;
        for (std::size_t i = 0; i < params.size(); ++i) {
            XGRAD_CHECK(params[i].sparse_grad() || !params[i].grad().defined(), "SparseAdam: parameter ", i, " of group ", g,
                        " (shape ", shape_str(params[i].shape()), ") has a dense gradient; SparseAdam takes only row-sparse ",
                        "gradients (nn::Embedding with sparse), so use Adam for this parameter");
        }
    }
    check_before_step();
    NoGradGuard no_grad;
    std::size_t k = 0;
    for (const Group& group : param_groups()) {
        for (const Tensor& p : group.params) {
            State& state = states()[k++];
            if (p.sparse_grad()) sparse_step(group, p, state);   // no gradient this step: skipped
        }
    }
}

void Adam::step()
{
    check_before_step();
    NoGradGuard no_grad;
    std::size_t k = 0;
    for (const Group& group : param_groups()) {
        for (const Tensor& p : group.params) {
            State& state = states()[k++];
            if (p.sparse_grad()) {
                sparse_step(group, p, state);
            } else if (p.grad().defined()) {
                dense_step(group, p, state);
            }                                                   // no gradient this step: skipped
        }
    }
}

// p in its own dtype: float32, or float64 (the same update in double)
void Adam::dense_step(const Group& group, const Tensor& p, State& state)
{
    compute_as(p, [&]<class T>(Tag<T>) { dense_update<T>(group, p, state); });
}

template <class T>
void Adam::dense_update(const Group& group, const Tensor& p, State& state)
{
    const std::size_t n = p.numel();
    const std::int64_t t = ++state.step;
    const AdamOptions o = options_for(group);
    // The scalars exactly as PyTorch forms them: in double, then used as T (float in the float32 kernels).
    const auto beta1 = static_cast<T>(o.beta1_), beta2 = static_cast<T>(o.beta2_);
    const auto one_minus_beta1 = static_cast<T>(1.0 - o.beta1_);
    const auto one_minus_beta2 = static_cast<T>(1.0 - o.beta2_);
    const double bias_correction1 = 1.0 - std::pow(o.beta1_, double(t));
    const double bias_correction2 = 1.0 - std::pow(o.beta2_, double(t));
    const auto step_size = static_cast<T>(group.lr / bias_correction1);
    const auto bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    const auto eps = static_cast<T>(o.eps_);
    const auto weight_decay = static_cast<T>(group.weight_decay);
    const auto decay_factor = static_cast<T>(1.0 - group.lr * group.weight_decay);
    const bool decoupled = decoupled_, coupled = !decoupled_ && group.weight_decay != 0.0;
    const bool maximize = o.maximize_, amsgrad = o.amsgrad_;

    T* param = p.mutable_data_ptr<T>();
    const ValuesOf<T> g = p.grad().values<T>();
    const T* grad = g.data();
    T* m = state.buffer<T>(exp_avg, p);
    T* v = state.buffer<T>(exp_avg_sq, p);
    T* v_max = amsgrad ? state.buffer<T>(max_exp_avg_sq, p) : nullptr;
    // The loop, compiled once per combination of options so that each version is branch-free and
    // vectorises: read p, g, m, v once; write p, m, v once.
    auto fused = [&]<bool Maximize, bool Decoupled, bool Coupled, bool Amsgrad>() {
        // everything by value: a store through the parameter pointer must not force reloads
        parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) {
            T* __restrict pp = param;
            const T* __restrict gp = grad;
            T* __restrict mp = m;
            T* __restrict vp = v;
            for (std::size_t i = begin; i < end; ++i) {
                T g = Maximize ? -gp[i] : gp[i];
                if constexpr (Decoupled) pp[i] *= decay_factor;           // AdamW: p *= 1 - lr wd
                if constexpr (Coupled) g = g + weight_decay * pp[i];      // Adam: g += wd p
                mp[i] = mp[i] * beta1 + one_minus_beta1 * g;              // m = beta1 m + (1 - beta1) g
                vp[i] = vp[i] * beta2 + one_minus_beta2 * g * g;          // v = beta2 v + (1 - beta2) g^2
                T second = vp[i];
                if constexpr (Amsgrad) second = v_max[i] = std::max(v_max[i], vp[i]);   // running max of v
                const T denom = std::sqrt(second) / bias_correction2_sqrt + eps;     // sqrt(v_hat) + eps
                pp[i] = pp[i] + (-step_size * mp[i]) / denom;             // p -= lr / bc1 * m / denom
            }
        });
    };
    auto with_amsgrad = [&]<bool Maximize, bool Decoupled, bool Coupled>() {
        amsgrad ? fused.template operator()<Maximize, Decoupled, Coupled, true>()
                : fused.template operator()<Maximize, Decoupled, Coupled, false>();
    };
    auto with_decay = [&]<bool Maximize>() {
        if (decoupled) with_amsgrad.template operator()<Maximize, true, false>();
        else if (coupled) with_amsgrad.template operator()<Maximize, false, true>();
        else with_amsgrad.template operator()<Maximize, false, false>();
    };
    maximize ? with_decay.template operator()<true>() : with_decay.template operator()<false>();
}

void Adam::sparse_step(const Group& group, const Tensor& p, State& state)
{
    const AdamOptions o = options_for(group);
    XGRAD_CHECK(!o.amsgrad_ && !o.maximize_ && group.weight_decay == 0.0, name(),   // AdamW without decay is Adam
          ": a sparse gradient (nn::Embedding with sparse) takes PyTorch's SparseAdam update, which has no ",
          "amsgrad, maximize or weight_decay; turn those off for this parameter's group");
    const std::int64_t t = ++state.step;
    const RowSparse& g = *p.sparse_grad();
    const std::size_t C = p.shape()[1];
    const auto one_minus_beta1 = static_cast<float>(1.0 - o.beta1_);
    const auto one_minus_beta2 = static_cast<float>(1.0 - o.beta2_);
    const double bias_correction1 = 1.0 - std::pow(o.beta1_, double(t));
    const double bias_correction2 = 1.0 - std::pow(o.beta2_, double(t));
    const auto step_size = static_cast<float>(group.lr * std::sqrt(bias_correction2) / bias_correction1);
    const auto eps = static_cast<float>(o.eps_);

    XGRAD_CHECK(p.dtype() == kFloat32, name(), ": a row-sparse gradient updates float32 parameters only, got ", dtype_name(p.dtype()));
    float* param = p.mutable_data_ptr();
    float* m = state.buffer<float>(exp_avg, p);
    float* v = state.buffer<float>(exp_avg_sq, p);
    parallel_rows(g.rows.size(), C, [&](std::size_t begin, std::size_t end) {
        for (std::size_t k = begin; k < end; ++k) {
            const std::size_t offset = static_cast<std::size_t>(g.rows[k]) * C;
            const float* grad = g.values.data() + k * C;
            for (std::size_t c = offset, j = 0; j < C; ++c, ++j) {
                const float m_update = (grad[j] - m[c]) * one_minus_beta1;              // m += (1 - b1)(g - m)
                const float v_update = (grad[j] * grad[j] - v[c]) * one_minus_beta2;    // v += (1 - b2)(g^2 - v)
                const float numer = m_update + m[c];
                const float denom = std::sqrt(v_update + v[c]) + eps;
                m[c] += m_update;
                v[c] += v_update;
                param[c] += -step_size * (numer / denom);
            }
        }
    });
}

}  // namespace xgrad::optim
