// matmul against an independent reference: xtensor-blas's linalg::dot, forward and backward.
#include <catch2/catch.hpp>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xview.hpp>

#include "close.h"
#include "core/autograd.h"
#include "gradcheck.h"
#include "xgrad.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::gradcheck;
using Catch::Matchers::Contains;

namespace {

Array dot(const Array& a, const Array& b) { return xt::linalg::dot(a, b); }

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
                                              {{3, 7, 6}, {1, 6, 2}},
                                              {{2, 3, 4, 5}, {2, 3, 5, 6}},     // (B, nh, T, hs) @ (B, nh, hs, T)
                                              {{2, 1, 4, 5}, {1, 3, 5, 6}},     // both batch dims broadcast
                                              {{2, 3, 4, 5}, {5, 6}},
                                              {{4, 5}, {2, 3, 5, 6}},
                                              {{3, 4, 5}, {2, 1, 5, 6}}}) {     // batch ranks differ
        INFO(shape_str(sa) << " @ " << shape_str(sb));
        manual_seed(5);
        Tensor a = randn(sa, true), b = randn(sb, true);
        Tensor y = matmul(a, b);
        Tensor g = randn(y.shape());
        y.backward(g);

        // the reference: every output matrix by xtensor-blas, from the matrices the broadcast picks
        const Shape ys = y.shape();
        const Shape batch(ys.begin(), ys.end() - 2);
        const std::size_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
        auto matrix_of = [&](const Array& x, const Shape& xs, std::size_t flat) {   // x's matrix for output matrix `flat`
            std::size_t index = 0, step = 1, rest = flat;
            for (std::size_t axis = batch.size(); axis-- > 0;) {
                const std::size_t i = rest % batch[axis];
                rest /= batch[axis];
                const std::size_t from_end = batch.size() - axis, x_axes = xs.size() - 2;
                if (from_end > x_axes) continue;                  // x has no such axis: broadcast
                const std::size_t d = xs[x_axes - from_end];
                index += (d == 1 ? 0 : i) * step;
                step *= d;
            }
            return index;
        };
        Array grad_a = xt::zeros<float>(sa), grad_b = xt::zeros<float>(sb);
        for (std::size_t i = 0; i < shape_numel(batch); ++i) {
            const std::size_t ia = matrix_of(a.to_array(), sa, i), ib = matrix_of(b.to_array(), sb, i);
            auto ai = xt::adapt(a.data_ptr() + ia * m * k, m * k, xt::no_ownership(), std::vector<std::size_t>{m, k});
            auto bi = xt::adapt(b.data_ptr() + ib * k * n, k * n, xt::no_ownership(), std::vector<std::size_t>{k, n});
            auto gi = xt::adapt(g.data_ptr() + i * m * n, m * n, xt::no_ownership(), std::vector<std::size_t>{m, n});
            auto yi = xt::adapt(y.data_ptr() + i * m * n, m * n, xt::no_ownership(), std::vector<std::size_t>{m, n});
            check_close(Array(yi), dot(Array(ai), Array(bi)), 1e-4);
            auto dai = xt::adapt(grad_a.data() + ia * m * k, m * k, xt::no_ownership(), std::vector<std::size_t>{m, k});
            auto dbi = xt::adapt(grad_b.data() + ib * k * n, k * n, xt::no_ownership(), std::vector<std::size_t>{k, n});
            dai += dot(Array(gi), Array(xt::transpose(Array(bi))));   // dL/da = g b^T, summed where a broadcast
            dbi += dot(Array(xt::transpose(Array(ai))), Array(gi));   // dL/db = a^T g
        }
        check_close(a.grad().to_array(), grad_a, 1e-4);
        check_close(b.grad().to_array(), grad_b, 1e-4);
    }
}

TEST_CASE("matmul names both shapes when they do not fit")
{
    CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})), Contains("matmul: inner dimensions differ: (2, 3) @ (4, 5)"));
    CHECK_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 5})),
                      Contains("matmul: batch dims (2,) and (3,) cannot be broadcast: (2, 2, 3) @ (3, 3, 5)"));
    CHECK_THROWS_WITH(matmul(zeros({3}), zeros({3, 5})),
                      Contains("matmul: expected operands of at least 2 axes (..., M, K) @ (..., K, N), got (3,) @ (3, 5)"));
}

TEST_CASE("transpose(k, -2, -1) feeding a product is read with sgemm's flag: no copy, forward or backward")
{
    manual_seed(5);
    const Tensor q = randn({2, 3, 64, 16}, true), k = randn({2, 3, 64, 16}, true);
    const std::size_t before = live_storage_bytes();
    const Tensor kt = transpose(k, -2, -1);                                  // (2, 3, 16, 64)
    CHECK(kt.shape() == Shape{2, 3, 16, 64});
    CHECK(kt.shares_storage(k));                                             // a view
    CHECK(kt.stride() == std::vector<std::size_t>{3 * 64 * 16, 64 * 16, 1, 16});
    CHECK(live_storage_bytes() == before);                                   // nothing copied
    Tensor scores = matmul(q, kt);                                           // (2, 3, 64, 64)
    CHECK(live_storage_bytes() == before + scores.numel() * sizeof(float));  // only the product
    const Tensor upstream = randn(scores.shape());
    scores.backward(upstream);

    // the same as the product with a copied transpose
    const Tensor q2 = Tensor(q.to_array(), true), k2 = Tensor(k.to_array(), true);
    Tensor copied = matmul(q2, permute(k2, {0, 1, 3, 2}).contiguous());
    copied.backward(upstream);
    check_close(scores.to_array(), copied.to_array(), 1e-5);
    check_close(q.grad().to_array(), q2.grad().to_array(), 1e-4);
    check_close(k.grad().to_array(), k2.grad().to_array(), 1e-4);
    CHECK(kt.to_array()(1, 2, 3, 4) == k.to_array()(1, 2, 4, 3));
}

TEST_CASE("products of transposed views on either side, broadcast and folded, pass gradcheck")
{
    manual_seed(6);
    const auto t = [](const Tensor& x) { return transpose(x, -1, -2); };
    // a^T @ b with a 3-D a: the batched path
    CHECK(gradcheck([&](const std::vector<Tensor>& x) { return matmul(t(x[0]), x[1]); }, {randn({2, 4, 3}), randn({2, 4, 5})}).ok);
    // a @ w^T with a 2-D w under batched a: the folded path
    CHECK(gradcheck([&](const std::vector<Tensor>& x) { return matmul(x[0], t(x[1])); }, {randn({2, 3, 4}), randn({5, 4})}).ok);
    // both transposed, a broadcast over b's batch
    CHECK(gradcheck([&](const std::vector<Tensor>& x) { return matmul(t(x[0]), t(x[1])); }, {randn({4, 3}), randn({2, 5, 4})}).ok);
    // a transpose of batch axes is a view too, read through its batch strides
    CHECK(gradcheck([&](const std::vector<Tensor>& x) { return matmul(transpose(x[0], 0, 1), x[1]); },
                    {randn({3, 2, 4}), randn({4, 2})}).ok);
}
