// core/autograd.h: from_op's signature rule, the upstream gradient's verbs, and a node's gradient states.
#include <catch2/catch.hpp>

#include <vector>

#include "close.h"
#include "core/autograd.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using Catch::Matchers::Equals;
using xgrad::testing::check_close;

namespace {

// add with its two backward lines in the wrong order: a passes the upstream on, then b reads it
Tensor add_swapped(const Tensor& a, const Tensor& b)
{
    return from_op(a.to_array() + b.to_array(), {a, b}, "add_swapped", [a, b](GradOutput& grad_out) {
        grad_out.pass_to(a);
        b.accumulate_grad(reduce_to_shape(grad_out.read(), b.shape()));
    });
}

// y = 2x, by a backward that does or does not declare that it reads y
Tensor twice(const Tensor& x, bool backward_reads_y)
{
    Array y = x.to_array() * 2.0f;
    if (backward_reads_y) {
        return from_op(std::move(y), {x}, "twice_reading_y", [x](GradOutput& grad_out, const Values&) {
            x.accumulate_grad(Array(grad_out.read() * 2.0f));
        });
    }
    return from_op(std::move(y), {x}, "twice", [x](GradOutput& grad_out) {
        x.accumulate_grad(Array(grad_out.read() * 2.0f));
    });
}

}  // namespace

TEST_CASE("a backward that reads its upstream gradient after passing it on throws an internal error")
{
    Tensor a = tensor({1, 2}).requires_grad_(), b = tensor({3, 4}).requires_grad_();
    CHECK_THROWS_WITH(sum(add_swapped(a, b)).backward(),
                      Contains("internal: grad_out.read() after the upstream gradient was taken or passed on"));
}

TEST_CASE("take() hands the buffer over once: a second verb throws")
{
    Tensor x = tensor({1, 2}).requires_grad_();
    Tensor y = from_op(Array(x.to_array()), {x}, "take_twice", [x](GradOutput& grad_out) {
        Array g = grad_out.take();
        x.accumulate_grad(std::move(g));
        grad_out.take();
    });
    CHECK_THROWS_WITH(sum(y).backward(), Contains("internal: grad_out.take() after"));
}

TEST_CASE("from_op: a backward without the output lets its buffer become the next op's output; one with it keeps it")
{
    Tensor x = tensor({1, 2, 3}).requires_grad_(), b = tensor({10, 10, 10});
    for (bool reads_y : {false, true}) {
        INFO("backward reads y: " << reads_y);
        Tensor t = twice(x, reads_y);
        const float* buffer = t.data_ptr();
        Tensor z = std::move(t) + b;
        CHECK((z.data_ptr() == buffer) == !reads_y);
        check_close(z, {12, 14, 16});
        x.zero_grad();
        sum(z).backward();
        check_close(x.grad(), {2, 2, 2});
    }
}

TEST_CASE("a node's gradient: dense and row-sparse contributions meet in one dense gradient, either way round")
{
    manual_seed(2);
    nn::Embedding sparse(6, 3, nn::EmbeddingOptions().sparse(true));
    const IdArray ids = {1, 4, 1};
    const Tensor up = randn({3, 3});
    // the sparse backward alone: rows 1 and 4 only
    sparse.forward(ids).backward(up);
    REQUIRE(sparse.weight.sparse_grad() != nullptr);
    const Array sparse_part = sparse.weight.sparse_grad()->to_dense(6);
    const Array dense_part = Array(sparse.weight.to_array() * 3.0f);           // d sum(3 w * u)/dw = 3u, here u = w
    SECTION("sparse, then dense")
    {
        sum(sparse.weight * sparse.weight.detach() * 3.0f).backward();
        CHECK(sparse.weight.sparse_grad() == nullptr);
        check_close(sparse.weight.grad().to_array(), Array(sparse_part + dense_part));
    }
    SECTION("dense, then sparse")
    {
        sparse.zero_grad();
        sum(sparse.weight * sparse.weight.detach() * 3.0f).backward();
        sparse.forward(ids).backward(up);
        CHECK(sparse.weight.sparse_grad() == nullptr);
        check_close(sparse.weight.grad().to_array(), Array(sparse_part + dense_part));
    }
    SECTION("sparse, then sparse: the union of the rows")
    {
        sparse.forward(IdArray{0, 1}).backward(ones({2, 3}));
        CHECK(sparse.weight.sparse_grad()->rows == std::vector<std::int64_t>{0, 1, 4});
    }
}

TEST_CASE("a borrowed upstream is never written, whether it is read, copied or added to")
{
    const Tensor up = tensor({{1, 2, 3}});
    const Array before = up.to_array();
    Tensor x = tensor({{1, 1, 1}}).requires_grad_();
    SECTION("passed on to a non-leaf that a second op then adds to")
    {
        Tensor h = x * 2.0f;
        (h + h).backward(up);                       // h borrows up from one side, then adds the other
        check_close(x.grad(), {4, 8, 12});
    }
    SECTION("read by an embedding's scatter-add where it is")
    {
        nn::Embedding tok(2, 3);
        (tok.forward(IdArray{1}) + 0.0f).backward(up);   // ids (1,): the output is (1, 3)
        check_close(tok.weight.grad(), {0, 0, 0, 1, 2, 3});
    }
    SECTION("taken and overwritten by an element-wise backward")
    {
        exp(x * 1.0f).backward(up);
        check_close(x.grad(), {std::exp(1.0f), 2 * std::exp(1.0f), 3 * std::exp(1.0f)}, 1e-5, 1e-6);
    }
    const bool unchanged = up.to_array() == before;
    CHECK(unchanged);
}

TEST_CASE("an undefined input is reported by the op the user called, not by the accessor that read it")
{
    const Tensor x = randn({2, 3}), undefined;
    CHECK_THROWS_WITH(matmul(x, undefined), Contains("matmul: an input tensor is undefined") && Contains("Tensor()"));
    CHECK_THROWS_WITH(linear(x, undefined), Equals("linear: an input tensor is undefined (a default-constructed Tensor(), or one moved from); its dim() was read"));   // not the matmul inside
    CHECK_THROWS_WITH(x + undefined, StartsWith("add: an input tensor is undefined"));
    CHECK_THROWS_WITH(softmax(undefined), StartsWith("softmax: an input tensor is undefined"));
    CHECK_THROWS_WITH(concat({x, undefined}, 0), StartsWith("concat: an input tensor is undefined"));
    CHECK_THROWS_WITH(undefined.dim(), StartsWith("dim: the tensor is undefined"));   // outside an op: the accessor
    CHECK(OpScope::current() == nullptr);                                              // every scope ended
}
