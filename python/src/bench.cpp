// For bench/python_bench.py: the W4 step (bench/workloads.h: tok + pos -> Linear head -> cross-entropy
// -> Adam, (B, T) = (32, 64), V 65, C 64) timed in C++ inside the same process, so that "W4 from Python"
// is compared with "W4 from C++" in one run on one machine state.
#include <algorithm>
#include <chrono>

#include <xtensor/xbuilder.hpp>

#include "python/src/pytensor.h"

namespace xgrad::python {

void bind_bench(py::module_& m)
{
    m.def("_bench_w4_cpp", [](std::size_t steps, std::size_t rounds) {
        py::gil_scoped_release release;
        const std::size_t V = 65, C = 64, B = 32, T = 64;
        manual_seed(6);
        nn::Embedding tok(V, C), pos(T, C);
        nn::Linear head(C, V);
        std::vector<Tensor> params = {tok.weight, pos.weight, head.weight, head.bias};
        optim::Adam adam(params);
        Generator rng(7);
        IdArray x = IdArray::from_shape({B, T}), y = IdArray::from_shape({B, T});
        for (auto& v : x) v = static_cast<std::int64_t>(rng.below(V));
        for (auto& v : y) v = static_cast<std::int64_t>(rng.below(V));
        const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(T));
        std::vector<double> per_step;
        float sink = 0;
        for (std::size_t r = 0; r < rounds; ++r) {
            const auto start = std::chrono::steady_clock::now();
            for (std::size_t s = 0; s < steps; ++s) {
                adam.zero_grad();
                Tensor loss = nn::functional::cross_entropy(head.forward(tok.forward(x) + pos.forward(positions)), y);
                loss.backward();
                adam.step();
                sink += loss.item();
            }
            per_step.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / double(steps));
        }
        std::sort(per_step.begin(), per_step.end());
        return std::make_pair(per_step[per_step.size() / 2], double(sink));
    }, py::arg("steps"), py::arg("rounds"));
}

}  // namespace xgrad::python
