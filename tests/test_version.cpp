// The version counter: in-place writes are counted, and a backward that would read a value written
// after its op used it throws PyTorch's error instead of computing a gradient from the wrong values.
#include <catch2/catch.hpp>

#include "close.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using xgrad::testing::check_close;

namespace {

void write_in_place(const Tensor& t, float add)
{
    NoGradGuard no_grad;
    t.add_(add);
}

}  // namespace

TEST_CASE("each in-place write bumps the version; reading does not")
{
    Tensor x = tensor({1, 2, 3});
    CHECK(x.version() == 0);
    (void)x.to_array();
    CHECK(x.version() == 0);
    write_in_place(x, 1.0f);
    write_in_place(x, 1.0f);
    CHECK(x.version() == 2);
    CHECK(exp(x).version() == 0);   // an op's output starts at version 0
}

TEST_CASE("a write into an input that mul saved makes backward throw torch's error, naming the op, shape and versions")
{
    // the first idiom: without the check, w.grad() came out as 2 (w + 1) = [4, 6, 8]
    Tensor w = tensor({1, 2, 3}).requires_grad_();
    Tensor y = sum(w * w);
    write_in_place(w, 1.0f);
    CHECK_THROWS_WITH(y.backward(), Contains("one of the variables needed for gradient computation has been modified by an "
                                             "inplace operation") &&
                                        Contains("input 0 of 'mul', a float32 tensor of shape (3,), is at version 1; "
                                                 "expected version 0 instead"));
    CHECK_FALSE(w.grad().defined());   // nothing was accumulated from the wrong values
}

TEST_CASE("only what a backward reads is checked: add's inputs, and mul's own operand when only it requires grad")
{
    Tensor a = tensor({1, 2, 3}).requires_grad_(), b = tensor({4, 5, 6});
    Tensor y = sum(a + b);
    write_in_place(a, 1.0f);
    write_in_place(b, 1.0f);
    y.backward();   // d(a + b)/da = 1 reads neither value
    check_close(a.grad().to_array(), Array{1, 1, 1});

    Tensor p = tensor({1, 2, 3}).requires_grad_(), q = tensor({4, 5, 6});
    Tensor z = sum(p * q);
    write_in_place(p, 1.0f);   // d(p q)/dp = q: p itself is not needed
    z.backward();
    check_close(p.grad().to_array(), Array{4, 5, 6});

    Tensor r = tensor({1, 2, 3}).requires_grad_(), s = tensor({4, 5, 6});
    Tensor u = sum(r * s);
    write_in_place(s, 1.0f);   // but q is
    CHECK_THROWS_WITH(u.backward(), Contains("input 1 of 'mul'") && Contains("is at version 1; expected version 0"));
}

TEST_CASE("a write into an output that its op's backward reads (exp) throws, naming the output")
{
    Tensor x = tensor({0, 1}).requires_grad_();
    Tensor e = exp(x);
    write_in_place(e, 1.0f);
    CHECK_THROWS_WITH(sum(e).backward(), Contains("output 0 of 'exp', a float32 tensor of shape (2,), is at version 1; "
                                                  "expected version 0 instead"));
}

TEST_CASE("an optimizer step between a forward and its backward is caught, as in torch")
{
    nn::Linear layer(3, 2);
    optim::SGD sgd(layer.parameters(), optim::SGDOptions(0.1));
    Tensor x = randn({4, 3}, /*requires_grad=*/true);   // its gradient needs the weight; the weight's needs only x
    Tensor loss = sum(layer.forward(x));
    loss.backward(Tensor(), /*retain_graph=*/true);
    sgd.step();                       // writes the weight in place
    CHECK(layer.weight.version() == 1);
    CHECK_THROWS_WITH(loss.backward(), Contains("modified by an inplace operation") && Contains("of 'linear'"));
}

TEST_CASE("the check is per op: a later op that used the written value sees the new version and runs")
{
    Tensor w = tensor({1, 2, 3}).requires_grad_();
    write_in_place(w, 1.0f);          // before any op used it: nothing to refuse
    Tensor y = sum(w * w);
    y.backward();
    check_close(w.grad().to_array(), Array{4, 6, 8});
}
