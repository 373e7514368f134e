// Shared by the CPU (.cpp) and CUDA (.cu) builds: every function here is compiled for both,
// so the CPU tests run the very per-element code that the GPU runs.
#pragma once

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SA_HD __host__ __device__ __forceinline__
#define SA_HD_INLINE SA_HD
#else
#define SA_HD inline
// For functions that the CPU code calls on SIMD vectors: called out of line, every vector
// argument and result would go through memory.
#define SA_HD_INLINE inline __attribute__((always_inline))
#endif

namespace sa {

// Integer division rounding towards -inf (C++ truncates towards zero). The up/down factors are
// nearly always 1 or 2, and a well-predicted branch costs far less than a 64-bit division.
SA_HD int64_t floor_div(int64_t a, int64_t b) {
    if (b == 1) return a;
    if (b == 2) return a >> 1;  // arithmetic shift: floor division for negative a too
    int64_t q = a / b;
    return (q * b > a) ? q - 1 : q;
}

SA_HD int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

SA_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
SA_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Overloads so that templates pick the float or the double function on host and device alike.
SA_HD float sa_exp(float v) { return expf(v); }
SA_HD double sa_exp(double v) { return exp(v); }
SA_HD float sa_log1p(float v) { return log1pf(v); }
SA_HD double sa_log1p(double v) { return log1p(v); }
SA_HD float sa_expm1(float v) { return expm1f(v); }
SA_HD double sa_expm1(double v) { return expm1(v); }
SA_HD float sa_tanh(float v) { return tanhf(v); }
SA_HD double sa_tanh(double v) { return tanh(v); }

}  // namespace sa
