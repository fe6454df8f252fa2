// Generator: a seeded source of random numbers, so that every run is reproducible from its seed.
// The engine is std::mt19937_64 (the same stream on every platform); the distributions are written
// here, since the standard library's are not portable across implementations.
#pragma once

#include <cstdint>
#include <random>
#include <type_traits>

#include "core/array.h"

namespace xgrad {

class Generator {
public:
    explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
    void manual_seed(std::uint64_t seed);

    float uniform();                                    // U[0, 1), 24 random bits
    float normal();                                     // N(0, 1), Box-Muller
    double uniform64();                                 // U[0, 1), 53 random bits: a float64 draw
    double normal64();                                  // N(0, 1) in double, Box-Muller
    std::uint64_t below(std::uint64_t n);               // uniform integer in [0, n)
    std::uint64_t bits() { return engine_(); }          // 64 random bits: a seed for counter_uniform

    // fill with U[low, high) or N(mean, std^2), drawn in T: float (Array) or double (Array64)
    template <class T>
    void uniform_(ArrayOf<T>& a, std::type_identity_t<T> low = 0, std::type_identity_t<T> high = 1);
    template <class T>
    void normal_(ArrayOf<T>& a, std::type_identity_t<T> mean = 0, std::type_identity_t<T> std = 1);

private:
    std::mt19937_64 engine_;
    bool has_spare_ = false;                            // Box-Muller makes normals in pairs
    float spare_ = 0.0f;
    bool has_spare64_ = false;
    double spare64_ = 0.0;
};

// A uniform in [0, 1) that is a pure function of (seed, counter): the same value for the same pair on
// any thread and at any time, so a dropout mask can be recomputed in the backward instead of kept,
// and a fused kernel draws exactly the mask its composed twin draws. (splitmix64's finaliser.)
inline float counter_uniform(std::uint64_t seed, std::uint64_t counter)
{
    std::uint64_t z = seed + (counter + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * 0x1.0p-24f;
}

Generator& default_generator();                         // used by randn, rand and the nn inits
void manual_seed(std::uint64_t seed);                   // reseeds the default generator

}  // namespace xgrad
