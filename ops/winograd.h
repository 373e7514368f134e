// Winograd F(4x4, 3x3): the per-tile transforms of a 3x3 'same' convolution (padding 1).
//
// A 6x6 input tile d (stride 4, starting one pixel above-left of its 4x4 output tile) becomes
// V = Bt d Bt^T; a 3x3 filter g becomes U = G g G^T;
// the 36 products U ⊙ V, summed over input channels, are 36 matrix products (done by BLAS); the
// 4x4 output tile is Y = At M At^T. The adjoints (Bt^T dV Bt, At^T dY At) are the transforms'
// gradients. Points 0, ±1, ±2, ∞, as in Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks" (2016).
//
// The functions are templates over the value type T: the CPU loops run them on a vector of
// tiles side by side (winograd.cpp's Lanes), so each scalar operation here is one SIMD operation.
//
// Tensor layouts: x, dx [N, C, H, W]; V, dV [36, C, P]; M, dM [36, K, P]; y, dy [N, K, H, W];
// g, dg [K, C, 3, 3]; U, dU [36, K, C];
// P = N * th * tw tiles with th = ceil(H / 4), tw = ceil(W / 4), in (n, ty, tx) order.
#pragma once

#include "common.h"

namespace sa {
namespace wino {

constexpr int TILE_IN = 6;   // input tile side
constexpr int TILE_OUT = 4;  // output tile side

// One dimension of each transform, written out so that the compiler keeps every value in a
// register; s is the stride between the 6 (or 4) values, for rows and columns alike.
template <typename T>
SA_HD_INLINE void input_1d(const T* d, int s, T* v, int t) {  // v = Bt d
    const T d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    v[0] = T(4) * d0 - T(5) * d2 + d4;
    v[t] = -T(4) * (d1 + d2) + d3 + d4;
    v[2 * t] = T(4) * (d1 - d2) - d3 + d4;
    v[3 * t] = T(2) * (d3 - d1) - d2 + d4;
    v[4 * t] = T(2) * (d1 - d3) - d2 + d4;
    v[5 * t] = T(4) * d1 - T(5) * d3 + d5;
}

template <typename T>
SA_HD_INLINE void input_adjoint_1d(const T* v, int s, T* d, int t) {  // d = Bt^T v
    const T v0 = v[0], v1 = v[s], v2 = v[2 * s], v3 = v[3 * s], v4 = v[4 * s], v5 = v[5 * s];
    d[0] = T(4) * v0;
    d[t] = T(4) * (v2 - v1 + v5) + T(2) * (v4 - v3);
    d[2 * t] = -T(5) * v0 - T(4) * (v1 + v2) - v3 - v4;
    d[3 * t] = v1 - v2 + T(2) * (v3 - v4) - T(5) * v5;
    d[4 * t] = v0 + v1 + v2 + v3 + v4;
    d[5 * t] = v5;
}

template <typename T>
SA_HD_INLINE void output_1d(const T* m, int s, T* y, int t) {  // y = At m
    const T m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s], m5 = m[5 * s];
    const T a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4;
    y[0] = m0 + a + c;
    y[t] = b + T(2) * e;
    y[2 * t] = a + T(4) * c;
    y[3 * t] = b + T(8) * e + m5;
}

template <typename T>
SA_HD_INLINE void output_adjoint_1d(const T* y, int s, T* m, int t) {  // m = At^T y
    const T y0 = y[0], y1 = y[s], y2 = y[2 * s], y3 = y[3 * s];
    m[0] = y0;
    m[t] = y0 + y1 + y2 + y3;
    m[2 * t] = y0 - y1 + y2 - y3;
    m[3 * t] = y0 + T(2) * y1 + T(4) * y2 + T(8) * y3;
    m[4 * t] = y0 - T(2) * y1 + T(4) * y2 - T(8) * y3;
    m[5 * t] = y3;
}

template <typename T>
SA_HD_INLINE void weight_1d(const T* g, int s, T* u, int t) {  // u = G g
    const T g0 = g[0], g1 = g[s], g2 = g[2 * s];
    const T even = g0 + g2, even24 = g0 * T(1.0 / 24) + g2 * T(1.0 / 6);
    u[0] = g0 * T(0.25);
    u[t] = (even + g1) * T(-1.0 / 6);
    u[2 * t] = (even - g1) * T(-1.0 / 6);
    u[3 * t] = even24 + g1 * T(1.0 / 12);
    u[4 * t] = even24 - g1 * T(1.0 / 12);
    u[5 * t] = g2;
}

template <typename T>
SA_HD_INLINE void weight_adjoint_1d(const T* u, int s, T* g, int t) {  // g = G^T u
    const T u0 = u[0], u1 = u[s], u2 = u[2 * s], u3 = u[3 * s], u4 = u[4 * s], u5 = u[5 * s];
    const T sum12 = (u1 + u2) * T(-1.0 / 6), sum34 = u3 + u4;
    g[0] = u0 * T(0.25) + sum12 + sum34 * T(1.0 / 24);
    g[t] = (u2 - u1) * T(1.0 / 6) + (u3 - u4) * T(1.0 / 12);
    g[2 * t] = sum12 + sum34 * T(1.0 / 6) + u5;
}

// 2-D: the 1-D transform f (R values to M) down every column of x (into tmp), then along every
// row of tmp.
template <int R, int M, typename T, typename F>
SA_HD_INLINE void separable(const T (&x)[R][R], T (&y)[M][M], F f) {
    T tmp[M][R];
    for (int j = 0; j < R; ++j) f(&x[0][j], R, &tmp[0][j], R);
    for (int i = 0; i < M; ++i) f(&tmp[i][0], 1, &y[i][0], 1);
}

template <typename T>
SA_HD_INLINE void input_tile(const T (&d)[6][6], T (&v)[6][6]) {  // V = Bt d Bt^T
    separable(d, v, [](const T* a, int s, T* b, int t) { input_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void input_tile_adjoint(const T (&dv)[6][6], T (&dd)[6][6]) {  // dd = Bt^T dV Bt
    separable(dv, dd, [](const T* a, int s, T* b, int t) { input_adjoint_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void output_tile(const T (&m)[6][6], T (&y)[4][4]) {  // Y = At M At^T
    separable(m, y, [](const T* a, int s, T* b, int t) { output_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void output_tile_adjoint(const T (&dy)[4][4], T (&dm)[6][6]) {  // dM = At^T dY At
    separable(dy, dm, [](const T* a, int s, T* b, int t) { output_adjoint_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void weight_tile(const T (&g)[3][3], T (&u)[6][6]) {  // U = G g G^T
    separable(g, u, [](const T* a, int s, T* b, int t) { weight_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void weight_tile_adjoint(const T (&du)[6][6], T (&dg)[3][3]) {  // dg = G^T dU G
    separable(du, dg, [](const T* a, int s, T* b, int t) { weight_adjoint_1d(a, s, b, t); });
}

// ---------------------------------------------------------------------------------------------
// The stride-2 transposed 3x3 conv (the upsampling conv): y[2i + k] += x[i] w[k] along each axis,
// so y[2j] = w0 x[j] + w2 x[j - 1] (a 2-tap correlation, done as Winograd F(4, 2) with points
// 0, 1, -1, 2, inf) and y[2j + 1] = w1 x[j] (one product each). A 5-value window x[j0 - 1 .. j0 + 3]
// gives 9 values (5 for F(4, 2), then x[j0 .. j0 + 3] as they are), whose products with the
// filter's 9 values give the 8 outputs y[2 j0 .. 2 j0 + 7]: 81 products for 64 outputs in 2-D,
// where the direct transposed conv takes 144 (1.8x fewer). Windows are 4 input pixels apart, so
// an N x H x W input has ceil(H/4) rows of them, covering the output's first 8 ceil(H/4) rows: all
// 2H + 1 unless H is a multiple of 4. Then the last output row (y[2H] = w2 x[H - 1]) is left to the
// caller: a whole row of windows for it would be 1/(H/4) more products, 27% at H = 32.

constexpr int UP_WINDOW = 5;    // input window side
constexpr int UP_VALUES = 9;    // transformed values per side
constexpr int UP_TILE_OUT = 8;  // output window side
constexpr int UP_STEP = 4;      // input pixels between windows

template <typename T>
SA_HD_INLINE void up_input_1d(const T* d, int s, T* v, int t) {  // 5 -> 9
    const T d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s];
    v[0] = T(2) * (d0 - d2) - d1 + d3;
    v[t] = T(2) * d1 + d2 - d3;
    v[2 * t] = T(3) * d2 - T(2) * d1 - d3;
    v[3 * t] = d3 - d1;
    v[4 * t] = T(2) * (d1 - d3) - d2 + d4;
    v[5 * t] = d1;
    v[6 * t] = d2;
    v[7 * t] = d3;
    v[8 * t] = d4;
}

template <typename T>
SA_HD_INLINE void up_output_1d(const T* m, int s, T* y, int t) {  // 9 -> 8, even and odd outputs interleaved
    const T m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], a = m1 + m2, b = m1 - m2;
    y[0] = m[0] + a + m3;
    y[2 * t] = b + T(2) * m3;
    y[4 * t] = a + T(4) * m3;
    y[6 * t] = b + T(8) * m3 + m[4 * s];
    y[t] = m[5 * s];
    y[3 * t] = m[6 * s];
    y[5 * t] = m[7 * s];
    y[7 * t] = m[8 * s];
}

template <typename T>
SA_HD_INLINE void up_weight_1d(const T* g, int s, T* u, int t) {  // (w0, w1, w2) -> 9
    const T w0 = g[0], w1 = g[s], w2 = g[2 * s];
    u[0] = w2 * T(0.5);
    u[t] = (w2 + w0) * T(0.5);
    u[2 * t] = (w2 - w0) * T(1.0 / 6);
    u[3 * t] = (w2 + T(2) * w0) * T(1.0 / 6);
    u[4 * t] = w0;
    u[5 * t] = w1;
    u[6 * t] = w1;
    u[7 * t] = w1;
    u[8 * t] = w1;
}

template <typename T>
SA_HD_INLINE void up_input_tile(const T (&d)[5][5], T (&v)[9][9]) {
    separable(d, v, [](const T* a, int s, T* b, int t) { up_input_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void up_output_tile(const T (&m)[9][9], T (&y)[8][8]) {
    separable(m, y, [](const T* a, int s, T* b, int t) { up_output_1d(a, s, b, t); });
}

template <typename T>
SA_HD_INLINE void up_weight_tile(const T (&g)[3][3], T (&u)[9][9]) {
    separable(g, u, [](const T* a, int s, T* b, int t) { up_weight_1d(a, s, b, t); });
}

}  // namespace wino
}  // namespace sa
