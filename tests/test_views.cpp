// Views and in-place ops from C++: shared storage, strides and offsets, writes through views, autograd
// across them, and the bad inputs with their messages. (tests/python/test_aliasing.py checks the same
// model against torch 1.13, case by case.)
#include <catch2/catch.hpp>

#include "close.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using xgrad::testing::check_close;

TEST_CASE("a view shares its base's storage through its own shape, strides and offset")
{
    Tensor x = arange(12.0f).reshape({3, 4});
    Tensor t = x.t(), row = x.select(0, 1), cols = x.slice(1, 1, std::nullopt, 2), e = x.select(1, 0).unsqueeze(1).expand({3, 5});
    CHECK(t.stride() == std::vector<std::size_t>{1, 4});
    CHECK_FALSE(t.is_contiguous());
    CHECK(row.storage_offset() == 4);
    CHECK(row.is_contiguous());
    CHECK(cols.stride() == std::vector<std::size_t>{4, 2});
    CHECK(cols.storage_offset() == 1);
    CHECK(e.stride() == std::vector<std::size_t>{4, 0});
    for (const Tensor& v : {t, row, cols, e}) {
        CHECK(v.shares_storage(x));
        CHECK(v.is_view());
        CHECK(v.base().is_same(x.base()));   // x itself views arange's result: one root for all
    }
    CHECK(x.detach().shares_storage(x));
    CHECK_FALSE(x.detach().is_view());
    CHECK(x.data_ptr() + 5 == cols.data_ptr() + 4);   // cols[1][0] is x[1][1]
    check_close(cols.to_array(), Array{{1, 3}, {5, 7}, {9, 11}});
}

TEST_CASE("writes through any view land in the base, and a view sees writes into the base")
{
    Tensor x = zeros({3, 4});
    {
        NoGradGuard no_grad;
        x.t().select(0, 2).fill_(1.0f);                       // column 2
        x.slice(0, 0, std::nullopt, 2).select(1, 0).add_(5.0f);   // rows 0 and 2, column 0
        x.view({12}).narrow(0, 4, 2).copy_(tensor({7, 8}));       // x[1, 0:2]
    }
    check_close(x.to_array(), Array{{5, 0, 1, 0}, {7, 8, 1, 0}, {5, 0, 1, 0}});
    Tensor diagonal = x.diagonal();
    x.select(0, 1).select(0, 1).fill_(-1.0f);
    check_close(diagonal.to_array(), Array{5, -1, 1});
    CHECK(x.version() == 4);
    CHECK(diagonal.version() == 4);                            // one counter for the storage
    CHECK(x.variable_data().version() == 0);                   // torch's .data: a counter of its own
}

TEST_CASE("reshape is a view when the strides allow it and a copy when not; contiguous copies only when it must")
{
    Tensor x = arange(6.0f).reshape({2, 3});
    CHECK(x.reshape({3, 2}).shares_storage(x));
    CHECK_FALSE(x.t().reshape({6}).shares_storage(x));
    CHECK(x.contiguous().is_same(x));
    Tensor tc = x.t().contiguous();
    CHECK(tc.is_contiguous());
    CHECK_FALSE(tc.shares_storage(x));
    check_close(tc.to_array(), Array{{0, 3}, {1, 4}, {2, 5}});
    Tensor cl = x.t().clone();                                 // keeps the transposed strides, as torch's
    CHECK(cl.stride() == std::vector<std::size_t>{1, 3});
    CHECK_FALSE(cl.shares_storage(x));
}

TEST_CASE("in place on an op's output is recorded: backward gives torch's gradient")
{
    Tensor x = tensor({1, -2, 3}).requires_grad_();
    Tensor h = x * 2.0f;
    h.add_(1.0f).relu_();
    CHECK(std::string(h.op_name()) == "relu");
    sum(h).backward();
    check_close(x.grad().to_array(), Array{2, 0, 2});
}

TEST_CASE("in place through a view of an op's output makes the base a copy_slices; both views follow it")
{
    Tensor x = tensor({1, 2, 3, 4}).requires_grad_();
    Tensor y = x * 1.0f;
    Tensor other = y.narrow(0, 0, 3);                 // made before the write
    y.narrow(0, 1, 2).mul_(10.0f);
    CHECK(std::string(y.op_name()) == "copy_slices");
    CHECK(std::string(other.op_name()) == "as_strided");   // regenerated from the base, as torch's
    sum(other * tensor({1, 2, 3})).backward();
    check_close(x.grad().to_array(), Array{1, 20, 30, 0});
}

TEST_CASE("the bad inputs of views and in-place ops are errors that name the op, the shapes and the fix")
{
    Tensor x = arange(6.0f).reshape({2, 3});
    CHECK_THROWS_WITH(x.t().view({6}), Contains("view size is not compatible with input tensor's size and stride") &&
                                          Contains("shape (3, 2) with strides (1, 3) cannot be viewed as (6,)") &&
                                          Contains("Use .reshape(...) instead"));
    CHECK_THROWS_WITH(x.as_strided({4}, {2}), Contains("as_strided: setStorage: sizes (4,), strides (2,), storage offset 0 "
                                                       "require a storage of 7 elements, but the storage holds 6"));
    CHECK_THROWS_WITH(zeros({3}).add_(ones({2, 3})), Contains("add_: output with shape (3,) doesn't match the broadcast shape (2, 3)"));
    CHECK_THROWS_WITH(zeros({2, 3}).copy_(ones({4})), Contains("copy_: shapes (2, 3) and (4,) cannot be broadcast"));
    CHECK_THROWS_WITH(tensor({1, 2}).expand({3, 2}).mul_(2.0f),
                      Contains("mul_: unsupported operation: more than one element of the written-to tensor refers to a "
                               "single memory location (shape (3, 2), strides (0, 1)") && Contains("clone()"));
    Tensor w = ones({3}, true);
    CHECK_THROWS_WITH(w.add_(1.0f), Contains("add_: a leaf Variable that requires grad is being used in an in-place operation"));
    CHECK_THROWS_WITH(w.narrow(0, 0, 2).zero_(),
                      Contains("zero_: a view of a leaf Variable that requires grad is being used in an in-place operation"));
    CHECK_THROWS_WITH(x.narrow(1, 2, 2), Contains("narrow: start (2) + length (2) exceeds dimension size (3)"));
    CHECK_THROWS_WITH(x.expand({2, 4}), Contains("expand: the expanded size of the tensor (4) must match the existing size (3)"));
    CHECK_THROWS_WITH(x.slice(1, 0, 2, 0), Contains("slice: slice step must be positive, got 0"));
    {
        NoGradGuard no_grad;
        w.mul_(2.0f);                                   // allowed outside autograd, as torch's optimizers do
    }
    CHECK(w.version() == 1);
}

TEST_CASE("index and index_put_ with Slice, None and Ellipsis are Python's basic indexing, as libtorch's")
{
    using namespace xgrad::indexing;
    Tensor x = arange(24.0f).reshape({2, 3, 4});
    Tensor a = x.index({1, Slice(0, 3, 2), None});   // x[1, 0:3:2, None]
    CHECK(a.shape() == Shape{2, 1, 4});
    CHECK(a.shares_storage(x));
    check_close(a.select(0, 1).select(0, 0).to_array(), Array{20, 21, 22, 23});
    CHECK(x.index({Ellipsis, -1}).shape() == Shape{2, 3});
    CHECK(x.index({Slice(), Slice(1)}).storage_offset() == 4);
    CHECK(x.index({Ellipsis}).is_view());
    x.index_put_({0, Slice(None, 2)}, 0.0f);               // x[0, :2] = 0
    x.index_put_({1, Ellipsis, 0}, tensor({-1, -2, -3}));  // x[1, ..., 0] = [-1, -2, -3]
    CHECK(sum(x.select(0, 0).narrow(0, 0, 2)).item() == 0.0f);
    check_close(x.select(0, 1).select(1, 0).to_array(), Array{-1, -2, -3});
    CHECK_THROWS_WITH(x.index({0, 0, 0, 0}), Contains("too many indices for tensor of dimension 3"));
    CHECK(x.index({Ellipsis, Ellipsis}).shape() == x.shape());   // a second ... names no axis, as torch's x[..., ...]
}

TEST_CASE("index and index_put_ with id tensors and masks are advanced indexing, as torch's x[ids] and x[mask]")
{
    using namespace xgrad::indexing;
    Tensor x = arange(24.0f).reshape({2, 3, 4});
    const Tensor ids = from_vector<std::int64_t>({2, 0, 2}, {3});
    Tensor rows = x.index({Slice(), ids});                          // x[:, [2, 0, 2]]: a copy
    CHECK(rows.shape() == Shape{2, 3, 4});
    CHECK_FALSE(rows.shares_storage(x));
    check_close(rows.select(0, 1).select(0, 0).to_array(), Array{20, 21, 22, 23});
    CHECK(x.index({0, Slice(), ids.narrow(0, 0, 2)}).shape() == Shape{3, 2});   // the int selects first: torch's (3, 2), NumPy's (2, 3)
    const Tensor two = from_vector<std::int64_t>({1, 0}, {2});
    CHECK(x.index({two, Slice(), two}).shape() == Shape{2, 3});    // ids apart: their axes first
    const Tensor mask = gt(x.select(0, 0), full({}, 9.0, kFloat32));   // (3, 4): 10 and 11 are above 9
    CHECK(x.index({1, mask}).shape() == Shape{2});
    check_close(x.index({1, mask}).to_array(), Array{22, 23});
    x.index_put_({1, mask}, 0.0f);                                 // x[1][mask] = 0
    check_close(x.index({1, mask}).to_array(), Array{0, 0});

    Tensor w = zeros({3, 2}).requires_grad_();
    Tensor picked = w.index({from_vector<std::int64_t>({1, 1, 2}, {3})});   // repeated rows: their gradients add up
    sum(picked).backward();
    check_close(w.grad().to_array(), Array{{0, 0}, {2, 2}, {1, 1}});

    x.index_put_({Slice(), ids}, tensor({7.0f}));                  // x[:, [2, 0, 2]] = 7, broadcast
    CHECK(sum(x.index({Slice(), 1})).item() == 4 + 5 + 6 + 7 + 16 + 17 + 18 + 19);   // row 1 untouched
    CHECK(sum(x.index({Slice(), 2})).item() == 7.0f * 8);
    CHECK_THROWS_AS(x.index({from_vector<std::int64_t>({2}, {1})}), IndexError);   // 2 of 2 rows: IndexError, as torch's
    CHECK_THROWS_WITH(x.index({from_vector<std::int64_t>({2}, {1})}), Contains("index 2 is out of bounds for dimension 0 with size 2"));
    CHECK_THROWS_WITH(x.index({tensor({0.0f})}), Contains("tensors used as indices must be long, int, byte or bool tensors"));
    CHECK_THROWS_WITH(x.index_put_({ids}, from_vector<std::int64_t>({1}, {1})), Contains("Index put requires the source and destination dtypes match"));
}
