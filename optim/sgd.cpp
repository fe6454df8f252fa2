// The fused SGD update.
#include "optim/sgd.h"

#include "core/check.h"
#include "core/parallel.h"

namespace xgrad::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(std::vector<ParamGroup>{{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), options.lr_, options.weight_decay_, {"momentum_buffer"}), options_(options)
{
    check_option(options.lr_ > 0.0, "SGD", "lr", options.lr_, "positive");
    check_option(options.momentum_ >= 0.0, "SGD", "momentum", options.momentum_, "non-negative");
    check_option(options.weight_decay_ >= 0.0, "SGD", "weight_decay", options.weight_decay_, "non-negative");
    XGRAD_CHECK(!options.nesterov_ || (options.momentum_ > 0.0 && options.dampening_ == 0.0),
          "SGD: nesterov needs a positive momentum and zero dampening, got momentum ", options.momentum_,
          " and dampening ", options.dampening_);
}

void SGD::step()
{
    NoGradGuard no_grad;
    std::size_t k = 0;
    const auto momentum = static_cast<float>(options_.momentum_);
    const auto one_minus_dampening = static_cast<float>(1.0 - options_.dampening_);
    for (const Group& group : param_groups()) {
        const auto lr = static_cast<float>(group.lr), weight_decay = static_cast<float>(group.weight_decay);
        for (const Tensor& p : group.params) {
            State& state = states()[k++];
            XGRAD_CHECK(p.sparse_grad() == nullptr, "SGD: sparse gradients are not supported; use Adam, or a dense embedding");
            if (!p.grad().defined()) continue;
            const bool first = !state.slots[0].has_value();   // the momentum buffer starts as g
            ++state.step;
            float* __restrict param = p.data().data();
            const float* __restrict grad = p.grad().data().data();
            float* __restrict buffer = momentum != 0.0f ? state.buffer(0, p) : nullptr;
            const bool maximize = options_.maximize_, nesterov = options_.nesterov_;
            parallel_rows(p.numel(), 1, [&](std::size_t begin, std::size_t end) {
                for (std::size_t i = begin; i < end; ++i) {
                    float g = maximize ? -grad[i] : grad[i];
                    if (weight_decay != 0.0f) g = g + weight_decay * param[i];           // g += wd p
                    if (buffer) {
                        buffer[i] = first ? g : buffer[i] * momentum + one_minus_dampening * g;   // b
                        g = nesterov ? g + momentum * buffer[i] : buffer[i];
                    }
                    param[i] = param[i] + -lr * g;                                       // p -= lr g
                }
            });
        }
    }
}

}  // namespace xgrad::optim
