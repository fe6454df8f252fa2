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

void Generator::uniform_(Array& a, float low, float high)
{
    XGRAD_CHECK(low <= high, "uniform_: low (", low, ") must not exceed high (", high, ")");
    for (auto& x : a) x = low + (high - low) * uniform();
}

void Generator::normal_(Array& a, float mean, float std)
{
    XGRAD_CHECK(std >= 0.0f, "normal_: std must be non-negative, got ", std);
    for (auto& x : a) x = mean + std * normal();
}

void Generator::uniform_(Array64& a, double low, double high)
{
    XGRAD_CHECK(low <= high, "uniform_: low (", low, ") must not exceed high (", high, ")");
    for (auto& x : a) x = low + (high - low) * uniform64();
}

void Generator::normal_(Array64& a, double mean, double std)
{
    XGRAD_CHECK(std >= 0.0, "normal_: std must be non-negative, got ", std);
    for (auto& x : a) x = mean + std * normal64();
}

Generator& default_generator()
{
    static Generator generator(0);
    return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace xgrad
