// The dtypes' names and categories, PyTorch's promotion rules, and float16/bfloat16 rounding.
#include "core/dtype.h"

#include <optional>

namespace xgrad {

const char* dtype_name(Dtype d)
{
    constexpr const char* names[dtype_count] = {"float32", "float64", "float16", "bfloat16", "int64",
                                                "int32",   "int16",   "int8",    "uint8",    "bool"};
    return names[static_cast<int>(d)];
}

const char* scalar_type_name(Dtype d)
{
    constexpr const char* names[dtype_count] = {"Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"};
    return names[static_cast<int>(d)];
}

bool is_floating_point(Dtype d) { return d == Dtype::Float || d == Dtype::Double || d == Dtype::Half || d == Dtype::BFloat16; }
bool is_integral(Dtype d) { return !is_floating_point(d) && d != Dtype::Bool; }
bool is_arithmetic(Dtype d) { return d == Dtype::Float || d == Dtype::Double || is_integral(d); }

namespace {

// 0 bool, 1 integer, 2 floating: the order of torch's categories
int category(Dtype d) { return d == Dtype::Bool ? 0 : is_floating_point(d) ? 2 : 1; }

}  // namespace

Dtype promote_types(Dtype a, Dtype b)
{
    if (a == b) return a;
    if (category(a) != category(b)) return category(a) > category(b) ? a : b;   // bool < integer < floating
    if (is_floating_point(a)) {
        if (a == Dtype::Double || b == Dtype::Double) return Dtype::Double;
        return Dtype::Float;   // float32 with a half type, or float16 with bfloat16
    }
    // two different integer types: uint8 is the one unsigned; with a signed type it needs int16 at least
    if (a == Dtype::Byte || b == Dtype::Byte) {
        const Dtype other = a == Dtype::Byte ? b : a;
        return other == Dtype::Char ? Dtype::Short : other;
    }
    return element_size(a) > element_size(b) ? a : b;
}

namespace {

// torch's combine_categories: the higher rank's dtype, unless the lower one is of a higher category
std::optional<Dtype> combine(std::optional<Dtype> higher, std::optional<Dtype> lower)
{
    if (!higher) return lower;
    if (!lower) return higher;
    if (is_floating_point(*higher)) return higher;
    if (*higher == Dtype::Bool || is_floating_point(*lower)) return promote_types(*higher, *lower);
    return higher;
}

}  // namespace

Dtype result_type(DtypeOperand a, DtypeOperand b)
{
    std::optional<Dtype> by_rank[3];
    for (DtypeOperand o : {a, b}) {
        // a Python float counts as the default dtype
        const Dtype d = o.rank == OperandRank::number && is_floating_point(o.dtype) ? default_dtype() : o.dtype;
        auto& slot = by_rank[static_cast<int>(o.rank)];
        slot = slot ? promote_types(*slot, d) : d;
    }
    return *combine(by_rank[2], combine(by_rank[1], by_rank[0]));
}

namespace {
Dtype the_default_dtype = Dtype::Float;
}

Dtype default_dtype() { return the_default_dtype; }

void set_default_dtype(Dtype d)
{
    XGRAD_CHECK(d == Dtype::Float || d == Dtype::Double, "set_default_dtype: only floating-point types are supported as ",
                "the default type, and of those float32 and float64; got ", dtype_name(d));
    the_default_dtype = d;
}

// ---- float16 and bfloat16 -------------------------------------------------------------------------------
float to_float(Half h)
{
    const std::uint32_t sign = static_cast<std::uint32_t>(h.bits & 0x8000u) << 16;
    const std::uint32_t exponent = (h.bits >> 10) & 0x1fu, mantissa = h.bits & 0x3ffu;
    if (exponent == 0) {   // zero or subnormal: mantissa * 2^-24
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));   // inf, NaN
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Rounds to nearest, ties to even; past 65504 (from 65520 up) it is inf; NaN stays NaN.
Half to_half(float f)
{
    constexpr std::uint32_t f32_inf = 255u << 23, f16_max = (127u + 16) << 23;
    constexpr std::uint32_t denorm_magic_bits = ((127u - 15) + (23 - 10) + 1) << 23;
    std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = u & 0x80000000u;
    u ^= sign;
    std::uint16_t out;
    if (u >= f16_max) {
        out = u > f32_inf ? 0x7e00 : 0x7c00;
    } else if (u < (113u << 23)) {   // a subnormal half or zero: the float adder rounds it
        const float sum = std::bit_cast<float>(u) + std::bit_cast<float>(denorm_magic_bits);
        out = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(sum) - denorm_magic_bits);
    } else {
        const std::uint32_t odd = (u >> 13) & 1u;
        u += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xfffu + odd;
        out = static_cast<std::uint16_t>(u >> 13);
    }
    return Half{static_cast<std::uint16_t>(out | (sign >> 16))};
}

float to_float(BFloat16 b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b.bits) << 16); }

BFloat16 to_bfloat16(float f)
{
    if (std::isnan(f)) return BFloat16{0x7fc0};
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    return BFloat16{static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

}  // namespace xgrad
