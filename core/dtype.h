// The element types a tensor's storage may hold, as libtorch's ScalarType: their names, sizes and
// categories, PyTorch's type promotion, the conversions between them (with torch's values outside a
// type's range), and dispatch from a run-time dtype to C++ code written once per element type.
//
//     Tensor ids = arange(0, 8, 1, kInt64);           // int64, as torch.arange(8)
//     Tensor x = ids.to(kFloat64) / 2;                 // float64
//     Tensor y = x * ones({8});                        // float64 with float32: promoted to float64
//     dispatch(x.dtype(), [&]<class T>(Tag<T>) { ... T is the element type ... });
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/check.h"

namespace xgrad {

// As c10::ScalarType, whose names libtorch's constants below follow. float16 and bfloat16 are
// storage types: they convert, print, index and save; arithmetic on them is refused, naming them.
enum class Dtype : std::uint8_t { Float, Double, Half, BFloat16, Long, Int, Short, Char, Byte, Bool };
inline constexpr int dtype_count = 10;

inline constexpr Dtype kFloat32 = Dtype::Float, kFloat = Dtype::Float;
inline constexpr Dtype kFloat64 = Dtype::Double, kDouble = Dtype::Double;
inline constexpr Dtype kFloat16 = Dtype::Half, kHalf = Dtype::Half;
inline constexpr Dtype kBFloat16 = Dtype::BFloat16;
inline constexpr Dtype kInt64 = Dtype::Long, kLong = Dtype::Long;
inline constexpr Dtype kInt32 = Dtype::Int, kInt = Dtype::Int;
inline constexpr Dtype kInt16 = Dtype::Short, kShort = Dtype::Short;
inline constexpr Dtype kInt8 = Dtype::Char, kChar = Dtype::Char;
inline constexpr Dtype kUInt8 = Dtype::Byte, kByte = Dtype::Byte;
inline constexpr Dtype kBool = Dtype::Bool;

const char* dtype_name(Dtype d);        // "float32", "int64", "bool": torch's names without "torch."
const char* scalar_type_name(Dtype d);  // "Float", "Long", "Bool": c10's names, which torch's messages use
constexpr std::size_t element_size(Dtype d)   // bytes, as x.element_size()
{
    constexpr std::size_t sizes[dtype_count] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
    return sizes[static_cast<int>(d)];
}
bool is_floating_point(Dtype d);        // float32, float64, float16, bfloat16
bool is_integral(Dtype d);              // the integer types, bool not among them
bool is_arithmetic(Dtype d);            // float32, float64 and the integer types: what ops compute in

// torch.promote_types: the dtype both convert to when they meet. Categories order bool < integer <
// floating; within one, the wider wins; uint8 with int8 is int16; float16 with bfloat16 is float32.
Dtype promote_types(Dtype a, Dtype b);

// What a tensor or a number brings to torch.result_type: a tensor of some dimensions outranks a
// 0-D tensor, which outranks a Python number; a lower rank decides the dtype only when its category
// (bool, integer, floating) is higher than every higher rank's. A Python float is the default dtype,
// an int int64, a bool bool.
enum class OperandRank { number, zero_dim, dimensioned };
struct DtypeOperand {
    Dtype dtype;
    OperandRank rank;
};
Dtype result_type(DtypeOperand a, DtypeOperand b);

// The dtype a Python float, and a factory call without a dtype, gives: float32 unless set to float64
// (torch.set_default_dtype, which refuses any other).
Dtype default_dtype();
void set_default_dtype(Dtype d);

// ---- element types ------------------------------------------------------------------------------------
// float16 and bfloat16 in memory: their bits. They convert to and from float, rounding to nearest even.
struct Half {
    std::uint16_t bits;
};
struct BFloat16 {
    std::uint16_t bits;
};
float to_float(Half h);
float to_float(BFloat16 b);
Half to_half(float f);
BFloat16 to_bfloat16(float f);

template <class T>
struct Tag {
    using type = T;
};

// The dtype of a C++ element type.
template <class T>
constexpr Dtype dtype_of()
{
    if constexpr (std::is_same_v<T, float>) return Dtype::Float;
    else if constexpr (std::is_same_v<T, double>) return Dtype::Double;
    else if constexpr (std::is_same_v<T, Half>) return Dtype::Half;
    else if constexpr (std::is_same_v<T, BFloat16>) return Dtype::BFloat16;
    else if constexpr (std::is_same_v<T, std::int64_t>) return Dtype::Long;
    else if constexpr (std::is_same_v<T, std::int32_t>) return Dtype::Int;
    else if constexpr (std::is_same_v<T, std::int16_t>) return Dtype::Short;
    else if constexpr (std::is_same_v<T, std::int8_t>) return Dtype::Char;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return Dtype::Byte;
    else if constexpr (std::is_same_v<T, bool>) return Dtype::Bool;
    else static_assert(sizeof(T) == 0, "no dtype holds this C++ type");
}

// f(Tag<T>{}) for the C++ type T of d: code written once for every element type.
template <class F>
decltype(auto) dispatch(Dtype d, F&& f)
{
    switch (d) {
    case Dtype::Float: return f(Tag<float>{});
    case Dtype::Double: return f(Tag<double>{});
    case Dtype::Half: return f(Tag<Half>{});
    case Dtype::BFloat16: return f(Tag<BFloat16>{});
    case Dtype::Long: return f(Tag<std::int64_t>{});
    case Dtype::Int: return f(Tag<std::int32_t>{});
    case Dtype::Short: return f(Tag<std::int16_t>{});
    case Dtype::Char: return f(Tag<std::int8_t>{});
    case Dtype::Byte: return f(Tag<std::uint8_t>{});
    case Dtype::Bool: return f(Tag<bool>{});
    }
    fail("internal: dtype ", static_cast<int>(d), " is none of xgrad's");
}

// A value of type From as type To, as torch's casts give it on x86-64 (so that every build agrees
// where C++ leaves it undefined): a float past int64's range or NaN becomes INT64_MIN; the narrower
// integers take the float through int32 (past its range, or NaN: INT32_MIN) and keep its low bits,
// so 300.7 as int8 is 44; integers narrow by keeping their low bits; anything to bool is != 0.
template <class To, class From>
To convert(From v)
{
    if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) {
        return convert<To>(to_float(v));
    } else if constexpr (std::is_same_v<To, Half>) {
        return to_half(static_cast<float>(v));
    } else if constexpr (std::is_same_v<To, BFloat16>) {
        return to_bfloat16(static_cast<float>(v));
    } else if constexpr (std::is_same_v<To, bool>) {
        return v != From(0);
    } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
        const double d = static_cast<double>(v);
        if constexpr (sizeof(To) == 8) {
            if (!(d >= -0x1p63 && d < 0x1p63)) return std::numeric_limits<std::int64_t>::min();
            return static_cast<To>(d);
        } else {
            const std::int32_t i = (d > -0x1p31 - 1.0 && d < 0x1p31) ? static_cast<std::int32_t>(d)
                                                                     : std::numeric_limits<std::int32_t>::min();
            return static_cast<To>(static_cast<std::uint32_t>(i));   // the low bits, two's complement
        }
    } else if constexpr (std::is_integral_v<From> && std::is_integral_v<To>) {
        using U = std::make_unsigned_t<To>;
        return static_cast<To>(static_cast<U>(v));   // the low bits, without signed overflow
    } else {
        return static_cast<To>(v);
    }
}

}  // namespace xgrad
