// F(4x4, 3x3) tile products with the filters transformed block by block on the way instead of kept: a
// plan need not hold the 36 transformed planes of a layer's weights (4x the weights: 36 MiB at 512 x 512
// channels) where its products are few (one small image). Each thread takes blocks of FILTER_BLOCK
// output channels, transforms their filters into its own buffer, which stays in its L2 cache, and
// multiplies them with every plane of the tiles there. The transform is winograd_weight's, lane for
// lane, so the filters are the kept ones bit for bit; the products are the fused conv's micro-kernel's.
// One part of the winograd extension's single translation unit (winograd.cpp includes it); not a
// stand-alone header.
#pragma once
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include "winograd_gemm.h"
#include "winograd_tiles.h"

namespace sa {
namespace {

// Output channels a block: the products take 4 rows at a time, and 16 rows of 512 channels make a
// 1.2 MiB block (benchmarks/THRESHOLDS.md, UNKEPT_MAX_TILES: 8 to 32 took alike at 64 tiles).
constexpr int64_t FILTER_BLOCK = 16;
// A block's 36 planes lie this many floats more than their values apart: planes a multiple of 4 KiB
// apart would share L1 sets, and the transform writes all 36 at once.
constexpr int64_t FILTER_PLANE_PAD = 16;

inline int64_t filter_plane_floats(int64_t c) { return FILTER_BLOCK * c + FILTER_PLANE_PAD; }
inline int64_t filter_block_floats(int64_t c) { return TILE_IN * TILE_IN * filter_plane_floats(c); }

// Filters k0 .. k0 + FILTER_BLOCK - 1 of g [K, C, 3, 3] (C a multiple of LANES) transformed into ub:
// plane a at a * filter_plane_floats(C), each [FILTER_BLOCK, C]; LANES input channels a pass.
void transform_filter_block(const float* g, int64_t c, int64_t k0, float* ub) {
    const int64_t plane = filter_plane_floats(c);
    for (int64_t k = 0; k < FILTER_BLOCK; ++k) {
        const float* gk = g + (k0 + k) * c * 9;
        for (int64_t c0 = 0; c0 < c; c0 += LANES) {
            Lanes<float> f[3][3], t[TILE_IN][TILE_IN];
            for (int a = 0; a < 9; ++a)
                for (int l = 0; l < LANES; ++l) f[a / 3][a % 3].v[l] = gk[(c0 + l) * 9 + a];
            wino::weight_tile(f, t);
            for (int a = 0; a < TILE_IN * TILE_IN; ++a)
                t[a / TILE_IN][a % TILE_IN].store(ub + a * plane + k * c + c0);
        }
    }
}

// m [FILTER_BLOCK, P] (rows P apart) = u [FILTER_BLOCK, C] v [C, P], for P a multiple of LANES.
void filter_block_products(const float* u, const float* v, float* m, int64_t c, int64_t p) {
    for (int64_t q = 0; q < p; q += GEMM_COLS) {
        const int64_t vecs = std::min<int64_t>(GEMM_VECS, (p - q) / LANES);
        for (int64_t r = 0; r < FILTER_BLOCK; r += GEMM_ROWS) {
            if (vecs == 3) gemm_block<GEMM_ROWS, 3>(u + r * c, c, v + q, m + r * p + q, p, p);
            else if (vecs == 2) gemm_block<GEMM_ROWS, 2>(u + r * c, c, v + q, m + r * p + q, p, p);
            else gemm_block<GEMM_ROWS, 1>(u + r * c, c, v + q, m + r * p + q, p, p);
        }
    }
}
static_assert(GEMM_VECS == 3 && FILTER_BLOCK % GEMM_ROWS == 0, "filter_block_products' cases");

}  // namespace

// M [36, K, P] (into m) = the tile products of V [36, C, P] and the F(4x4, 3x3) transform of g
// [K, C, 3, 3], each block of filters transformed just before its products into the calling thread's
// part of `work` (filter_block_floats(C) floats a thread, for at least at::get_num_threads() threads;
// None: new). All float32 and contiguous; K a multiple of FILTER_BLOCK, C and P of LANES.
inline torch::Tensor winograd_products_from_weights(const torch::Tensor& g, const torch::Tensor& v,
                                                    const torch::Tensor& m, const c10::optional<torch::Tensor>& work) {
    for (const auto* t : {&g, &v, &m})
        TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat && t->is_contiguous(),
                    "winograd: products_from_weights takes contiguous float32 CPU tensors");
    const int64_t k = g.size(0), c = g.size(1), p = v.size(2);
    TORCH_CHECK(g.dim() == 4 && g.size(2) == 3 && g.size(3) == 3, "winograd: weight must be [K, C, 3, 3]");
    TORCH_CHECK(v.dim() == 3 && v.size(0) == 36 && v.size(1) == c, "winograd: V must be [36, C, P] for C = ", c);
    TORCH_CHECK(m.dim() == 3 && m.size(0) == 36 && m.size(1) == k && m.size(2) == p,
                "winograd: M must be [36, K, P] = [36, ", k, ", ", p, "]");
    TORCH_CHECK(k % FILTER_BLOCK == 0 && c % LANES == 0 && p % LANES == 0, "winograd: products_from_weights needs K a "
                "multiple of ", FILTER_BLOCK, " and C and P of ", LANES, ", got K ", k, ", C ", c, ", P ", p);
    const int64_t per_thread = filter_block_floats(c), threads = at::get_num_threads();
    torch::Tensor buffers = work ? *work : torch::empty({threads * per_thread}, g.options());
    TORCH_CHECK(buffers.device().is_cpu() && buffers.scalar_type() == at::kFloat && buffers.is_contiguous() &&
                buffers.numel() >= threads * per_thread, "winograd: work must be a contiguous float32 CPU tensor of "
                "at least ", threads * per_thread, " values");
    const float *gp = g.data_ptr<float>(), *vp = v.data_ptr<float>();
    float* mp = m.data_ptr<float>();
    at::parallel_for(0, k / FILTER_BLOCK, 1, [&](int64_t begin, int64_t end) {
        float* ub = buffers.data_ptr<float>() + at::get_thread_num() * per_thread;
        for (int64_t blk = begin; blk < end; ++blk) {
            const int64_t k0 = blk * FILTER_BLOCK;
            transform_filter_block(gp, c, k0, ub);
            for (int64_t a = 0; a < TILE_IN * TILE_IN; ++a)
                filter_block_products(ub + a * filter_plane_floats(c), vp + a * c * p, mp + (a * k + k0) * p, c, p);
        }
    });
    return m;
}

// The floats of products_from_weights' work buffer for C input channels and `threads` threads.
inline int64_t winograd_filter_work_floats(int64_t c, int64_t threads) { return threads * filter_block_floats(c); }

}  // namespace sa
