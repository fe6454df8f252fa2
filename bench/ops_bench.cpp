// Times a handful of core ops at toy and medium sizes: used to decide build flags (-march=native,
// xsimd) by measurement. Prints the median of repeated runs in microseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "xgrad.h"

using namespace xgrad;

static double median_us(const std::function<void()>& fn, int repeats = 41)
{
    for (int i = 0; i < 3; ++i) fn();   // warm-up
    std::vector<double> t;
    for (int i = 0; i < repeats; ++i) {
        auto start = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(t.begin(), t.begin() + repeats / 2, t.end());
    return t[repeats / 2];
}

int main()
{
    set_num_threads(1);
    manual_seed(0);
    struct Row {
        const char* name;
        std::function<void()> fn;
    };
    Tensor a = randn({32, 64, 64}, true), b = randn({32, 64, 64}), bias = randn({64});
    Tensor big = randn({256, 1024}, true);
    Tensor x = randn({512, 256}), w = randn({256, 256}, true);
    std::vector<Row> rows = {
        {"add (32,64,64) fwd+bwd", [&] { sum(a + b).backward(); }},
        {"mul broadcast bias fwd+bwd", [&] { sum(a * bias).backward(); }},
        {"exp (32,64,64) fwd+bwd", [&] { sum(exp(a)).backward(); }},
        {"tanh (32,64,64) fwd+bwd", [&] { sum(tanh(a)).backward(); }},
        {"gelu (256,1024) fwd+bwd", [&] { sum(gelu(big, "tanh")).backward(); }},
        {"log_softmax (256,1024) fwd+bwd", [&] { sum(log_softmax(big)).backward(); }},
        {"sum axis 0 (256,1024) fwd+bwd", [&] { sum(sum(big, {0})).backward(); }},
        {"matmul (512,256)@(256,256) fwd+bwd", [&] { sum(matmul(x, w)).backward(); }},
        {"tiny: 10 ops on (4,4)", [&] {
             Tensor t = ones({4, 4}, true);
             Tensor y = t;
             for (int i = 0; i < 10; ++i) y = y * 1.01f;
             sum(y).backward();
         }},
    };
    for (auto& r : rows) std::printf("%-40s %10.1f us\n", r.name, median_us(r.fn));
}
