// The fused SGD update.
#include "optim/sgd.h"

#include <string>
#include <utility>

#include "core/autograd.h"
#include "core/check.h"
#include "core/parallel.h"

namespace xgrad::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(std::vector<ParamGroup>{{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), options.lr_, options.weight_decay_, {"momentum_buffer"}), options_(options)
{
    validate("SGD", options);
    for (std::size_t g = 0; g < param_groups().size(); ++g) {
        const GroupOptions& own = param_groups()[g].options;
        const std::string who = "SGD group " + std::to_string(g);
        for (auto [set, option] : {std::pair{own.betas_.has_value(), "betas"}, std::pair{own.eps_.has_value(), "eps"},
                                   std::pair{own.amsgrad_.has_value(), "amsgrad"}}) {
            XGRAD_CHECK(!set, who, " sets ", option, ", which SGD does not have (it is Adam's)");
        }
        validate(who, options_for(param_groups()[g]));
    }
}

void SGD::validate(const std::string& who, const SGDOptions& o)
{
    check_option(o.lr_ > 0.0, who, "lr", o.lr_, "positive");
    check_option(o.momentum_ >= 0.0, who, "momentum", o.momentum_, "non-negative");
    check_option(o.weight_decay_ >= 0.0, who, "weight_decay", o.weight_decay_, "non-negative");
    XGRAD_CHECK(!o.nesterov_ || (o.momentum_ > 0.0 && o.dampening_ == 0.0),
          who, ": nesterov needs a positive momentum and zero dampening, got momentum ", o.momentum_,
          " and dampening ", o.dampening_);
}

SGDOptions SGD::options_for(const Group& group) const
{
    SGDOptions o = options_;
    const GroupOptions& own = group.options;
    o.lr_ = group.lr;
    o.weight_decay(group.weight_decay);
    if (own.momentum_) o.momentum(*own.momentum_);
    if (own.dampening_) o.dampening(*own.dampening_);
    if (own.nesterov_) o.nesterov(*own.nesterov_);
    if (own.maximize_) o.maximize(*own.maximize_);
    return o;
}

// One parameter's update, in its dtype T (float or double), with the scalars as PyTorch forms them
template <class T>
void SGD::update(const SGDOptions& o, const Tensor& p, State& state)
{
    const auto lr = static_cast<T>(o.lr_), weight_decay = static_cast<T>(o.weight_decay_);
    const auto momentum = static_cast<T>(o.momentum_);
    const auto one_minus_dampening = static_cast<T>(1.0 - o.dampening_);
    const bool maximize = o.maximize_, nesterov = o.nesterov_;
    const bool first = !state.slots[0].has_value();   // the momentum buffer starts as g
    ++state.step;
    T* __restrict param = p.mutable_data_ptr<T>();
    const ValuesOf<T> g = p.grad().values<T>();
    const T* __restrict grad = g.data();
    T* __restrict buffer = momentum != T(0) ? state.buffer<T>(0, p) : nullptr;
    parallel_rows(p.numel(), 1, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            T g = maximize ? -grad[i] : grad[i];
            if (weight_decay != T(0)) g = g + weight_decay * param[i];                  // g += wd p
            if (buffer) {
                buffer[i] = first ? g : buffer[i] * momentum + one_minus_dampening * g;   // b
                g = nesterov ? g + momentum * buffer[i] : buffer[i];
            }
            param[i] = param[i] + -lr * g;                                               // p -= lr g
        }
    });
}

void SGD::step()
{
    check_before_step();
    NoGradGuard no_grad;
    std::size_t k = 0;
    for (const Group& group : param_groups()) {
        const SGDOptions o = options_for(group);
        for (const Tensor& p : group.params) {
            State& state = states()[k++];
            XGRAD_CHECK(p.sparse_grad() == nullptr, "SGD: sparse gradients are not supported; use Adam, or a dense embedding");
            if (!p.grad().defined()) continue;
            compute_as(p, [&]<class T>(Tag<T>) { update<T>(o, p, state); });
        }
    }
}

}  // namespace xgrad::optim
