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

namespace {

// a op b for tensors of any dtypes (bool aside: compared as 0/1), both in the dtype they promote to, as
// torch's comparisons: a bool tensor of their broadcast shape
Tensor compare_any(const char* name, const Tensor& a, const Tensor& b, Comparison op)
{
    const OpScope scope(name);
    const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
    const Dtype common = result_type(a, b);
    XGRAD_CHECK(common != Dtype::Half && common != Dtype::BFloat16, name, ": not implemented for '", dtype_name(common), "'");
    const std::vector<std::ptrdiff_t> to(shape.begin(), shape.end());
    const Tensor x = a.detach().to(common).expand(to).contiguous(), y = b.detach().to(common).expand(to).contiguous();
    Tensor out = empty(shape, kBool);
    bool* o = const_cast<bool*>(out.data_ptr<bool>());
    const std::size_t n = out.numel();
    dispatch(common, [&]<class T>(Tag<T>) {
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
            fail("internal: ", name, " of a half type");
        } else {
            const T* u = x.data_ptr<T>();
            const T* v = y.data_ptr<T>();
            for (std::size_t i = 0; i < n; ++i) {
                switch (op) {
                case Comparison::eq: o[i] = u[i] == v[i]; break;
                case Comparison::ne: o[i] = u[i] != v[i]; break;
                case Comparison::lt: o[i] = u[i] < v[i]; break;
                case Comparison::le: o[i] = u[i] <= v[i]; break;
                case Comparison::gt: o[i] = u[i] > v[i]; break;
                case Comparison::ge: o[i] = u[i] >= v[i]; break;
                }
            }
        }
    });
    return out;
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare_any("eq", a, b, Comparison::eq); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare_any("ne", a, b, Comparison::ne); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare_any("lt", a, b, Comparison::lt); }
Tensor le(const Tensor& a, const Tensor& b) { return compare_any("le", a, b, Comparison::le); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare_any("gt", a, b, Comparison::gt); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare_any("ge", a, b, Comparison::ge); }

BoolArray compare(const Tensor& a, float s, Comparison op)
{
    const OpScope scope("compare");
    Array scalar = Array::from_shape({});
    scalar() = s;
    return compare(a, Tensor(std::move(scalar)), op);
}

}  // namespace xgrad
