// Hand-computed forward and backward values for each op on a small case, and each op's shape errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "close.h"
#include "core/kernels.h"
#include "xgrad.h"

using namespace xgrad;
using xgrad::testing::check_close;
using Catch::Matchers::Contains;

namespace {

std::vector<float> values(const Tensor& t)
{
    const Values v = t.values();
    return {v.begin(), v.end()};
}

// the gradient of sum(f(x) * upstream) with respect to x
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, Tensor x, const Tensor& upstream)
{
    x.zero_grad();
    x.requires_grad_();
    f(x).backward(upstream);
    return x.grad();
}

// t's values are exactly `expected`, NaN matching NaN and the sign of zero counted (+0.0 is not -0.0)
void check_identical(const Tensor& t, const std::vector<float>& expected)
{
    const std::vector<float> got = values(t);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
        CHECK((std::isnan(got[i]) ? std::isnan(expected[i])
                                  : got[i] == expected[i] && std::signbit(got[i]) == std::signbit(expected[i])));
    }
}

}  // namespace

TEST_CASE("add, sub, mul and div broadcast and reduce their gradients to each input's shape")
{
    Tensor a = tensor({{1, 2, 3}, {4, 5, 6}}).requires_grad_();
    Tensor b = tensor({10, 20, 30}).requires_grad_();
    Tensor up = tensor({{1, 1, 1}, {2, 2, 2}});

    check_close(a + b, {11, 22, 33, 14, 25, 36});
    (a + b).backward(up);
    check_close(a.grad(), {1, 1, 1, 2, 2, 2});
    check_close(b.grad(), {3, 3, 3});                         // summed over the broadcast rows

    a.zero_grad(), b.zero_grad();
    check_close(a - b, {-9, -18, -27, -6, -15, -24});
    (a - b).backward(up);
    check_close(b.grad(), {-3, -3, -3});

    a.zero_grad(), b.zero_grad();
    check_close(a * b, {10, 40, 90, 40, 100, 180});
    (a * b).backward(up);
    check_close(a.grad(), {10, 20, 30, 20, 40, 60});          // b, times upstream
    check_close(b.grad(), {1 + 8, 2 + 10, 3 + 12});           // sum of a * upstream

    a.zero_grad(), b.zero_grad();
    check_close(a / b, {0.1f, 0.1f, 0.1f, 0.4f, 0.25f, 0.2f});
    (a / b).backward(up);
    check_close(a.grad(), {0.1f, 0.05f, 1 / 30.0f, 0.2f, 0.1f, 2 / 30.0f});
    // d/db (a/b) = -a/b^2: column 0: -(1*1 + 4*2)/100
    check_close(b.grad(), {-9 / 100.0f, -12 / 400.0f, -15 / 900.0f});

    CHECK_THROWS_WITH(a + tensor({1, 2}), Contains("add: shapes (2, 3) and (2,) cannot be broadcast"));
    CHECK_THROWS_WITH(a * zeros({4, 3}), Contains("mul: shapes (2, 3) and (4, 3)"));
}

TEST_CASE("scalar ops and pow give their closed-form values and derivatives")
{
    Tensor x = tensor({1, 2, 4});
    Tensor up = tensor({1, 1, 1});
    check_close(x + 1.0f, {2, 3, 5});
    check_close(2.0f - x, {1, 0, -2});
    check_close(x / 2.0f, {0.5f, 1, 2});
    check_close(8.0f / x, {8, 4, 2});
    check_close(grad_of([](const Tensor& t) { return 8.0f / t; }, x, up), {-8, -2, -0.5f});
    check_close(pow(x, 2.0f), {1, 4, 16});
    check_close(grad_of([](const Tensor& t) { return pow(t, 2.0f); }, x, up), {2, 4, 8});
    check_close(grad_of([](const Tensor& t) { return pow(t, 0.5f); }, x, up), {0.5f, 0.5f / std::sqrt(2.0f), 0.25f});
    check_close(grad_of([](const Tensor& t) { return 1.0f - t; }, x, up), {-1, -1, -1});
}

TEST_CASE("pow takes torch.pow's values and gradients at negative bases, 0^0 and 0^b")
{
    // as std::pow, not exp(b log a): a negative base with an integral exponent, 0^0 = 1, 0^-1 = inf
    check_close(pow(tensor({-2.0f, -0.5f, 0.0f, 3.0f}), 3.0f), {-8, -0.125f, 0, 27}, 0.0);
    check_close(pow(tensor({0.0f, -2.0f}), 0.0f), {1, 1}, 0.0);
    CHECK(std::isinf(pow(tensor({0.0f}), -1.0f).item()));
    CHECK(std::isnan(pow(tensor({-2.0f}), 0.5f).item()));
    check_close(pow(tensor({-2.0f, -0.5f, 0.0f, 0.0f}), tensor({2.0f, 3.0f, 0.0f, 1.0f})), {4, -0.125f, 1, 0}, 0.0);
    check_close(pow(full({}, 0.0f), tensor({0.0f, 1.0f})), {1, 0}, 0.0);

    // d/da = b a^(b-1), 0 where b = 0; d/db = a^b log a, 0 where a = 0 and b >= 0 (torch's pow_backward)
    const Tensor up = tensor({1, 1, 1, 1});
    check_close(grad_of([](const Tensor& t) { return pow(t, 0.0f); }, tensor({0.0f, 2.0f, -1.0f, 5.0f}), up), {0, 0, 0, 0}, 0.0);
    Tensor a = tensor({-2.0f, 0.0f, 0.0f, 2.0f}), b = tensor({2.0f, 0.0f, 1.0f, 0.5f});
    a.requires_grad_(), b.requires_grad_();
    pow(a, b).backward(up);
    check_close(a.grad(), {-4, 0, 1, 0.5f / std::sqrt(2.0f)}, 1e-6);
    const Array gb = b.grad().to_array();
    CHECK(std::isnan(gb(0)));                                 // log of a negative base, as torch's
    CHECK(gb(1) == 0.0f);
    CHECK(gb(2) == 0.0f);
    CHECK(gb(3) == Approx(std::sqrt(2.0f) * std::log(2.0f)));
}

TEST_CASE("relu keeps NaN and -0.0 as torch's, in place too, and passes the gradient where the output is not <= 0")
{
    const Tensor x = tensor({std::nanf(""), -0.0f, -2.0f, 3.0f});
    for (const Tensor& y : {relu(x), Tensor(x.to_array()).relu_()}) {
        const Array v = y.to_array();
        CHECK(std::isnan(v(0)));
        CHECK((v(1) == 0.0f && std::signbit(v(1))));
        CHECK((v(2) == 0.0f && !std::signbit(v(2))));
        CHECK(v(3) == 3.0f);
    }
    const Array g = grad_of([](const Tensor& t) { return relu(t); }, x, tensor({1, 1, 1, 1})).to_array();
    CHECK(g(0) == 1.0f);   // threshold_backward: NaN <= 0 is false
    CHECK(g(1) == 0.0f);
    CHECK(g(2) == 0.0f);
    CHECK(g(3) == 1.0f);
}

TEST_CASE("erf_approx is within 5e-7 of erf, and the exact GELU and its derivative within 2e-6 of double precision")
{
    double worst_erf = 0.0, worst_gelu = 0.0, worst_slope = 0.0;
    std::vector<float> grid;
    for (double v = -12.0; v <= 12.0; v += 1.0 / 1024) grid.push_back(static_cast<float>(v));
    for (float v : grid) worst_erf = std::max(worst_erf, std::abs(double(erf_approx(v)) - std::erf(double(v))));
    Tensor x(Array(xt::adapt(grid, {grid.size()})), true);
    Tensor y = gelu(x);
    y.backward(ones({grid.size()}));
    for (std::size_t i = 0; i < grid.size(); ++i) {
        const double v = grid[i], cdf = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
        const double slope = cdf + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
        worst_gelu = std::max(worst_gelu, std::abs(y.to_array()(i) - v * cdf) / std::max(1.0, std::abs(v)));
        worst_slope = std::max(worst_slope, std::abs(x.grad().to_array()(i) - slope));
    }
    CHECK(worst_erf < 5e-7);
    CHECK(worst_gelu < 2e-6);     // relative above |x| = 1, absolute below
    CHECK(worst_slope < 2e-6);
    CHECK(erf_approx(0.0f) == 0.0f);
    CHECK(erf_approx(100.0f) == Approx(1.0f).margin(5e-7));
    CHECK(erf_approx(-100.0f) == Approx(-1.0f).margin(5e-7));
}

TEST_CASE("abs gives 0.0 at -0.0 and keeps NaN, and its gradient is sign(x), 0 at x = 0, as torch's")
{
    const Tensor x = tensor({0.0f, -0.0f, -2.0f, 3.0f, std::nanf("")});
    const Array y = abs(x).to_array();
    CHECK((y(0) == 0.0f && !std::signbit(y(0))));
    CHECK((y(1) == 0.0f && !std::signbit(y(1))));
    CHECK(y(2) == 2.0f);
    CHECK(y(3) == 3.0f);
    CHECK(std::isnan(y(4)));
    const Tensor up = tensor({5, 5, 5, 5, 5});
    check_close(grad_of([](const Tensor& t) { return abs(t); }, x, up), {0, 0, -5, 5, 0});   // sgn(NaN) = 0 in torch
    // g * sgn(x), a product: an infinite upstream gradient at 0 gives NaN, as torch's
    const Array g = grad_of([](const Tensor& t) { return abs(t); }, tensor({0.0f, 1.0f}), tensor({INFINITY, 1.0f})).to_array();
    CHECK(std::isnan(g(0)));
    CHECK(g(1) == 1.0f);
}

TEST_CASE("clamp takes torch's values for min > max and NaN bounds, in place too, and passes no gradient there")
{
    const float nan = std::nanf("");
    const Tensor x = tensor({0.0f, 2.0f, 0.5f, nan});
    const auto both = [&](std::optional<float> lo, std::optional<float> hi) {
        return std::vector<Tensor>{clamp(x, lo, hi), Tensor(x.to_array()).clamp_(lo, hi)};
    };
    for (const Tensor& y : both(1.0f, 0.0f)) check_identical(y, {0, 0, 0, nan});        // min > max: max, NaN kept
    for (const Tensor& y : both(0.0f, nan)) check_identical(y, {nan, nan, nan, nan});   // a NaN beside a bound: NaN
    for (const Tensor& y : both(nan, std::nullopt)) check_identical(y, {0, 2, 0.5f, nan});   // a lone NaN bound: x
    const Tensor up = tensor({1, 1, 1, 1});
    check_close(grad_of([](const Tensor& t) { return clamp(t, 1.0f, 0.0f); }, x, up), {0, 0, 0, 0});
    check_close(grad_of([nan](const Tensor& t) { return clamp(t, nan, std::nullopt); }, x, up), {0, 0, 0, 0});
    check_close(grad_of([](const Tensor& t) { return clamp(t, 0.0f, 1.0f); }, x, up), {1, 0, 1, 0});
}

TEST_CASE("tril and triu put +0.0 outside the triangle, whatever is there (NaN, inf, negative), and in its gradient")
{
    const float nan = std::nanf(""), inf = INFINITY;
    const Tensor x = tensor({{1.0f, nan}, {inf, 2.0f}});
    check_identical(tril(x), {1, 0, inf, 2});
    check_identical(triu(x, 1), {0, nan, 0, 0});
    check_identical(triu(tensor({{-1.0f, 1.0f}, {-2.0f, 1.0f}})), {-1, 1, 0, 1});
    const Tensor up = tensor({{nan, inf}, {3.0f, 4.0f}});   // the upstream's values outside are dropped, not * 0
    check_identical(grad_of([](const Tensor& t) { return tril(t); }, x, up), {nan, 0, 3, 4});
    check_identical(grad_of([](const Tensor& t) { return triu(t); }, tensor({{1.0f, 2.0f}, {3.0f, 4.0f}}), up), {nan, inf, 0, 4});
    CHECK(tril(zeros({2, 0, 3})).shape() == Shape{2, 0, 3});
}

TEST_CASE("unary functions give their closed-form values and derivatives")
{
    Tensor x = tensor({-1.0f, 0.5f, 2.0f});
    Tensor up = tensor({1.0f, 2.0f, 3.0f});
    auto each = [&](auto fn) {
        std::vector<float> r;
        for (float v : values(x)) r.push_back(fn(v));
        return r;
    };
    check_close(exp(x), each([](float v) { return std::exp(v); }));
    check_close(grad_of([](const Tensor& t) { return exp(t); }, x, up),
                {std::exp(-1.0f), 2 * std::exp(0.5f), 3 * std::exp(2.0f)}, 1e-4f);
    check_close(tanh(x), each([](float v) { return std::tanh(v); }));
    check_close(grad_of([](const Tensor& t) { return tanh(t); }, x, up),
                {1 - std::pow(std::tanh(-1.0f), 2.0f), 2 * (1 - std::pow(std::tanh(0.5f), 2.0f)),
                 3 * (1 - std::pow(std::tanh(2.0f), 2.0f))});
    check_close(sin(x), each([](float v) { return std::sin(v); }));
    check_close(grad_of([](const Tensor& t) { return sin(t); }, x, up),
                {std::cos(-1.0f), 2 * std::cos(0.5f), 3 * std::cos(2.0f)});
    check_close(cos(x), each([](float v) { return std::cos(v); }));
    check_close(grad_of([](const Tensor& t) { return cos(t); }, x, up),
                {-std::sin(-1.0f), -2 * std::sin(0.5f), -3 * std::sin(2.0f)});
    check_close(sigmoid(x), {0.26894142f, 0.62245933f, 0.88079708f});
    check_close(grad_of([](const Tensor& t) { return sigmoid(t); }, x, up),
                {0.19661193f, 2 * 0.23500371f, 3 * 0.10499359f});
    check_close(relu(x), {0, 0.5f, 2});
    check_close(grad_of([](const Tensor& t) { return relu(t); }, x, up), {0, 2, 3});
    check_close(neg(x), {1, -0.5f, -2});
    // gelu: x Phi(x), PyTorch's default (torch 1.13, float64: F.gelu(x) and its gradient)
    check_close(gelu(x), {-0.15865525f, 0.34573123f, 1.95449974f});
    check_close(grad_of([](const Tensor& t) { return gelu(t); }, x, up),
                {-0.08331547f, 2 * 0.86749512f, 3 * 1.08523180f}, 1e-4f);
    // gelu(tanh): x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and its derivative, evaluated in double
    check_close(gelu(x, "tanh"), {-0.15880801f, 0.34571401f, 1.95459769f});
    check_close(grad_of([](const Tensor& t) { return gelu(t, "tanh"); }, x, up),
                {-0.08296408f, 2 * 0.86736990f, 3 * 1.08609926f}, 1e-4f);
    CHECK_THROWS_WITH(gelu(x, "erf"), Contains("gelu: approximate must be \"none\" or \"tanh\", got \"erf\""));

    Tensor p = tensor({1.0f, 4.0f});
    check_close(log(p), {0.0f, std::log(4.0f)});
    check_close(grad_of([](const Tensor& t) { return log(t); }, p, tensor({1, 1})), {1.0f, 0.25f});
    check_close(sqrt(p), {1, 2});
    check_close(grad_of([](const Tensor& t) { return sqrt(t); }, p, tensor({1, 1})), {0.5f, 0.25f});
}

TEST_CASE("sum, mean and max reduce the named axes and route gradients back")
{
    Tensor x = tensor({{1, 5, 3}, {4, 2, 6}});
    check_close(sum(x), {21});
    CHECK(sum(x).dim() == 0);
    check_close(mean(x), {3.5f});
    check_close(sum(x, {0}), {5, 7, 9});
    check_close(sum(x, {1}, true), {9, 12});
    CHECK(sum(x, {1}, true).shape() == Shape{2, 1});
    check_close(mean(x, {-1}), {3, 4});
    check_close(grad_of([](const Tensor& t) { return mean(t, {1}); }, x, tensor({3, 6})), {1, 1, 1, 2, 2, 2});
    check_close(grad_of([](const Tensor& t) { return sum(t, {0}); }, x, tensor({1, 2, 3})), {1, 2, 3, 1, 2, 3});

    check_close(max(x, 1), {5, 6});
    check_close(max(x, 0, true), {4, 5, 6});
    CHECK(max(x, 0, true).shape() == Shape{1, 3});
    check_close(grad_of([](const Tensor& t) { return max(t, 1); }, x, tensor({10, 20})), {0, 10, 0, 0, 0, 20});
    Tensor ties = tensor({2, 7, 7});
    check_close(grad_of([](const Tensor& t) { return max(t, 0); }, ties, Tensor(Array(1.0f))), {0, 1, 0});

    // max() and min() of everything share the gradient among ties, as torch's; NaN wins, and its copies share
    check_close(max(tensor({1, 3, 3})), {3});
    check_close(grad_of([](const Tensor& t) { return max(t); }, tensor({1, 3, 3}), Tensor(Array(6.0f))), {0, 3, 3});
    check_close(grad_of([](const Tensor& t) { return min(t); }, tensor({{-0.0f, 2}, {0, 0}}), Tensor(Array(6.0f))),
                {2, 0, 2, 2});
    const Tensor with_nan = tensor({1.0f, std::nanf(""), 5.0f, std::nanf("")});
    CHECK(std::isnan(min(with_nan).item()));
    check_close(grad_of([](const Tensor& t) { return max(t); }, with_nan, Tensor(Array(1.0f))), {0, 0.5f, 0, 0.5f});
    CHECK_THROWS_WITH(max(zeros({0})), Contains("max(): Expected reduction dim to be specified"));

    CHECK_THROWS_WITH(sum(x, {2}), Contains("sum: axis 2 is out of range for a 2-D tensor"));
    CHECK_THROWS_WITH(sum(x, {1, -1}), Contains("appears twice"));
    CHECK_THROWS_WITH(max(x, -3), Contains("max: axis -3 is out of range"));
}

TEST_CASE("var and std_dev take torch's values, and std_dev's gradient is 0 where it is 0 (torch's, not NaN)")
{
    const Tensor x = tensor({{1, 2, 4}, {3, 3, 3}});
    check_close(var(x, {}), {1.0666667f});
    check_close(var(x, {1}), {2.3333333f, 0});
    check_close(var(x, {1}, false, true), {1.5555556f, 0});
    CHECK(var(x, {1}, false, true).shape() == Shape{2, 1});
    check_close(std_dev(x, {1}), {std::sqrt(2.3333333f), 0});
    // d std / dx_i = (x_i - mean) / ((n - 1) std) in the first row; 0 in the second, where std = 0
    check_close(grad_of([](const Tensor& t) { return std_dev(t, {1}); }, x, tensor({1, 1})),
                {-4.0f / 3 / (2 * std::sqrt(2.3333333f)), -1.0f / 3 / (2 * std::sqrt(2.3333333f)),
                 5.0f / 3 / (2 * std::sqrt(2.3333333f)), 0, 0, 0});
    check_close(grad_of([](const Tensor& t) { return std_dev(t, {}, false); }, tensor({1.5f}), Tensor(Array(1.0f))), {0});
}

TEST_CASE("softmax and log_softmax are stable for large inputs and have the right gradients")
{
    Tensor x = tensor({{1, 2, 3}, {1000, 1000, 1000}});
    float e = std::exp(1.0f), total = 1 + e + e * e;
    check_close(softmax(x), {1 / total, e / total, e * e / total, 1 / 3.0f, 1 / 3.0f, 1 / 3.0f});
    const float log_total = std::log(total);               // row 0 is [1, 2, 3] - (1 + log_total)
    check_close(log_softmax(x), {-log_total, 1 - log_total, 2 - log_total, -std::log(3.0f), -std::log(3.0f),
                                 -std::log(3.0f)});
    // d log_softmax with upstream one-hot(k): e_k - softmax
    Tensor g = grad_of([](const Tensor& t) { return log_softmax(t); }, x, tensor({{0, 0, 1}, {1, 0, 0}}));
    check_close(g, {-1 / total, -e / total, 1 - e * e / total, 2 / 3.0f, -1 / 3.0f, -1 / 3.0f});
    // softmax rows sum to 1, so an upstream that is constant along a row gives zero gradient
    check_close(grad_of([](const Tensor& t) { return softmax(t); }, x, tensor({{5, 5, 5}, {2, 2, 2}})), {0, 0, 0, 0, 0, 0});
    CHECK_THROWS_WITH(softmax(Tensor(Array(1.0f))), Contains("softmax: expected at least 1 axis"));
}

TEST_CASE("reshape, transpose, permute, concat, split and masked_fill move values and gradients")
{
    Tensor x = tensor({{0, 1, 2}, {3, 4, 5}});
    CHECK(reshape(x, {3, -1}).shape() == Shape{3, 2});
    check_close(reshape(x, {-1}), {0, 1, 2, 3, 4, 5});
    CHECK_THROWS_WITH(reshape(x, {4, -1}), Contains("cannot infer the -1 axis"));
    CHECK_THROWS_WITH(reshape(x, {4, 2}), Contains("reshape: shape (4, 2) holds 8 elements, but the input (2, 3) has 6"));

    check_close(transpose(x, 0, 1), {0, 3, 1, 4, 2, 5});
    check_close(grad_of([](const Tensor& t) { return transpose(t, 0, 1); }, x, tensor({{1, 2}, {3, 4}, {5, 6}})),
                {1, 3, 5, 2, 4, 6});
    Tensor cube = reshape(arange(24.0f), {2, 3, 4});
    Tensor p = permute(cube, {2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.to_array()(1, 1, 2) == cube.to_array()(1, 2, 1));
    CHECK_THROWS_WITH(permute(cube, {0, 1}), Contains("permute: expected 3 axes"));
    CHECK_THROWS_WITH(permute(cube, {0, 1, 1}), Contains("appears twice"));

    Tensor y = tensor({{6}, {7}});
    check_close(concat({x, y}, 1), {0, 1, 2, 6, 3, 4, 5, 7});
    Tensor xr = x.detach().requires_grad_(), yr = y.detach().requires_grad_();
    concat({xr, yr}, 1).backward(tensor({{1, 2, 3, 4}, {5, 6, 7, 8}}));
    check_close(xr.grad(), {1, 2, 3, 5, 6, 7});
    check_close(yr.grad(), {4, 8});
    CHECK_THROWS_WITH(concat({x, y}, 0), Contains("concat: tensor 1 has shape (2, 1), which does not match (2, 3)"));

    auto pieces = split(arange(5.0f), 2, 0);
    REQUIRE(pieces.size() == 3);
    check_close(pieces[2], {4});
    check_close(grad_of([](const Tensor& t) { return split(t, 2, 0)[1]; }, arange(5.0f), tensor({1, 2})), {0, 0, 1, 2, 0});

    Tensor mask = tensor({1, 0, 1});
    check_close(masked_fill(x, mask, -1e9f), {-1e9f, 1, -1e9f, -1e9f, 4, -1e9f});
    check_close(grad_of([&](const Tensor& t) { return masked_fill(t, mask, 0.0f); }, x, ones({2, 3})), {0, 1, 0, 0, 1, 0});
    CHECK_THROWS_WITH(masked_fill(x, ones({2, 1, 3}), 0), Contains("does not broadcast to the input's shape (2, 3)"));
}

TEST_CASE("embedding_lookup gathers rows and sums the gradients of repeated ids")
{
    Tensor w = tensor({{0, 1}, {10, 11}, {20, 21}}).requires_grad_();
    IdArray ids = {{2, 0}, {2, 2}};
    Tensor out = embedding_lookup(w, ids);
    CHECK(out.shape() == Shape{2, 2, 2});
    check_close(out, {20, 21, 0, 1, 20, 21, 20, 21});
    out.backward(reshape(tensor({1, 2, 3, 4, 5, 6, 7, 8}), {2, 2, 2}));
    check_close(w.grad(), {3, 4, 0, 0, 1 + 5 + 7, 2 + 6 + 8});   // row 1 untouched, row 2 three times

    IdArray bad = {{0, 1}, {3, 0}};
    CHECK_THROWS_WITH(embedding_lookup(w, bad),
                      Contains("id 3 at position (1, 0) is out of range for num_embeddings = 3"));
    IdArray negative = {-1};
    CHECK_THROWS_WITH(embedding_lookup(w, negative), Contains("id -1 at position (0,)"));
}

TEST_CASE("empty tensors: sums are zero, means and maxima over nothing are errors")
{
    CHECK(sum(zeros({0, 3})).item() == 0.0f);                   // as PyTorch
    CHECK(sum(zeros({0, 3}), {0}).shape() == Shape{3});
    CHECK_THROWS_WITH(mean(zeros({0, 3}), {0}), Contains("mean: cannot average over an empty axis of shape (0, 3)"));
    CHECK_THROWS_WITH(max(zeros({2, 0}), 1), Contains("max: cannot take the max over axis 1 of size 0 in shape (2, 0)"));
    CHECK(matmul(zeros({0, 3}), zeros({3, 2})).shape() == Shape{0, 2});
    CHECK(embedding_lookup(zeros({4, 2}), IdArray(Shape{0})).shape() == Shape{0, 2});
}

TEST_CASE("products over an empty inner dimension (K = 0) are zeros, plus the bias, as PyTorch's")
{
    // sgemm refuses lda = 0: gemm itself gives c = beta c, never leaving c as it found it
    Array c = {{std::nanf(""), 2.0f}};
    gemm<float>(false, false, 1, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
    check_close(c, Array{{0.0f, 0.0f}}, 0.0);
    c = {{1.0f, 2.0f}};
    gemm<float>(false, true, 1, 2, 0, 1.0f, nullptr, 1, nullptr, 1, 3.0f, c.data(), 2);
    check_close(c, Array{{3.0f, 6.0f}}, 0.0);

    check_close(matmul(zeros({2, 0}), zeros({0, 3})).to_array(), xt::zeros<float>({2, 3}), 0.0);
    Tensor x = zeros({2, 0}), w = zeros({3, 0}), b = tensor({1.0f, -2.0f, 0.5f});
    for (Tensor* t : {&x, &w, &b}) t->requires_grad_();
    check_close(linear(x, w).to_array(), xt::zeros<float>({2, 3}), 0.0);
    Tensor y = linear(x, w, b);
    check_close(y.to_array(), Array{{1.0f, -2.0f, 0.5f}, {1.0f, -2.0f, 0.5f}}, 0.0);
    y.backward(ones({2, 3}));
    check_close(b.grad().to_array(), Array{2.0f, 2.0f, 2.0f}, 0.0);   // the bias still learns
    CHECK(x.grad().shape() == Shape({2, 0}));
    CHECK(w.grad().shape() == Shape({3, 0}));
    Tensor none = zeros({0, 4}).requires_grad_(), w2 = ones({3, 4}).requires_grad_();
    sum(linear(none, w2)).backward();                                  // no rows: weight's gradient is 0
    check_close(w2.grad().to_array(), xt::zeros<float>({3, 4}), 0.0);
}

namespace {

std::string file_text(const std::string& path)
{
    std::ifstream in(path);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string without_indentation(const std::string& text)
{
    std::string out;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        const std::size_t first = text.find_first_not_of(' ', at);
        if (first < end) out += text.substr(first, end - first);
        out += '\n';
        at = end + 1;
    }
    return out;
}

}  // namespace

TEST_CASE("the worked example of docs/writing-an-op.md is the library's code, character for character")
{
    const std::string root = XGRAD_SOURCE_DIR;
    const std::string doc = file_text(root + "/docs/writing-an-op.md");
    // each ```cpp block of the page, and the file it must appear in (indentation aside), in the page's order
    const std::vector<std::string> homes = {"/core/elementwise.cpp", "/core/ops.h", "/tests/test_gradcheck_catalogue.cpp",
                                            "/python/src/nn.cpp", "/core/elementwise.cpp"};
    std::size_t at = 0;
    for (const std::string& home : homes) {
        at = doc.find("```cpp\n", at);
        REQUIRE(at != std::string::npos);
        at += 7;
        const std::size_t end = doc.find("```", at);
        const std::string block = doc.substr(at, end - at);
        INFO("the block quoted from " << home << ":\n" << block);
        CHECK(without_indentation(file_text(root + home)).find(without_indentation(block)) != std::string::npos);
        at = end + 3;
    }
    CHECK(doc.find("```cpp\n", at) == std::string::npos);   // no block left unchecked
}

TEST_CASE("softplus checks beta")
{
    CHECK_THROWS_WITH(softplus(tensor({1.0f}), 0.0f), Contains("softplus: beta must be positive, got 0"));
}
