// A fixed number of values treated as one number, for the CPU loops (winograd.cpp,
// layer_epilogue.cpp): a GCC vector, so each operation on it is one SIMD instruction (two
// without AVX) and the values stay in registers. Templates written for scalars run on it as is.
#pragma once

#include <stdint.h>
#include <string.h>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace sa {
namespace simd {

constexpr int LANES = 8;  // one AVX vector of floats

template <typename T>
struct Lanes {
    typedef T Vec __attribute__((vector_size(sizeof(T) * LANES)));
    Vec v;
    Lanes() = default;
    // NOLINTNEXTLINE: a scalar broadcasts. Vec{} + s would add 0.0 first (-0.0 + 0.0 is +0.0), and
    // a loop over the lanes becomes a chain of lane inserts where s is not a constant.
    Lanes(T s) : v{s, s, s, s, s, s, s, s} { static_assert(LANES == 8, "one initialiser per lane"); }
    static Lanes of(Vec x) { Lanes r; r.v = x; return r; }
    // LANES values from p, which need not be aligned; `store` writes them back.
    static Lanes load(const T* p) { Lanes r; memcpy(&r.v, p, sizeof(Vec)); return r; }
    void store(T* p) const { memcpy(p, &v, sizeof(Vec)); }
    friend Lanes operator+(Lanes a, Lanes b) { return of(a.v + b.v); }
    friend Lanes operator-(Lanes a, Lanes b) { return of(a.v - b.v); }
    friend Lanes operator*(Lanes a, Lanes b) { return of(a.v * b.v); }
    friend Lanes operator-(Lanes a) { return of(-a.v); }
    // Lane-wise (a < b ? x : y), like the scalar `select_lt` below.
    friend Lanes select_lt(Lanes a, Lanes b, Lanes x, Lanes y) { return of(a.v < b.v ? x.v : y.v); }
};

// a * b + c, rounded once where the CPU has fused multiply-add (GCC contracts no vector expressions
// under -std=c++17).
template <typename T>
inline Lanes<T> fma(Lanes<T> a, Lanes<T> b, Lanes<T> c) { return a * b + c; }
#if defined(__FMA__)
template <>
inline Lanes<float> fma(Lanes<float> a, Lanes<float> b, Lanes<float> c) {
    return Lanes<float>::of(_mm256_fmadd_ps(a.v, b.v, c.v));
}
#endif

template <typename T>
inline T select_lt(T a, T b, T x, T y) { return a < b ? x : y; }

// Asks for the cache lines of p[0 .. count) ahead of their use (WRITE: to be written): for loops
// reading more streams at once (planes, channels) than the hardware prefetcher follows.
template <bool WRITE = false, typename T>
inline void prefetch(const T* p, int64_t count) {
    for (int64_t j = 0; j < count; j += 64 / int64_t(sizeof(T))) __builtin_prefetch(p + j, WRITE, 3);
}

}  // namespace simd
}  // namespace sa
