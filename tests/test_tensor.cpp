// The Tensor handle and the autograd engine: sharing, accumulation, grad mode, graph lifetime, errors.
#include <catch2/catch.hpp>

#include <pthread.h>

#include "core/axes.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;

static std::vector<float> values(const Tensor& t)
{
    const Values v = t.values();
    return {v.begin(), v.end()};
}

TEST_CASE("x * x gives a gradient of 2x")
{
    Tensor x = tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
    sum(x * x).backward();
    CHECK(values(x.grad()) == std::vector<float>{2.0f, -4.0f, 6.0f});
}

TEST_CASE("copies of a tensor share data and grad")
{
    Tensor a = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor b = a;
    {
        NoGradGuard no_grad;   // a leaf that requires grad is written outside autograd, as in torch
        b.select(0, 0).fill_(5.0f);
    }
    CHECK(a.to_array()(0) == 5.0f);
    sum(b * 3.0f).backward();
    REQUIRE(a.grad().defined());
    CHECK(values(a.grad()) == std::vector<float>{3.0f, 3.0f});
    CHECK(a.is_same(b));
}

TEST_CASE("a value used in several places accumulates every path's gradient")
{
    Tensor x = tensor({2.0f}).requires_grad_();
    Tensor y = x * 3.0f + exp(x) * x - x;   // dy/dx = 3 + e^x (1 + x) - 1
    y.backward();
    CHECK(x.grad().item() == Approx(2.0f + std::exp(2.0f) * 3.0f));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    sum(x * 2.0f).backward();
    sum(x * 2.0f).backward();
    CHECK(values(x.grad()) == std::vector<float>{4.0f, 4.0f});
    x.zero_grad(false);                    // keep the buffer, fill it with zeros
    REQUIRE(x.grad().defined());
    CHECK(values(x.grad()) == std::vector<float>{0.0f, 0.0f});
    x.zero_grad();                         // set_to_none, PyTorch's default
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("intermediate results do not keep a gradient, leaves do")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor h = x * 2.0f;
    sum(h).backward();
    CHECK(x.is_leaf());
    CHECK_FALSE(h.is_leaf());
    CHECK(std::string(h.op_name()) == "mul_scalar");
    CHECK_FALSE(h.grad().defined());
}

TEST_CASE("no_grad records no graph")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor y;
    {
        NoGradGuard no_grad;
        CHECK_FALSE(is_grad_enabled());
        y = x * x;
    }
    CHECK(is_grad_enabled());
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    CHECK_THROWS_WITH(sum(y).backward(), Contains("does not require grad"));
}

TEST_CASE("detach cuts the graph and copies the values")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor d = (x * 3.0f).detach();
    CHECK_FALSE(d.requires_grad());
    Tensor y = sum(x * d);                 // d is a constant here: dy/dx = d
    y.backward();
    CHECK(values(x.grad()) == std::vector<float>{3.0f, 6.0f});
}

TEST_CASE("only one-element outputs get an implicit gradient")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor y = x * 2.0f;
    CHECK_THROWS_WITH(y.backward(), Contains("implicitly created only for a one-element output") &&
                                        Contains("shape (2,)"));
    y.backward(tensor({1.0f, 10.0f}));
    CHECK(values(x.grad()) == std::vector<float>{2.0f, 20.0f});
    CHECK_THROWS_WITH(y.backward(tensor({1.0f})), Contains("must have the tensor's shape (2,)"));
}

TEST_CASE("a second backward through a freed graph says why, and retain_graph allows it")
{
    Tensor x = tensor({3.0f}).requires_grad_();
    Tensor y = x * x;
    y.backward();
    CHECK_THROWS_WITH(y.backward(), Contains("second time") && Contains("retain_graph"));

    Tensor z = x * x;
    Tensor loss = z + z;                   // the shared part is freed too
    x.zero_grad();
    loss.backward({}, true);
    loss.backward();
    CHECK(x.grad().item() == Approx(24.0f));   // 2 * (2 * 2x)
    CHECK_THROWS_WITH(loss.backward(), Contains("second time"));
}

// Runs fn on a thread with a small stack (256 KiB): recursion 10,000 deep would overflow it.
static void on_small_stack(void (*fn)())
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    REQUIRE(pthread_create(&thread, &attr, [](void* f) -> void* { reinterpret_cast<void (*)()>(f)(); return nullptr; },
                           reinterpret_cast<void*>(fn)) == 0);
    pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);
}

static double chain_grad = 0.0;
static bool chain_freed = false;

TEST_CASE("a chain of 10,000 ops backpropagates and is freed without overflowing the stack")
{
    on_small_stack([] {
        Tensor x = tensor({1.0f}).requires_grad_();
        Tensor y = x;
        for (int i = 0; i < 10000; ++i) y = y * 1.0001f + 0.0f;   // 20,000 nodes deep
        y.backward({}, true);              // keep the graph, so that destroying it is deep too
        chain_grad = x.grad().item();
        y = Tensor();                      // frees the whole chain here
        chain_freed = true;
    });
    CHECK(chain_grad == Approx(std::pow(1.0001, 10000)).epsilon(1e-3));
    CHECK(chain_freed);
}

TEST_CASE("requires_grad_ is for leaves only")
{
    Tensor x = tensor({1.0f}).requires_grad_();
    Tensor y = x * 2.0f;
    CHECK_THROWS_WITH(y.requires_grad_(false), Contains("only change it on a leaf") && Contains("mul_scalar"));
}

TEST_CASE("creation helpers make the documented shapes and values")
{
    CHECK(zeros({2, 3}).shape() == Shape{2, 3});
    CHECK(values(ones({2})) == std::vector<float>{1.0f, 1.0f});
    CHECK(values(full({3}, 7.0f)) == std::vector<float>{7.0f, 7.0f, 7.0f});
    CHECK(values(arange(4.0f)) == std::vector<float>{0, 1, 2, 3});
    CHECK(arange(4).dtype() == kInt64);                         // integer bounds: int64, as torch.arange(4)
    CHECK(arange(2, 8, 3).data_ptr<std::int64_t>()[1] == 5);
    CHECK(values(arange(1.0f, 2.0f, 0.25f)) == std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f});
    CHECK(tensor({{1, 2, 3}, {4, 5, 6}}).shape() == Shape{2, 3});
    CHECK(Tensor(Array(xt::ones<float>({2, 1}))).shape() == Shape{2, 1});
    CHECK(zeros({2}, true).requires_grad());
    CHECK_THROWS_WITH(from_vector({1, 2, 3}, {2, 2}), Contains("3 values do not fill shape (2, 2)"));
    CHECK_THROWS_WITH(tensor({{1, 2}, {3}}), Contains("rows have different lengths"));
    CHECK_THROWS_WITH(arange(0.0f, 1.0f, 0.0f), Contains("step must be nonzero"));
    CHECK_THROWS_WITH(tensor({1, 2}).item(), Contains("one element"));
    CHECK_THROWS_WITH(Tensor().shape(), Contains("undefined"));
}

TEST_CASE("a seeded generator repeats its stream, and randn has mean 0 and std 1")
{
    manual_seed(3);
    Tensor a = randn({1000});
    manual_seed(3);
    Tensor b = randn({1000});
    CHECK(values(a) == values(b));
    Tensor big = randn({100000});
    float m = mean(big).item();
    float var = mean(pow(big - m, 2.0f)).item();
    CHECK(std::abs(m) < 0.02f);
    CHECK(var == Approx(1.0f).epsilon(0.02));
    Tensor u = rand({100000});
    CHECK(xt::amin(u.to_array())() >= 0.0f);
    CHECK(xt::amax(u.to_array())() < 1.0f);
    CHECK(mean(u).item() == Approx(0.5f).epsilon(0.02));
}

TEST_CASE("anomaly mode names the op, its input shapes and the pass that made a NaN or Inf")
{
    Tensor x = tensor({1.0f, -1.0f, 4.0f}).requires_grad_();
    CHECK_NOTHROW(log(x));                                   // off: NaN flows on silently, as in PyTorch
    {
        DetectAnomalyGuard anomaly;
        CHECK(is_anomaly_enabled());
        CHECK_THROWS_WITH(log(x), Contains("anomaly: the forward output of 'log' (inputs (3,)) has NaN at element (1,)"));
        // sqrt(0) is fine forward, but its gradient 1 / (2 sqrt(0)) is infinite
        Tensor z = tensor({0.0f, 1.0f}).requires_grad_();
        Tensor y = sum(sqrt(z));
        CHECK_THROWS_WITH(y.backward(), Contains("anomaly: the backward gradient of 'sqrt' (inputs (2,)) has Inf at element (0,)"));
        Tensor ok = sum(x * x);
        CHECK_NOTHROW(ok.backward());
    }
    CHECK_FALSE(is_anomaly_enabled());
}

TEST_CASE("backward(upstream) reads the upstream without writing it, whichever op takes it first")
{
    Tensor x = tensor({0.5f, -1.0f, 2.0f}).requires_grad_();
    const std::vector<float> up_values{1.0f, 2.0f, -3.0f};
    Tensor up = from_vector(up_values, {3});
    Tensor e = exp(x);
    std::vector<float> ex = values(e);
    SECTION("passed on by add, then overwritten by exp's backward")
    {
        (e + 1.0f).backward(up);
        CHECK(values(up) == up_values);
        for (int i = 0; i < 3; ++i) CHECK(x.grad().to_array()(i) == Approx(up_values[i] * ex[i]));
    }
    SECTION("a value reached twice gets both contributions")
    {
        (e + e).backward(up);
        CHECK(values(up) == up_values);
        for (int i = 0; i < 3; ++i) CHECK(x.grad().to_array()(i) == Approx(2.0f * up_values[i] * ex[i]));
    }
    SECTION("a leaf keeps a copy, so later accumulation leaves the upstream alone")
    {
        x.backward(up);
        x.backward(up);
        CHECK(values(up) == up_values);
        CHECK(values(x.grad()) == std::vector<float>{2.0f, 4.0f, -6.0f});
        CHECK(x.grad().data_ptr() != up.data_ptr());
    }
    SECTION("through reshape into an embedding's scatter-add")
    {
        Tensor w = tensor({{1.0f, 2.0f}, {3.0f, 4.0f}}).requires_grad_();
        IdArray ids = {1, 1, 0};
        Tensor up2 = tensor({{1.0f, 2.0f}, {3.0f, 4.0f}, {5.0f, 6.0f}});
        reshape(embedding_lookup(w, ids, {}), {6}).backward(reshape(up2, {6}).detach());
        CHECK(values(w.grad()) == std::vector<float>{5.0f, 6.0f, 4.0f, 6.0f});
    }
}

TEST_CASE("a backward that throws leaves no node pointing at the upstream")
{
    DetectAnomalyGuard anomaly;
    Tensor w = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor x = tensor({0.0f, 1.0f}).requires_grad_();
    Tensor e = exp(w);
    Tensor up = tensor({1.0f, 1.0f});
    // the walk runs sqrt's backward (1 / (2 sqrt(0)) = inf: anomaly) while exp still waits with the
    // upstream it was handed by add
    CHECK_THROWS_WITH((e + sqrt(x)).backward(up), Contains("sqrt"));
    w.zero_grad();
    e.backward(tensor({10.0f, 10.0f}));
    CHECK(w.grad().to_array()(0) == Approx(10.0f * std::exp(1.0f)));   // not (10 + 1) e: nothing stale
    CHECK(w.grad().to_array()(1) == Approx(10.0f * std::exp(2.0f)));
}

TEST_CASE("add and sub write over a temporary operand's buffer, and only when nothing reads it again")
{
    Tensor x = tensor({1.0f, 2.0f, 3.0f}).requires_grad_();
    Tensor b = tensor({10.0f, 20.0f, 30.0f}).requires_grad_();
    SECTION("a temporary whose backward needs only shapes donates its buffer")
    {
        Tensor twice = x * 2.0f;
        const float* buffer = twice.data_ptr();
        Tensor y = std::move(twice) + b;
        CHECK(y.data_ptr() == buffer);
        CHECK(values(y) == std::vector<float>{12.0f, 24.0f, 36.0f});
        sum(y * y).backward();
        CHECK(values(x.grad()) == std::vector<float>{48.0f, 96.0f, 144.0f});   // 2 y * 2
        CHECK(values(b.grad()) == std::vector<float>{24.0f, 48.0f, 72.0f});    // 2 y
    }
    SECTION("the right operand donates too, under sub")
    {
        Tensor twice = x * 2.0f;
        const float* buffer = twice.data_ptr();
        Tensor y = b - std::move(twice);
        CHECK(y.data_ptr() == buffer);
        CHECK(values(y) == std::vector<float>{8.0f, 16.0f, 24.0f});
        sum(y).backward();
        CHECK(values(x.grad()) == std::vector<float>{-2.0f, -2.0f, -2.0f});
    }
    SECTION("an output its backward reads (exp) is never written over")
    {
        Tensor e = exp(x);
        const float* buffer = e.data_ptr();
        Tensor y = std::move(e) + b;
        CHECK(y.data_ptr() != buffer);
        sum(y).backward();
        for (int i = 0; i < 3; ++i) CHECK(x.grad().to_array()(i) == Approx(std::exp(float(i + 1))));
    }
    SECTION("an operand someone still holds keeps its values")
    {
        Tensor twice = x * 2.0f;
        Tensor y = twice + b;
        CHECK(values(twice) == std::vector<float>{2.0f, 4.0f, 6.0f});
        CHECK(y.data_ptr() != twice.data_ptr());
    }
    SECTION("a broadcast operand smaller than the result is not reused")
    {
        Tensor row = tensor({{1.0f, 2.0f, 3.0f}}) * 1.0f;   // (1, 3) against (2, 3)
        Tensor y = std::move(row) + tensor({{1.0f, 1.0f, 1.0f}, {2.0f, 2.0f, 2.0f}});
        CHECK(y.shape() == Shape{2, 3});
        CHECK(values(y) == std::vector<float>{2.0f, 3.0f, 4.0f, 3.0f, 4.0f, 5.0f});
    }
}

TEST_CASE("a shape whose element count overflows size_t is refused, naming the op and the shape")
{
    const std::size_t huge = std::size_t(1) << 40;   // (2^40, 2^40) holds 2^80 elements, which wraps to 0
    CHECK_THROWS_WITH(zeros({huge, huge}), Contains("zeros: shape (1099511627776, 1099511627776)") &&
                                               Contains("more than a size_t can count"));
    CHECK_THROWS_WITH(ones({huge, huge}), Contains("ones: shape (1099511627776, 1099511627776)"));
    CHECK_THROWS_WITH(full({huge, huge, 2}, 1.0f), Contains("full: shape (1099511627776, 1099511627776, 2)"));
    CHECK_THROWS_WITH(randn({huge, huge}), Contains("randn: shape"));
    CHECK_THROWS_WITH(rand({huge, huge}), Contains("rand: shape"));
    CHECK_THROWS_WITH(from_vector({}, {huge, huge}), Contains("from_vector: shape (1099511627776, 1099511627776)"));
    CHECK(zeros({huge, huge, 0}).numel() == 0);      // a 0 anywhere: no elements, no overflow
    // 2^33 x 2^31 = 2^64 rows' worth wraps to 0: a table that reads past its end at the first lookup
    CHECK_THROWS_WITH(nn::Embedding(std::size_t(1) << 33, std::size_t(1) << 31),
                      Contains("nn::Embedding: shape (8589934592, 2147483648)"));
    CHECK_THROWS_WITH(nn::Linear(std::size_t(1) << 33, std::size_t(1) << 31), Contains("nn::Linear: shape (2147483648, 8589934592)"));
    // a product that wraps to exactly the input's 6 elements: 4294967298 * 4611686011984936963 = 2^65 * 3 + 6
    CHECK_THROWS_WITH(reshape(zeros({2, 3}), {4294967298, 4611686011984936963}),
                      Contains("reshape: shape (4294967298, 4611686011984936963) has more elements than a size_t can count"));
    CHECK_THROWS_WITH(broadcast_shapes("add", {std::size_t(1) << 32, 1}, {1, std::size_t(1) << 32}),
                      Contains("add: shape (4294967296, 4294967296) has about"));
}
