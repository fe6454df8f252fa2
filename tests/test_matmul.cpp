// matmul against an independent reference: xtensor-blas's linalg::dot, forward and backward.
#include <catch2/catch.hpp>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "close.h"
#include "xgrad.h"

using namespace xgrad;
using xgrad::testing::check_close;
using Catch::Matchers::Contains;

namespace {

Array dot(const Array& a, const Array& b) { return xt::linalg::dot(a, b); }

Array matrix(std::size_t b, std::size_t i, const Array& a)   // a[b] of a 3-D array, or a itself if 2-D
{
    if (a.dimension() == 2) return a;
    return xt::view(a, b, xt::all(), xt::all());
}

}  // namespace

TEST_CASE("matmul matches xtensor-blas for 2-D, batched and broadcast operands, forward and backward")
{
    struct Shapes {
        Shape a, b;
    };
    for (auto [sa, sb] : std::vector<Shapes>{{{3, 4}, {4, 5}},
                                              {{2, 3, 4}, {2, 4, 5}},
                                              {{2, 3, 4}, {4, 5}},
                                              {{3, 4}, {2, 4, 5}},
                                              {{1, 3, 4}, {3, 4, 5}},
                                              {{3, 7, 6}, {1, 6, 2}}}) {
        INFO(shape_str(sa) << " @ " << shape_str(sb));
        manual_seed(5);
        Tensor a = randn(sa, true), b = randn(sb, true);
        Tensor y = matmul(a, b);
        std::size_t batch = y.dim() == 3 ? y.shape()[0] : 1;
        Tensor g = randn(y.shape());
        y.backward(g);

        Array grad_a = xt::zeros<float>(sa), grad_b = xt::zeros<float>(sb);
        for (std::size_t i = 0; i < batch; ++i) {
            Array ai = matrix(sa.size() == 3 && sa[0] > 1 ? i : 0, 0, a.data());
            Array bi = matrix(sb.size() == 3 && sb[0] > 1 ? i : 0, 0, b.data());
            Array gi = matrix(i, 0, g.data());
            check_close(y.dim() == 3 ? Array(xt::view(y.data(), i, xt::all(), xt::all())) : y.data(), dot(ai, bi), 1e-4);
            Array dai = dot(gi, xt::transpose(bi));   // dL/da = g b^T
            Array dbi = dot(xt::transpose(ai), gi);   // dL/db = a^T g
            if (sa.size() == 2) grad_a += dai;
            else xt::view(grad_a, sa[0] > 1 ? i : 0, xt::all(), xt::all()) += dai;
            if (sb.size() == 2) grad_b += dbi;
            else xt::view(grad_b, sb[0] > 1 ? i : 0, xt::all(), xt::all()) += dbi;
        }
        check_close(a.grad().data(), grad_a, 1e-4);
        check_close(b.grad().data(), grad_b, 1e-4);
    }
}

TEST_CASE("matmul names both shapes when they do not fit")
{
    CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})), Contains("matmul: inner dimensions differ: (2, 3) @ (4, 5)"));
    CHECK_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 5})),
                      Contains("matmul: batch sizes 2 and 3 cannot be broadcast: (2, 2, 3) @ (3, 3, 5)"));
    CHECK_THROWS_WITH(matmul(zeros({3}), zeros({3, 5})), Contains("expected 2-D or 3-D operands"));
}
