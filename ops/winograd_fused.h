// The fused Winograd conv on the CPU: input transform, products and output transform one band of tiles
// at a time, with the layer's epilogue and the toRGB layer that reads its output. One part of the
// winograd extension's single translation unit (winograd.cpp includes it); not a stand-alone header.
#pragma once
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <vector>

#include "layer_epilogue.h"
#include "simd.h"
#include "winograd.h"
#include "winograd_gemm.h"
#include "winograd_tiles.h"

namespace sa {
namespace {

// In a full block of the fused conv, lane l holds the block's tile PERM[l]: the order in which a 4 x 4
// transpose within each half of an AVX register leaves a row of side-by-side windows (`transpose4`),
// so that a row of 8 windows moves between image and registers as whole vectors. Input and output
// agree on it, and the products do not care how a panel's columns are ordered. (Blocks of fewer
// tiles keep the plain order.)
constexpr int PERM[LANES] = {0, 2, 4, 6, 1, 3, 5, 7};

// Which of a fused conv's block's tiles lane l holds (PERM above; in_order in short blocks).
inline int lane_tile(int l, int lanes) { return lanes == LANES ? PERM[l] : in_order(l, lanes); }

// The block with its lanes' origins in PERM order (in `po`), for the lane-by-lane moves.
Block<float> permuted(const Block<float>& bl, Origin (&po)[LANES]) {
    for (int l = 0; l < LANES; ++l) po[l] = bl.o[PERM[l]];
    Block<float> b = bl;
    b.o = po;
    return b;
}

#if defined(__AVX__)
// Within each 128-bit half, rows a0..a3 → columns c0..c3 (its own inverse).
inline void transpose4(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256& c0, __m256& c1, __m256& c2, __m256& c3) {
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    c0 = _mm256_shuffle_ps(t0, t2, 0x44);
    c1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    c2 = _mm256_shuffle_ps(t1, t3, 0x44);
    c3 = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// Row r's columns 0..R-1 of 8 windows 4 pixels apart, lanes in PERM order: pixels 4l + j of 32 (+ 4)
// consecutive ones. Reads r[0 .. 36).
template <int R>
void load_window_row(const float* r, Lanes<float>* d) {
    static_assert(R >= 4 && R <= 6, "windows of 4 to 6 pixels, 4 apart");
    __m256 c[4];
    transpose4(_mm256_loadu_ps(r), _mm256_loadu_ps(r + 8), _mm256_loadu_ps(r + 16), _mm256_loadu_ps(r + 24),
               c[0], c[1], c[2], c[3]);
    for (int j = 0; j < 4; ++j) d[j].v = c[j];
    if (R > 4) {  // columns 4 and 5 are columns 0 and 1 of the windows 4 pixels on
        const __m256 t0 = _mm256_unpacklo_ps(_mm256_loadu_ps(r + 4), _mm256_loadu_ps(r + 12));
        const __m256 t2 = _mm256_unpacklo_ps(_mm256_loadu_ps(r + 20), _mm256_loadu_ps(r + 28));
        d[4].v = _mm256_shuffle_ps(t0, t2, 0x44);
        if (R > 5) d[5].v = _mm256_shuffle_ps(t0, t2, 0xEE);
    }
}

// The inverse for output windows side by side: row r of 8 windows of T = 4 or 8 pixels.
template <int T>
void store_window_row(const Lanes<float>* d, float* r) {
    static_assert(T == 4 || T == 8, "output windows of 4 or 8 pixels");
    __m256 x[4];
    transpose4(d[0].v, d[1].v, d[2].v, d[3].v, x[0], x[1], x[2], x[3]);  // x[k]: windows 2k | 2k + 1
    if (T == 4) {
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(r + 8 * k, x[k]);
        return;
    }
    __m256 y[4];
    transpose4(d[4].v, d[5].v, d[6].v, d[7].v, y[0], y[1], y[2], y[3]);
    for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(r + 16 * k, _mm256_permute2f128_ps(x[k], y[k], 0x20));
        _mm256_storeu_ps(r + 16 * k + 8, _mm256_permute2f128_ps(x[k], y[k], 0x31));
    }
}
#endif

// load_windows for the fused conv (lane order: PERM).
template <int R>
void load_band_windows(const Block<float>& bl, const Tiling& s, Lanes<float> (&d)[R][R]) {
    if (bl.lanes < LANES) return load_windows(bl, s, d);
#if defined(__AVX__)
    if constexpr (R >= 4 && R <= 6) {
        const Origin& o = bl.o[0];
        if (s.stride == 4 && is_row_run(bl, s) && (o.y0 + R - 1) * s.w + o.x0 + 36 <= s.h * s.w) {
            for (int i = 0; i < R; ++i) load_window_row<R>(bl.img + o.offset + i * s.w, d[i]);
            return;
        }
    }
#endif
    Origin po[LANES];
    gather_windows(permuted(bl, po), s, d);
}

// store_windows (no adding) for the fused conv (lane order: PERM).
template <int T>
void store_band_windows(const Block<float>& bl, const Tiling& s, const Lanes<float> (&d)[T][T]) {
    if (bl.lanes < LANES) return store_windows<false>(bl, s, d);
#if defined(__AVX__)
    if constexpr (T == 4 || T == 8) {
        if (s.stride == T && is_row_run(bl, s)) {
            for (int i = 0; i < T; ++i) store_window_row<T>(d[i], bl.img + bl.o[0].offset + i * s.w);
            return;
        }
    }
#endif
    Origin po[LANES];
    scatter_windows<false>(permuted(bl, po), s, d);
}

// A band reads (and writes) a few cache lines of each of R rows in every channel's plane: too many
// streams for the hardware prefetcher. So each block asks for its rows PREFETCH_CHANNELS channels on
// (WRITE: rows about to be written). Far enough on to arrive in time, near enough to stay in L1; the
// distance is set by `python -m benchmarks.ops --conv` (the fused convs with 64-128 channels in).
constexpr int64_t PREFETCH_CHANNELS = 2;
// The R rows of 8 windows side by side: 8 x 4 pixels (+ 2 for the 5- and 6-pixel input windows), or
// 8 x 8 for the up-conv's output windows.
template <int R, bool WRITE>
inline void prefetch_rows(const float* first, int64_t row_stride) {
    constexpr int WIDTH = LANES * (R > 6 ? R : 4) + 4;
    for (int i = 0; i < R; ++i) simd::prefetch<WRITE>(first + i * row_stride, WIDTH);
}

// The fused conv's sinks: what happens to its output windows on their way out. Each kind is a type
// (and keeping y a template flag), and fused_conv is instantiated for the combinations the bindings
// use, so a conv without an epilogue or toRGB layer tests for none in its inner loops.

// No epilogue: the output as the products leave it.
struct NoEpilogue {};

// What a layer does to the fused conv's output on its way out (layer_epilogue.h's `finish`), applied
// before the output is stored: one pass over the layer's output fewer.
struct FusedEpilogue {
    const float* scale;  // [N, K] or null
    const float* bias;   // [K] or null
    const float* noise;  // [noise_images, H, W] or null
    int64_t noise_images;
    epi::Params<float> params;
};

// The toRGB layer reading the fused conv's output y (to_rgb.py): out = clamp(w · y + bias, [lo, hi]) + skip,
// summed tile by tile as the output channels go by: one pass over the layer's output fewer, and none
// at all where y itself is not kept.
struct FusedRgb {
    const float* weight;  // [N, O, K]
    const float* bias;    // [O] or null
    const float* skip;    // [N, O, H, W] or null
    float* out;           // [N, O, H, W]
    Tiling tiling;        // out's
    std::vector<Origin> origins;
    epi::Params<float> clamp;  // only its clamp is used
};

// No toRGB layer reads the output.
struct NoRgb {};

template <typename Epi>
constexpr bool has_epilogue = std::is_same<Epi, FusedEpilogue>::value;
template <typename Rgb>
constexpr bool has_rgb = std::is_same<Rgb, FusedRgb>::value;

// What the fused conv of x [N, C, H, W] into y needs to know: the tilings, the tiles' window origins.
struct FusedConv {
    const Tiling &si, &so;
    std::vector<Origin> oi, oo;
    BandLayout lv, lm;
    const float* scale;  // [N, C] or null
};

// The band's input windows (tiles p0 .. p0 + count), scaled, to S*S values each, into v.
template <int R, int S, typename InTf>
void band_input(const FusedConv& f, const float* x, float* v, int64_t p0, int64_t count, InTf in_tf) {
    for (int64_t ch = 0; ch < f.si.c; ++ch)
        for (int64_t q = 0; q < count; q += LANES) {
            const auto bl = f.lv.block(const_cast<float*>(x) + ch * f.si.h * f.si.w, v, ch, q, count, f.oi.data() + p0);
            if (ch + PREFETCH_CHANNELS < f.si.c)
                prefetch_rows<R, false>(bl.img + PREFETCH_CHANNELS * f.si.h * f.si.w + bl.o[0].offset, f.si.w);
            Lanes<float> d[R][R], t[S][S];
            load_band_windows(bl, f.si, d);
            if (f.scale) scale_windows(bl, f.scale, f.si.c, lane_tile, d);
            in_tf(d, t);
            store_tiles(bl, t);
        }
}

// The noise under the T x T output windows of the band's blocks (tiles p0 .. p0 + count), lanes as
// band_output holds them, zeros outside the image: the same for every output channel, so read once.
template <int T>
void band_noise(const FusedConv& f, const FusedEpilogue& e, Lanes<float>* nz, int64_t p0, int64_t count) {
    const int64_t plane = f.so.h * f.so.w;
    for (int64_t q = 0; q < count; q += LANES) {
        const int lanes = int(std::min<int64_t>(LANES, count - q));
        Lanes<float>* w = nz + q / LANES * T * T;
        for (int a = 0; a < T * T; ++a) w[a] = 0.f;
        for (int l = 0; l < lanes; ++l) {
            const Origin& o = f.oo[p0 + q + lane_tile(l, lanes)];
            const float* src = e.noise + (e.noise_images == 1 ? 0 : o.image) * plane;
            for (int i = 0; i < T; ++i)
                for (int j = 0; j < T; ++j)
                    if (o.y0 + i < f.so.h && o.x0 + j < f.so.w) w[i * T + j].v[l] = src[(o.y0 + i) * f.so.w + o.x0 + j];
        }
    }
}

// The epilogue on a block's output windows d (of channel bl.ch).
template <int T>
void finish_windows(const FusedConv& f, const FusedEpilogue& e, const Block<float>& bl, const Lanes<float>* noise,
                    Lanes<float> (&d)[T][T]) {
    const Lanes<float> scale = e.scale ? lane_scale<float>(bl, e.scale, f.so.c, lane_tile) : Lanes<float>(1.f);
    const Lanes<float> bias(e.bias ? e.bias[bl.ch] : 0.f);
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) d[i][j] = epi::finish(d[i][j], e.params, scale, bias, noise[i * T + j]);
}

// rgb[o][a] += weight[image of each lane, o, bl.ch] * d (value a) for every toRGB output o: the block's
// share of the toRGB sums (rgb: O x T*T lanes).
template <int T>
void add_to_rgb(const FusedRgb& r, const Block<float>& bl, int64_t channels, const Lanes<float> (&d)[T][T],
                Lanes<float>* rgb) {
    for (int64_t o = 0; o < r.tiling.c; ++o) {
        const Lanes<float> w = lane_scale<float>(bl, r.weight + o * channels, r.tiling.c * channels, lane_tile);
        Lanes<float>* acc = rgb + o * T * T;
        for (int i = 0; i < T; ++i)
            for (int j = 0; j < T; ++j) acc[i * T + j] = simd::fma(w, d[i][j], acc[i * T + j]);
    }
}

// The band's toRGB sums (tiles p0 .. p0 + count; blocks of O x T*T lanes in rgb) out: bias, clamp, skip.
template <int T>
void store_rgb(const FusedRgb& r, const Lanes<float>* rgb, int64_t p0, int64_t count, const BandLayout& layout) {
    const int64_t plane = r.tiling.h * r.tiling.w;
    for (int64_t q = 0; q < count; q += LANES)
        for (int64_t o = 0; o < r.tiling.c; ++o) {
            const Lanes<float>* acc = rgb + (q / LANES * r.tiling.c + o) * T * T;
            const auto bl = layout.block(r.out + o * plane, r.out, o, q, count, r.origins.data() + p0);
            Lanes<float> d[T][T], skip[T][T];
            if (r.skip) load_band_windows(layout.block(const_cast<float*>(r.skip) + o * plane, r.out, o, q, count,
                                                       r.origins.data() + p0), r.tiling, skip);
            const Lanes<float> bias(r.bias ? r.bias[o] : 0.f);
            for (int i = 0; i < T; ++i)
                for (int j = 0; j < T; ++j) {
                    const Lanes<float> v = epi::clamp(acc[i * T + j] + bias, r.clamp);
                    d[i][j] = r.skip ? v + skip[i][j] : v;
                }
            store_band_windows(bl, r.tiling, d);
        }
}

// The band's products in m (tiles p0 .. p0 + count) to their T x T output windows in y (through the
// epilogue e if there is one, with the band's noise windows nz), stored if KEEP_Y, and into the toRGB
// sums rgb if there is a toRGB layer r.
template <int S, int T, bool KEEP_Y, typename Epi, typename Rgb, typename OutTf>
void band_output(const FusedConv& f, const Epi& e, const Rgb& r, const float* m, float* y, int64_t p0, int64_t count,
                 const Lanes<float>* nz, Lanes<float>* rgb, OutTf out_tf) {
    static_assert(KEEP_Y || has_rgb<Rgb>, "the fused conv's output must go somewhere");
    for (int64_t ch = 0; ch < f.so.c; ++ch)
        for (int64_t q = 0; q < count; q += LANES) {
            float* plane = KEEP_Y ? y + ch * f.so.h * f.so.w : nullptr;
            const auto bl = f.lm.block(plane, const_cast<float*>(m), ch, q, count, f.oo.data() + p0);
            if constexpr (KEEP_Y)
                if (ch + PREFETCH_CHANNELS < f.so.c)
                    prefetch_rows<T, true>(bl.img + PREFETCH_CHANNELS * f.so.h * f.so.w + bl.o[0].offset, f.so.w);
            Lanes<float> t[S][S], d[T][T];
            load_tiles(bl, t);
            out_tf(t, d);
            if constexpr (has_epilogue<Epi>) finish_windows(f, e, bl, nz + q / LANES * T * T, d);
            if constexpr (KEEP_Y) store_band_windows(bl, f.so, d);
            if constexpr (has_rgb<Rgb>) add_to_rgb(r, bl, f.so.c, d, rgb + q / LANES * r.tiling.c * T * T);
        }
    if constexpr (has_rgb<Rgb>) store_rgb<T>(r, rgb, p0, count, f.lm);
}

// Threads a fused conv over `tiles` tiles runs on: each takes an equal share of the tiles, in whole
// panels, and cuts it into bands. (Dealt out whole, a few long bands split unevenly: a 128² image's
// 6 bands of 192 tiles gave one thread 576 tiles and the other 448.)
int64_t fused_shares(int64_t tiles) {
    return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (tiles + GEMM_COLS - 1) / GEMM_COLS));
}

// Floats a thread's band buffers take: a band's S*S values of c channels and its products of k.
int64_t band_floats(int64_t s, int64_t c, int64_t k, int64_t band) {
    return s * s * (BandLayout{c, band}.plane() + BandLayout{k, band}.plane());
}

// Zeros the lanes of a band's last panel past its `count` tiles in every plane and row of v: they are
// multiplied too, and left over from an earlier band they could be anything (denormals are slow).
void zero_panel_tail(float* v, const BandLayout& lv, int64_t planes, int64_t count) {
    const int64_t used = count % GEMM_COLS;
    if (used == 0) return;
    float* panel = v + count / GEMM_COLS * lv.panel();
    for (int64_t a = 0; a < planes; ++a)
        for (int64_t row = 0; row < lv.rows; ++row)
            std::fill_n(panel + a * lv.plane() + row * GEMM_COLS + used, GEMM_COLS - used, 0.f);
}

// in_tf maps an R x R window to S x S values, out_tf S x S products to a T x T output window.
// Returns y (out, or a new tensor; undefined unless KEEP_Y), after epilogue e; a toRGB layer r fills r.out.
// work: the threads' band buffers (float32, contiguous, at least fused_shares(si.p) * band_floats(...)
// floats; an inference plan keeps it between calls), or undefined for new ones: a new 7 MiB buffer a
// thread cost a 256-channel conv of one 128² image 5 % (zeroing and page faults) when run image by image.
template <int R, int S, int T, bool KEEP_Y, typename Epi, typename Rgb, typename InTf, typename OutTf>
torch::Tensor fused_conv(const torch::Tensor& x, const torch::Tensor& u, const std::vector<int64_t>& u_planes,
                         const torch::Tensor& scale, const Epi& e,
                         const Rgb& r, const Tiling& si, const Tiling& so, int64_t band, InTf in_tf, OutTf out_tf,
                         const c10::optional<torch::Tensor>& out, const c10::optional<torch::Tensor>& work) {
    torch::Tensor y = KEEP_Y ? given_or_new(out.value_or(torch::Tensor()), {so.n, so.c, so.h, so.w}, x) : torch::Tensor();
    const FusedConv f{si, so, origins(si, R, -1), origins(so, T, 0), {si.c, band}, {so.c, band},
                      scale.defined() ? scale.data_ptr<float>() : nullptr};
    const int64_t blocks = (band + LANES - 1) / LANES;
    const int64_t panels = (si.p + GEMM_COLS - 1) / GEMM_COLS, shares = fused_shares(si.p);
    const int64_t per_share = band_floats(S, si.c, so.c, band);
    torch::Tensor buffers = work ? *work : torch::empty({shares * per_share}, x.options());
    TORCH_CHECK(buffers.device().is_cpu() && buffers.scalar_type() == at::kFloat && buffers.is_contiguous() &&
                buffers.numel() >= shares * per_share, "winograd: work must be a contiguous float32 CPU tensor of at "
                "least ", shares * per_share, " values");
    at::parallel_for(0, shares, 1, [&](int64_t begin, int64_t end) {
        float* v = buffers.data_ptr<float>() + begin * per_share;
        float* m = v + S * S * f.lv.plane();
        std::vector<Lanes<float>> nz(has_epilogue<Epi> ? blocks * T * T : 0, Lanes<float>(0.f));
        std::vector<Lanes<float>> sums;
        if constexpr (has_rgb<Rgb>) sums.resize(blocks * r.tiling.c * T * T);
        for (int64_t share = begin; share < end; ++share) {
            const int64_t first = panels * share / shares * GEMM_COLS;
            const int64_t last = std::min(si.p, panels * (share + 1) / shares * GEMM_COLS);
            for (int64_t p0 = first; p0 < last; p0 += band) {
                const int64_t count = std::min(last - p0, band);
                if constexpr (has_epilogue<Epi>)
                    if (e.noise) band_noise<T>(f, e, nz.data(), p0, count);
                band_input<R, S>(f, x.data_ptr<float>(), v, p0, count, in_tf);
                zero_panel_tail(v, f.lv, S * S, count);
                band_products(u.data_ptr<float>(), u_planes.data(), v, m, S * S, f.lv, f.lm, count);
                std::fill(sums.begin(), sums.end(), Lanes<float>(0.f));
                band_output<S, T, KEEP_Y>(f, e, r, m, KEEP_Y ? y.data_ptr<float>() : nullptr, p0, count,
                                          nz.data(), sums.data(), out_tf);
            }
        }
    });
    if constexpr (KEEP_Y) zero_uncovered(y, so);
    return y;
}

// Which plane of U each of a tile's S*S values multiplies: value a plane a, unless `index` (int64 [S*S])
// names planes of a U with fewer (the stride-2 filters keep each distinct plane once: winograd_op.py).
template <int S>
std::vector<int64_t> filter_planes(const c10::optional<torch::Tensor>& index, int64_t u_planes) {
    const std::vector<int64_t> planes = per_value<S>(index, "u_index");
    for (int64_t q : planes)
        TORCH_CHECK(q >= 0 && q < u_planes, "winograd: U has ", u_planes, " planes; u_index names plane ", q);
    return planes;
}

// u_planes: U's planes (S*S, or filter_planes's count for an index).
void check_fused(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& scale, int64_t u_planes,
                 int64_t band) {
    check_cpu(x, "x", 4);
    check_cpu(u, "U", 3);
    TORCH_CHECK(x.scalar_type() == at::kFloat && u.scalar_type() == at::kFloat, "winograd: the fused conv takes float32");
    TORCH_CHECK(u.size(0) == u_planes && u.size(2) == x.size(1), "winograd: U must be [", u_planes, ", K, ", x.size(1),
                "]");
    TORCH_CHECK(band > 0 && band % GEMM_COLS == 0, "winograd: the band must be a positive multiple of ", GEMM_COLS, " tiles");
    TORCH_CHECK(u.is_contiguous(), "winograd: U must be contiguous");
    if (scale.defined()) {
        check_cpu(scale, "scale", 2);
        TORCH_CHECK(scale.scalar_type() == at::kFloat && scale.size(0) == x.size(0) && scale.size(1) == x.size(1),
                    "winograd: scale must be float32 [N, C]");
    }
}

// t's data if given (None: null), once checked to be a contiguous float32 CPU tensor of this shape.
const float* checked_f32(const c10::optional<torch::Tensor>& t, const char* what, const std::vector<int64_t>& shape) {
    if (!t) return nullptr;
    check_cpu(*t, what, int64_t(shape.size()));
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->sizes().vec() == shape, "winograd: ", what,
                " must be float32 of shape ", c10::IntArrayRef(shape));
    return t->data_ptr<float>();
}

// The epilogue's arguments, checked: out_scale [N, K], bias [K], noise [1 or N, H, W] (float32, contiguous).
FusedEpilogue fused_epilogue(const Tiling& so, const c10::optional<torch::Tensor>& out_scale,
                             const c10::optional<torch::Tensor>& bias, const c10::optional<torch::Tensor>& noise,
                             double noise_gain, double alpha, double clamp) {
    const int64_t noise_images = noise ? noise->size(0) : 1;
    TORCH_CHECK(noise_images == 1 || noise_images == so.n, "winograd: noise must be [1 or N, H, W]");
    return {checked_f32(out_scale, "out_scale", {so.n, so.c}), checked_f32(bias, "bias", {so.c}),
            checked_f32(noise, "noise", {noise_images, so.h, so.w}), noise_images,
            epi::params<float>(noise_gain, alpha, clamp)};
}

// The fused F(4x4, 3x3) conv with its layer's epilogue (where any of it does something), and with the
// toRGB layer rgb (FusedRgb or NoRgb) that reads it; y is returned if KEEP_Y.
template <bool KEEP_Y, typename Rgb>
torch::Tensor fused_f43(const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale,
                        int64_t band, const c10::optional<torch::Tensor>& out_scale,
                        const c10::optional<torch::Tensor>& bias, const c10::optional<torch::Tensor>& noise,
                        double noise_gain, double alpha, double clamp, const Rgb& rgb,
                        const c10::optional<torch::Tensor>& out, const c10::optional<torch::Tensor>& work) {
    const torch::Tensor sc = scale.has_value() ? *scale : torch::Tensor();
    check_fused(x, u, sc, TILE_IN * TILE_IN, band);
    const std::vector<int64_t> planes = filter_planes<TILE_IN>(c10::nullopt, TILE_IN * TILE_IN);
    const Tiling si = tiling(x.size(0), x.size(1), x.size(2), x.size(3));
    const Tiling so = tiling(x.size(0), u.size(1), x.size(2), x.size(3));
    const FusedEpilogue epi = fused_epilogue(so, out_scale, bias, noise, noise_gain, alpha, clamp);
    const bool finish = out_scale || bias || noise || alpha != 1.0 || clamp >= 0;
    const auto in_tf = [](const auto& d, auto& t) { wino::input_tile(d, t); };
    const auto out_tf = [](const auto& t, auto& y) { wino::output_tile(t, y); };
    if (finish)
        return fused_conv<TILE_IN, TILE_IN, TILE_OUT, KEEP_Y>(x, u, planes, sc, epi, rgb, si, so, band, in_tf, out_tf,
                                                              out, work);
    return fused_conv<TILE_IN, TILE_IN, TILE_OUT, KEEP_Y>(x, u, planes, sc, NoEpilogue{}, rgb, si, so, band, in_tf,
                                                          out_tf, out, work);
}

}  // namespace

// conv2d(x * scale[:, :, None, None], g, padding=1) from U = winograd_weight(g): [36, K, C]; x: [N, C, H, W]
// float32, scale: [N, C] or None → [N, K, H, W], then layer_epilogue.h's `finish` (with out_scale, bias,
// noise, noise_gain, alpha, clamp) where any of it does something, stored in out if given; work: the
// threads' band buffers (winograd_work_floats values) or None. No gradients.
inline torch::Tensor winograd_conv(const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale,
                            int64_t band, const c10::optional<torch::Tensor>& out_scale,
                            const c10::optional<torch::Tensor>& bias, const c10::optional<torch::Tensor>& noise,
                            double noise_gain, double alpha, double clamp, const c10::optional<torch::Tensor>& out,
                            const c10::optional<torch::Tensor>& work) {
    return fused_f43<true>(x, u, scale, band, out_scale, bias, noise, noise_gain, alpha, clamp, NoRgb{}, out, work);
}

// The floats of the work buffers a fused conv (winograd_conv, winograd_conv_rgb with s = 6;
// winograd_up_conv with s = 9) of n images of h x w pixels, c channels in and k out, takes with `band`.
inline int64_t winograd_work_floats(int64_t s, int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t band) {
    const Tiling t = tiling(n, c, h, w);  // the up conv's input windows step alike (up_input_tiling)
    return fused_shares(t.p) * band_floats(s, c, k, band);
}

// winograd_conv, and the toRGB layer reading its output y in the same pass: rgb = clamp(rgb_weight · y +
// rgb_bias, ±rgb_clamp) + skip (to_rgb.py's to_rgb, then the skip image added); rgb_weight [N, O, K],
// rgb_bias [O] or None, skip [N, O, H, W] or None, rgb_clamp < 0: none; y_out, rgb_out: where to store them
// (or None: new tensors; rgb_out may be skip itself: each value is read before it is written). Returns
// (y, or None unless keep_y; rgb).
inline std::tuple<c10::optional<torch::Tensor>, torch::Tensor> winograd_conv_rgb(
        const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale, int64_t band,
        const c10::optional<torch::Tensor>& out_scale, const c10::optional<torch::Tensor>& bias,
        const c10::optional<torch::Tensor>& noise, double noise_gain, double alpha, double clamp,
        const torch::Tensor& rgb_weight, const c10::optional<torch::Tensor>& rgb_bias,
        const c10::optional<torch::Tensor>& skip, double rgb_clamp, bool keep_y,
        const c10::optional<torch::Tensor>& y_out, const c10::optional<torch::Tensor>& rgb_out,
        const c10::optional<torch::Tensor>& work) {
    const int64_t n = x.size(0), k = u.size(1), h = x.size(2), w = x.size(3);
    TORCH_CHECK(rgb_weight.dim() == 3, "winograd: rgb_weight must be [N, O, K]");
    const int64_t outs = rgb_weight.size(1);
    const float* wp = checked_f32(rgb_weight, "rgb_weight", {n, outs, k});
    torch::Tensor out = given_or_new(rgb_out.value_or(torch::Tensor()), {n, outs, h, w}, x);
    const Tiling rt = tiling(n, outs, h, w);
    const FusedRgb rgb{wp, checked_f32(rgb_bias, "rgb_bias", {outs}), checked_f32(skip, "skip", {n, outs, h, w}),
                       out.data_ptr<float>(), rt, origins(rt, TILE_OUT, 0), epi::params<float>(0.0, 1.0, rgb_clamp)};
    if (!keep_y) {
        fused_f43<false>(x, u, scale, band, out_scale, bias, noise, noise_gain, alpha, clamp, rgb, c10::nullopt, work);
        return {c10::nullopt, out};
    }
    torch::Tensor y = fused_f43<true>(x, u, scale, band, out_scale, bias, noise, noise_gain, alpha, clamp, rgb, y_out,
                                      work);
    return {y, out};
}

// conv_transpose2d(x * scale[:, :, None, None], w_t, stride=2) from U: [81, K, C], each filter's up_weight_tile
// values, or from the planes of it that u_index names for each value ([81] indices into U)
// → [N, K, 2H + 1, 2W + 1], zero where no window reaches (winograd.h), stored in out if given; work as
// winograd_conv's. No gradients.
inline torch::Tensor winograd_up_conv(const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale,
                               int64_t band, const c10::optional<torch::Tensor>& out,
                               const c10::optional<torch::Tensor>& work, const c10::optional<torch::Tensor>& u_index) {
    const torch::Tensor sc = scale.has_value() ? *scale : torch::Tensor();
    constexpr int S = wino::UP_VALUES;
    check_fused(x, u, sc, u_index ? u.size(0) : S * S, band);
    const std::vector<int64_t> planes = filter_planes<S>(u_index, u.size(0));
    const Tiling si = up_input_tiling(x.size(0), x.size(1), x.size(2), x.size(3));
    const Tiling so = up_output_tiling(x.size(0), u.size(1), x.size(2), x.size(3));
    return fused_conv<wino::UP_WINDOW, S, wino::UP_TILE_OUT, true>(
        x, u, planes, sc, NoEpilogue{}, NoRgb{}, si, so, band, [](const auto& d, auto& t) { wino::up_input_tile(d, t); },
        [](const auto& t, auto& y) { wino::up_output_tile(t, y); }, out, work);
}

}  // namespace sa
