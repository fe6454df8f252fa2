// The seeded generator and its distributions.
#include "core/random.h"

#include <cmath>
#include <numbers>

#include "core/check.h"

namespace xgrad {

void Generator::manual_seed(std::uint64_t seed)
{
    engine_.seed(seed);
    has_spare_ = false;
}

float Generator::uniform() { return static_cast<float>(engine_() >> 40) * 0x1.0p-24f; }

float Generator::normal()
{
    if (has_spare_) {
        has_spare_ = false;
        return spare_;
    }
    // two uniforms in (0, 1] and [0, 1) give two independent normals
    double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
    double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    double radius = std::sqrt(-2.0 * std::log(u1));
    double angle = 2.0 * std::numbers::pi * u2;
    spare_ = static_cast<float>(radius * std::sin(angle));
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(angle));
}

double Generator::uniform64() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Generator::normal64()
{
    if (has_spare64_) {
        has_spare64_ = false;
        return spare64_;
    }
    const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * std::numbers::pi * u2;
    spare64_ = radius * std::sin(angle);
    has_spare64_ = true;
    return radius * std::cos(angle);
}

std::uint64_t Generator::below(std::uint64_t n)
{
    XGRAD_CHECK(n > 0, "Generator::below: n must be positive");
    // rejection keeps every value equally likely
    std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
    std::uint64_t r;
    do {
        r = engine_();
    } while (r >= limit);
    return r % n;
}

// the fills compute in T throughout: float32 draws are float arithmetic, as they always were
template <class T>
void Generator::uniform_(ArrayOf<T>& a, std::type_identity_t<T> low, std::type_identity_t<T> high)
{
    XGRAD_CHECK(low <= high, "uniform_: low (", low, ") must not exceed high (", high, ")");
    for (auto& x : a) {
        if constexpr (std::is_same_v<T, float>) x = low + (high - low) * uniform();
        else x = low + (high - low) * uniform64();
    }
}

template <class T>
void Generator::normal_(ArrayOf<T>& a, std::type_identity_t<T> mean, std::type_identity_t<T> std)
{
    XGRAD_CHECK(std >= 0, "normal_: std must be non-negative, got ", std);
    for (auto& x : a) {
        if constexpr (std::is_same_v<T, float>) x = mean + std * normal();
        else x = mean + std * normal64();
    }
}

template void Generator::uniform_<float>(Array&, float, float);
template void Generator::uniform_<double>(Array64&, double, double);
template void Generator::normal_<float>(Array&, float, float);
template void Generator::normal_<double>(Array64&, double, double);

Generator& default_generator()
{
    static Generator generator(0);
    return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace xgrad
