// Comparisons: a (...) op b (...) broadcast -> a bool mask, as torch.eq/lt/...; masks carry no gradient.
#include "core/autograd.h"
#include "core/ops.h"

namespace xgrad {

namespace {

template <class F>
BoolArray compare_with(const Values& a, const Values& b, const Shape& shape, F f)
{
    const Array va = broadcast_to(a, shape), vb = broadcast_to(b, shape);
    BoolArray out = BoolArray::from_shape(shape);
    for (std::size_t i = 0; i < out.size(); ++i) out.data()[i] = f(va.data()[i], vb.data()[i]);
    return out;
}

}  // namespace

BoolArray compare(const Tensor& a, const Tensor& b, Comparison op)
{
    const OpScope scope("compare");
    const Shape shape = broadcast_shapes("compare", a.shape(), b.shape());
    const Values av = a.values(), bv = b.values();
    switch (op) {
    case Comparison::eq: return compare_with(av, bv, shape, [](float x, float y) { return x == y; });
    case Comparison::ne: return compare_with(av, bv, shape, [](float x, float y) { return x != y; });
    case Comparison::lt: return compare_with(av, bv, shape, [](float x, float y) { return x < y; });
    case Comparison::le: return compare_with(av, bv, shape, [](float x, float y) { return x <= y; });
    case Comparison::gt: return compare_with(av, bv, shape, [](float x, float y) { return x > y; });
    case Comparison::ge: return compare_with(av, bv, shape, [](float x, float y) { return x >= y; });
    }
    fail("compare: unknown comparison");
}

BoolArray compare(const Tensor& a, float s, Comparison op)
{
    const OpScope scope("compare");
    Array scalar = Array::from_shape({});
    scalar() = s;
    return compare(a, Tensor(std::move(scalar)), op);
}

}  // namespace xgrad
