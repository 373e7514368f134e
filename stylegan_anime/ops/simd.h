// A fixed number of values treated as one number, for the CPU loops (winograd.cpp,
// layer_epilogue.cpp): a GCC vector, so each operation on it is one SIMD instruction (two
// without AVX) and the values stay in registers. Templates written for scalars run on it as is.
#pragma once

#include <string.h>

namespace sa {
namespace simd {

constexpr int LANES = 8;  // one AVX vector of floats

template <typename T>
struct Lanes {
    typedef T Vec __attribute__((vector_size(sizeof(T) * LANES)));
    Vec v;
    Lanes() = default;
    Lanes(T s) : v(Vec{} + s) {}  // NOLINT: a constant broadcasts
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

template <typename T>
inline T select_lt(T a, T b, T x, T y) { return a < b ? x : y; }

}  // namespace simd
}  // namespace sa
