// The fused conv's products on the CPU: a band's values laid out in panels, and the GEMM micro-kernel
// that multiplies them by the transformed filters. One part of the winograd extension's single
// translation unit (winograd.cpp includes it); not a stand-alone header.
#pragma once
#include <algorithm>

#include "simd.h"
#include "winograd_tiles.h"

namespace sa {
namespace {

// The products run on blocks of GEMM_ROWS output channels x GEMM_COLS tiles, summed in registers.
constexpr int GEMM_ROWS = 4, GEMM_VECS = 3, GEMM_COLS = GEMM_VECS * LANES;

// A band's values, `rows` channels x `band` tiles: S*S planes of panels of GEMM_COLS tiles, each
// panel [rows, GEMM_COLS], so that the products read a panel as one contiguous block (rows of a
// whole band, 4 KiB multiples apart, would share cache sets). Planes are 16 floats more than their
// values apart for the same reason.
struct BandLayout {
    int64_t rows, band;
    int64_t plane() const { return rows * band + 16; }
    int64_t panel() const { return rows * GEMM_COLS; }
    // The block of LANES tiles of channel `row` from band tile q (a multiple of LANES) on.
    template <typename scalar_t>
    Block<scalar_t> block(scalar_t* img_plane, scalar_t* buf, int64_t row, int64_t q, int64_t count,
                          const Origin* o) const {
        return Block<scalar_t>{img_plane, buf + q / GEMM_COLS * panel() + row * GEMM_COLS, plane(), q % GEMM_COLS,
                               int(std::min<int64_t>(LANES, count - q)), o + q, row};
    }
};

// m[k, q] = sum_c u[k, c] v[c, q] for one panel: u [ROWS, C] (row stride C), v and m [.., VECS * LANES]
// (rows ldv and ldm apart: a band's panels are GEMM_COLS wide, a [C, P] tile plane's rows P).
template <int ROWS, int VECS = GEMM_VECS>
void gemm_block(const float* u, int64_t c, const float* v, float* m, int64_t ldv = GEMM_COLS,
                int64_t ldm = GEMM_COLS) {
    Lanes<float> acc[ROWS][VECS];
    for (int r = 0; r < ROWS; ++r)
        for (int j = 0; j < VECS; ++j) acc[r][j] = 0.f;
    for (int64_t i = 0; i < c; ++i) {
        Lanes<float> b[VECS];
        for (int j = 0; j < VECS; ++j) b[j] = Lanes<float>::load(v + i * ldv + j * LANES);
        for (int r = 0; r < ROWS; ++r) {
            const Lanes<float> a = u[r * c + i];
            for (int j = 0; j < VECS; ++j) acc[r][j] = simd::fma(a, b[j], acc[r][j]);
        }
    }
    for (int r = 0; r < ROWS; ++r)
        for (int j = 0; j < VECS; ++j) acc[r][j].store(m + r * ldm + j * LANES);
}

// The band's products, plane by plane: m[a] = u[u_planes[a]] v[a] for u [., K, C] (contiguous) and the
// first `count` tiles of v (C rows) and m (K rows).
void band_products(const float* u, const int64_t* u_planes, const float* v, float* m, int64_t planes,
                   const BandLayout& lv, const BandLayout& lm, int64_t count) {
    const int64_t c = lv.rows, k = lm.rows;
    for (int64_t a = 0; a < planes; ++a)
        for (int64_t q = 0; q < count; q += GEMM_COLS) {
            const float* vp = v + a * lv.plane() + q / GEMM_COLS * lv.panel();
            float* mp = m + a * lm.plane() + q / GEMM_COLS * lm.panel();
            const float* ua = u + u_planes[a] * k * c;
            int64_t r = 0;
            for (; r + GEMM_ROWS <= k; r += GEMM_ROWS) gemm_block<GEMM_ROWS>(ua + r * c, c, vp, mp + r * GEMM_COLS);
            for (; r < k; ++r) gemm_block<1>(ua + r * c, c, vp, mp + r * GEMM_COLS);
        }
}

}  // namespace
}  // namespace sa
