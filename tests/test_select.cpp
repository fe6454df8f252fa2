// take / index_put (what Python's x[...] reads and writes), select, stack, tril/triu, topk, multinomial, where
// and the comparisons (core/select.cpp, core/nograd.cpp): hand-computed values and gradchecks.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "close.h"
#include "gradcheck.h"
#include "xgrad.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::gradcheck;

TEST_CASE("take gathers offsets and sums the gradient of an offset read twice")
{
    Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}).requires_grad_();
    Tensor y = take(x, {5, 0, 0}, {3});
    check_close(y, {6, 1, 1});
    y.backward(tensor({1, 2, 3}));
    check_close(x.grad(), {5, 0, 0, 0, 0, 1});   // offset 0 read twice: 2 + 3
    CHECK_THROWS_WITH(take(x, {6}, {1}), "take: offset 6 is out of range for a tensor of 6 elements");
    auto g = gradcheck([](const std::vector<Tensor>& in) { return take(in[0], {4, 1, 1, 3}, {2, 2}); },
                       {randn({2, 3})});
    CHECK(g.ok);
}

TEST_CASE("flip reverses the axes it names and roll shifts them around, as torch's, for every dtype")
{
    using Catch::Matchers::Contains;
    const Tensor x = arange(6.0f).reshape({2, 3});
    check_close(flip(x, {1}).to_array(), Array{{2, 1, 0}, {5, 4, 3}});
    check_close(flip(x, {0, -1}).to_array(), Array{{5, 4, 3}, {2, 1, 0}});
    check_close(roll(x, {1}, {1}).to_array(), Array{{2, 0, 1}, {5, 3, 4}});
    check_close(roll(x, {-4, 1}, {1, 0}).to_array(), Array{{4, 5, 3}, {1, 2, 0}});   // -4 on 3 is -1
    check_close(roll(x, {2}).to_array(), Array{{4, 5, 0}, {1, 2, 3}});             // over the flattened x
    CHECK(flip(arange(3), {0}).dtype() == kInt64);
    CHECK(roll(zeros({0, 2}), {1}, {5}).shape() == Shape{0, 2});                     // empty: nothing checked, as torch's
    CHECK_THROWS_WITH(flip(x, {1, -1}), Contains("flip: dim 1 appears multiple times in the list of dims"));
    CHECK_THROWS_WITH(roll(x, {1, 2}, {0}), Contains("roll: shifts and dimensions must align. shifts: 2, dims:1"));
    CHECK_THROWS_WITH(roll(x, {1, 2}), Contains("roll: shifts and dimensions must align. shifts: 2, dims:0"));
    Tensor w = arange(6.0f).reshape({2, 3}).requires_grad_();
    sum(mul(roll(w, {1}, {1}), tensor({{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}}))).backward();
    check_close(w.grad().to_array(), Array{{2, 3, 1}, {5, 6, 4}});                  // each weight rolled back
}

TEST_CASE("repeat tiles and gather picks along an axis, as torch's; their gradients add up what each element gave")
{
    using Catch::Matchers::Contains;
    const Tensor x = arange(4.0f).reshape({2, 2});
    check_close(repeat(x, {1, 2}).to_array(), Array{{0, 1, 0, 1}, {2, 3, 2, 3}});
    CHECK(repeat(x, {2, 1, 1}).shape() == Shape{2, 2, 2});                          // a new leading axis
    CHECK(repeat(x, {0, 3}).shape() == Shape{0, 6});
    const Tensor ids = from_vector<std::int64_t>({1, 1, 0, 1}, {2, 2});
    check_close(gather(x, 1, ids).to_array(), Array{{1, 1}, {2, 3}});
    check_close(gather(x, 0, ids).to_array(), Array{{2, 3}, {0, 3}});
    Tensor w = arange(4.0f).reshape({2, 2}).requires_grad_();
    add(sum(repeat(w, {1, 3})), sum(gather(w, 1, ids))).backward();
    check_close(w.grad().to_array(), Array{{3, 5}, {4, 4}});                         // 3 copies each, plus the picks
    CHECK_THROWS_WITH(repeat(x, {2}), Contains("repeat: Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"));
    CHECK_THROWS_WITH(repeat(x, {2, -1}), Contains("repeat: Trying to create tensor with negative dimension -1"));
    CHECK_THROWS_WITH(gather(x, 1, from_vector<std::int64_t>({2}, {1, 1})), Contains("gather: index 2 is out of bounds for dimension 1 with size 2"));
    CHECK_THROWS_WITH(gather(x, 1, from_vector<std::int64_t>({0}, {1})), Contains("gather: Index tensor must have the same number of dimensions"));
    CHECK_THROWS_WITH(gather(x, 1, zeros({3, 1}, kInt64)), Contains("gather: Size does not match at dimension 0"));
}

TEST_CASE("maximum and minimum broadcast, propagate NaN, keep integers integral, and split a tie's gradient, as torch's")
{
    const Tensor a = tensor({1.0f, 5.0f, 2.0f, NAN});
    const Tensor b = tensor({3.0f, 4.0f, 2.0f, 0.0f});
    const Array hi = maximum(a, b).to_array(), lo = minimum(a, b).to_array();
    CHECK(hi(0) == 3.0f);
    CHECK(hi(1) == 5.0f);
    CHECK(std::isnan(hi(3)));
    CHECK(lo(0) == 1.0f);
    CHECK(std::isnan(lo(3)));
    CHECK(maximum(a, tensor({{0.0f}, {9.0f}})).shape() == Shape{2, 4});
    CHECK(maximum(arange(3), from_vector<std::int64_t>({1}, {1})).dtype() == kInt64);
    Tensor x = tensor({1.0f, 5.0f, 2.0f}).requires_grad_(), y = tensor({3.0f, 4.0f, 2.0f}).requires_grad_();
    sum(maximum(x, y)).backward();
    check_close(x.grad().to_array(), Array{0, 1, 0.5});
    check_close(y.grad().to_array(), Array{1, 0, 0.5});
}

TEST_CASE("select copies the slice at an index along an axis, and its gradient goes back to that slice")
{
    Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}).requires_grad_();
    Tensor row = select(x, 0, 1);
    CHECK(row.shape() == Shape{3});
    check_close(row, {4, 5, 6});
    Tensor column = select(x, -1, -3);                 // dim and index from the end: x[:, 0]
    CHECK(column.shape() == Shape{2});
    check_close(column, {1, 4});
    CHECK(std::string(row.op_name()) == "select");
    (sum(row * 2.0f) + sum(column)).backward();
    check_close(x.grad(), {1, 0, 0, 3, 2, 2});         // the row's 2 everywhere in row 1, the column's 1 in column 0
    Tensor cube = arange(24.0f);
    Tensor middle = select(reshape(cube, {2, 3, 4}), 1, 2);   // (2, 4): x[:, 2, :]
    check_close(middle, {8, 9, 10, 11, 20, 21, 22, 23});
    CHECK_THROWS_WITH(select(x, 0, 2), "select: index 2 is out of bounds for dimension 0 with size 2");
    CHECK_THROWS_WITH(select(x, 0, -3), "select: index -3 is out of bounds for dimension 0 with size 2");
    CHECK_THROWS_WITH(select(x, 2, 0), Catch::Contains("select: axis 2 is out of range"));
    CHECK_THROWS_WITH(select(sum(tensor({1})), 0, 0), "select: cannot be applied to a 0-d tensor");
    for (int dim : {0, 1, 2}) {
        auto g = gradcheck([dim](const std::vector<Tensor>& in) { return select(in[0], dim, -1); }, {randn({2, 3, 4})});
        CHECK(g.ok);
    }
}

TEST_CASE("index_put writes values, which get the gradient there, and x gets it everywhere else")
{
    Tensor x = tensor({1, 2, 3, 4}).requires_grad_();
    Tensor v = tensor({10}).requires_grad_();          // broadcast to the two offsets
    Tensor y = index_put(x, {1, 3}, {2}, v);
    check_close(y, {1, 10, 3, 10});
    y.backward(tensor({1, 2, 3, 4}));
    check_close(x.grad(), {1, 0, 3, 0});
    check_close(v.grad(), {6});                         // 2 + 4, summed over the broadcast
    CHECK(x.to_array()(1) == 2.0f);                         // out of place: x is unchanged
}

TEST_CASE("stack adds an axis; tril and triu keep a triangle and its gradient")
{
    Tensor s = stack({tensor({1, 2}), tensor({3, 4})}, 1);
    CHECK(s.shape() == Shape{2, 2});
    check_close(s, {1, 3, 2, 4});
    CHECK_THROWS_WITH(stack({tensor({1, 2}), tensor({1})}), Catch::Contains("stack: expects each tensor to be equal size"));
    Tensor x = ones({2, 3}).requires_grad_();
    check_close(tril(x), {1, 0, 0, 1, 1, 0});
    check_close(triu(x, 1), {0, 1, 1, 0, 0, 1});
    tril(x).backward(ones({2, 3}));
    check_close(x.grad(), {1, 0, 0, 1, 1, 0});
}

TEST_CASE("topk sorts each row, first index first among ties, NaN as the largest")
{
    const float nan = std::numeric_limits<float>::quiet_NaN();
    auto [v, indices] = topk(tensor({{1, 3, 3, 2}, {nan, 0, 5, 1}}), 2);
    CHECK(indices.dtype() == kInt64);
    const std::int64_t* i = indices.data_ptr<std::int64_t>();
    CHECK(v.to_array()(0, 0) == 3.0f);
    CHECK(i[0] == 1);
    CHECK(i[1] == 2);
    CHECK(std::isnan(v.to_array()(1, 0)));
    CHECK(i[2] == 0);
    CHECK(i[3] == 2);
    auto [smallest, j] = topk(tensor({3, 1, 2}), 2, false);
    check_close(smallest, {1, 2});
    CHECK_THROWS_WITH(topk(tensor({1, 2}), 3), "topk: selected k (3) is larger than the last dimension of size 2");
}

TEST_CASE("multinomial draws by weight, each category once without replacement")
{
    Generator rng(0);
    const Tensor draws = multinomial(tensor({0, 1, 3}), 4000, true, rng);
    CHECK(draws.dtype() == kInt64);
    std::size_t twos = 0;
    for (std::size_t k = 0; k < draws.numel(); ++k) {
        const std::int64_t d = draws.data_ptr<std::int64_t>()[k];
        CHECK(d != 0);
        twos += d == 2;
    }
    CHECK(std::abs(double(twos) / 4000 - 0.75) < 0.03);
    const Tensor all = multinomial(tensor({{1, 1, 1}}), 3, false, rng);
    CHECK(all.shape() == Shape{1, 3});
    const std::int64_t* a = all.data_ptr<std::int64_t>();
    CHECK(a[0] + a[1] + a[2] == 3);
    CHECK(a[0] != a[1]);
    CHECK_THROWS_WITH(multinomial(tensor({1, -1}), 1, true, rng), Catch::Contains("multinomial: probability tensor contains"));
    CHECK_THROWS_WITH(multinomial(tensor({1, 1}), 3, false, rng), Catch::Contains("without replacement"));
}

TEST_CASE("where selects by a mask, -inf included, and routes the gradient by it")
{
    Tensor a = tensor({1, 2, 3}).requires_grad_();
    Tensor b = full({}, -std::numeric_limits<float>::infinity()).requires_grad_();
    Tensor y = xgrad::where(ge(a, full({}, 2.0f)), a, b);
    CHECK(y.to_array()(0) == -std::numeric_limits<float>::infinity());
    CHECK(y.to_array()(2) == 3.0f);
    y.backward(tensor({1, 1, 1}));
    check_close(a.grad(), {0, 1, 1});
    check_close(b.grad(), {1});
}

TEST_CASE("comparisons broadcast, with a tensor or a scalar")
{
    // a scalar compared with every element: the 0-D operand stretched to the whole shape
    const Tensor m = gt(tensor({{1, 5, 3}, {4, 0, 6}}), full({}, 3.0f));
    CHECK(m.dtype() == kBool);
    const std::vector<bool> above = {false, true, false, true, false, true};
    CHECK(std::equal(above.begin(), above.end(), m.data_ptr<bool>()));
    const Tensor e = eq(tensor({{1, 2}, {3, 4}}), tensor({1, 4}));
    const std::vector<bool> same = {true, false, false, true};
    CHECK(std::equal(same.begin(), same.end(), e.data_ptr<bool>()));
    CHECK_THROWS_WITH(lt(ones({2}), ones({3})), Catch::Contains("cannot be broadcast"));
}
