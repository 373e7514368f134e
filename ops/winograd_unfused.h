// The unfused Winograd transforms on the CPU, each one pass between an image (or filters) and a
// [S*S, channels, tiles] tensor, with their adjoints for the backward pass: F(4x4, 3x3) (the 3x3
// 'same' conv; 36 values a tile) and the stride-2 transposed 3x3 conv (81 values a tile). The
// per-tile arithmetic is in winograd.h. One part of the winograd extension's single translation unit
// (winograd.cpp includes it); not a stand-alone header.
#pragma once
#include <array>
#include <vector>

#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "winograd.h"
#include "winograd_tiles.h"

namespace sa {
namespace {

// Image → tiles: fn maps the R x R window (at `shift` from each tile's origin) of every tile of
// image `img` ([N, C, H, W], tiled as s says) to its S x S values in the returned [S*S, C, P] tensor.
// With `scale` ([N, C], img's dtype, or undefined), each window is first multiplied by its image's
// scale of the channel: the modulation of a modulated conv, in the same pass. out: the [S*S, C, P]
// tensor to fill (contiguous, img's dtype), or undefined for a new one; order: plane_values's.
template <int R, int S, typename Fn>
torch::Tensor windows_to_tiles(const torch::Tensor& img, const Tiling& s, int64_t shift, Fn fn,
                               const torch::Tensor& scale = torch::Tensor(), const torch::Tensor& out = torch::Tensor(),
                               const c10::optional<torch::Tensor>& order = c10::nullopt) {
    TORCH_CHECK(s.stride == READ_STEP, "winograd: windows to read must lie ", READ_STEP, " pixels apart");
    if (scale.defined()) {
        check_cpu(scale, "scale", 2);
        TORCH_CHECK(scale.scalar_type() == img.scalar_type() && scale.size(0) == s.n && scale.size(1) == s.c,
                    "winograd: scale must be [N, C] of x's dtype");
    }
    torch::Tensor tiles = given_or_new(out, {S * S, s.c, s.p}, img);
    const std::vector<int64_t> values = plane_values<S>(order);
    AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "winograd_windows_to_tiles", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* sc = scale.defined() ? scale.data_ptr<scalar_t>() : nullptr;
        for_each_block<false, S>(img.data_ptr<scalar_t>(), tiles.data_ptr<scalar_t>(), s, R, shift, values.data(),
                                 [&](const Block<scalar_t>& bl) {
            Lanes<acc_t> d[R][R], t[S][S];
            load_windows(bl, s, d);
            if (sc) scale_windows(bl, sc, s.c, in_order, d);
            fn(d, t);
            store_tiles(bl, t);
        });
    });
    return tiles;
}

// Tiles → image: fn maps each tile's S x S values (of `tiles`, [S*S, C, P]) to its R x R window of
// the returned [N, C, H, W] image (s's), which ADD sums where windows overlap (else they must not);
// out: the image to fill (not with ADD; a band's rows of it), or undefined for a new one; order:
// plane_values's.
template <bool ADD, int R, int S, typename Fn>
torch::Tensor tiles_to_windows(const torch::Tensor& tiles, const Tiling& s, int64_t shift, Fn fn,
                               const torch::Tensor& out = torch::Tensor(),
                               const c10::optional<torch::Tensor>& order = c10::nullopt) {
    TORCH_CHECK(s.th == s.th_all || out.defined(), "winograd: a band's output goes into the image given as out");
    torch::Tensor img = ADD ? torch::zeros({s.n, s.c, s.h, s.w}, tiles.options())
                            : given_or_new(out, {s.n, s.c, s.h, s.w}, tiles);
    const std::vector<int64_t> values = plane_values<S>(order);
    AT_DISPATCH_FLOATING_TYPES(tiles.scalar_type(), "winograd_tiles_to_windows", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_block<true, S>(img.data_ptr<scalar_t>(), tiles.data_ptr<scalar_t>(), s, R, shift, values.data(),
                                [&](const Block<scalar_t>& bl) {
            Lanes<acc_t> t[S][S], d[R][R];
            load_tiles(bl, t);
            fn(t, d);
            store_windows<ADD>(bl, s, d);
        });
    });
    if (!ADD) zero_uncovered(img, s);
    return img;
}

// The tiling of `t` ([S*S, C, P]) given by make(n, C, h, w) (its band of `rows` rows of windows from
// first_row, if rows >= 0), checked against t's shape.
template <int S>
Tiling tiling_of(const torch::Tensor& t, const char* what, Tiling (*make)(int64_t, int64_t, int64_t, int64_t),
                 int64_t n, int64_t h, int64_t w, int64_t first_row = 0, int64_t rows = -1) {
    check_cpu(t, what, 3);
    TORCH_CHECK(t.size(0) == S * S, "winograd: ", what, " must be [", S * S, ", channels, tiles]");
    const Tiling s = band(make(n, t.size(1), h, w), first_row, rows);
    TORCH_CHECK(t.size(2) == s.p, "winograd: ", what, " has ", t.size(2), " tiles, the image needs ", s.p);
    return s;
}

}  // namespace

// x: [N, C, H, W] (times scale: [N, C] or None) → V: [36, C, P] (in out, if given); with rows >= 0, of
// the band of `rows` rows of windows from first_row only (P: N * rows * windows a row).
inline torch::Tensor winograd_input(const torch::Tensor& x, const c10::optional<torch::Tensor>& scale,
                                    const c10::optional<torch::Tensor>& out, int64_t first_row, int64_t rows) {
    check_cpu(x, "x", 4);
    return windows_to_tiles<TILE_IN, TILE_IN>(x, band(tiling(x.size(0), x.size(1), x.size(2), x.size(3)), first_row, rows),
                                              -1, [](const auto& d, auto& t) { wino::input_tile(d, t); },
                                              scale.value_or(torch::Tensor()), out.value_or(torch::Tensor()));
}

// dV: [36, C, P] → dx: [N, C, H, W], the adjoint of winograd_input (overlapping tiles add up).
inline torch::Tensor winograd_input_adjoint(const torch::Tensor& dv, int64_t n, int64_t h, int64_t w) {
    return tiles_to_windows<true, TILE_IN, TILE_IN>(dv, tiling_of<TILE_IN>(dv, "dV", tiling, n, h, w), -1,
                                                    [](const auto& t, auto& d) { wino::input_tile_adjoint(t, d); });
}

// M: [36, K, P] → y: [N, K, H, W] (in out, if given); with rows >= 0, M holds a band's tiles (as
// winograd_input's) and only the band's rows of out are written.
inline torch::Tensor winograd_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w,
                                     const c10::optional<torch::Tensor>& out, int64_t first_row, int64_t rows) {
    return tiles_to_windows<false, TILE_OUT, TILE_IN>(m, tiling_of<TILE_IN>(m, "M", tiling, n, h, w, first_row, rows),
                                                      0, [](const auto& t, auto& y) { wino::output_tile(t, y); },
                                                      out.value_or(torch::Tensor()));
}

// dy: [N, K, H, W] → dM: [36, K, P], the adjoint of winograd_output.
inline torch::Tensor winograd_output_adjoint(const torch::Tensor& dy) {
    check_cpu(dy, "dy", 4);
    return windows_to_tiles<TILE_OUT, TILE_IN>(dy, tiling(dy.size(0), dy.size(1), dy.size(2), dy.size(3)), 0,
                                               [](const auto& o, auto& t) { wino::output_tile_adjoint(o, t); });
}

// The stride-2 transposed 3x3 conv (winograd.h's up_ transforms). x: [N, C, H, W] (times scale: [N, C]
// or None) → V: [81, C, P] (in out, if given); first_row, rows: a band, as winograd_input's; order:
// the planes of the values (plane_values; None: value order).
inline torch::Tensor winograd_up_input(const torch::Tensor& x, const c10::optional<torch::Tensor>& scale,
                                       const c10::optional<torch::Tensor>& out, int64_t first_row, int64_t rows,
                                       const c10::optional<torch::Tensor>& order) {
    check_cpu(x, "x", 4);
    return windows_to_tiles<wino::UP_WINDOW, wino::UP_VALUES>(
        x, band(up_input_tiling(x.size(0), x.size(1), x.size(2), x.size(3)), first_row, rows), -1,
        [](const auto& d, auto& t) { wino::up_input_tile(d, t); }, scale.value_or(torch::Tensor()),
        out.value_or(torch::Tensor()), order);
}

// M: [81, K, P] of an N x H x W input → y: [N, K, 2H + 1, 2W + 1], zero where no window reaches (in
// out, if given); first_row, rows: a band, as winograd_output's; order: as winograd_up_input's.
inline torch::Tensor winograd_up_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w,
                                        const c10::optional<torch::Tensor>& out, int64_t first_row, int64_t rows,
                                        const c10::optional<torch::Tensor>& order) {
    return tiles_to_windows<false, wino::UP_TILE_OUT, wino::UP_VALUES>(
        m, tiling_of<wino::UP_VALUES>(m, "M", up_output_tiling, n, h, w, first_row, rows), 0,
        [](const auto& t, auto& y) { wino::up_output_tile(t, y); }, out.value_or(torch::Tensor()), order);
}

namespace {

// Maps every filter q = (k, c) from R x R values to M x M with fn, LANES filters at once, in
// parallel. A filter's values lie together in [K, C, 3, 3] (value a of filter q at q * 9 + a) and
// across the filters in [36, K, C] (at a * filters + q); TILES_IN: src is the [36, K, C] one.
// (The layouts are compile-time so that the lane loops over consecutive filters vectorise.)
template <int R, int M, bool TILES_IN, typename scalar_t, typename Fn>
void transform_filters(const scalar_t* src, scalar_t* dst, int64_t filters, Fn fn) {
    using acc_t = at::opmath_type<scalar_t>;
    at::parallel_for(0, (filters + LANES - 1) / LANES, 64, [&](int64_t begin, int64_t end) {
        for (int64_t blk = begin; blk < end; ++blk) {
            const int64_t q0 = blk * LANES;
            const int lanes = int(std::min<int64_t>(LANES, filters - q0));
            Lanes<acc_t> in[R][R], out[M][M];
            for (int a = 0; a < R * R; ++a)
                for (int l = 0; l < LANES; ++l) {
                    const int64_t i = TILES_IN ? a * filters + q0 + l : (q0 + l) * R * R + a;
                    in[a / R][a % R].v[l] = l < lanes ? acc_t(src[i]) : acc_t(0);
                }
            fn(in, out);
            for (int a = 0; a < M * M; ++a)
                for (int l = 0; l < lanes; ++l)
                    dst[TILES_IN ? (q0 + l) * M * M + a : a * filters + q0 + l] = scalar_t(out[a / M][a % M].v[l]);
        }
    });
}

}  // namespace

// g: [K, C, 3, 3] → U: [36, K, C].
inline torch::Tensor winograd_weight(const torch::Tensor& g) {
    check_cpu(g, "weight", 4);
    TORCH_CHECK(g.size(2) == 3 && g.size(3) == 3, "winograd: weight must be [K, C, 3, 3]");
    const int64_t kc = g.size(0) * g.size(1);
    torch::Tensor u = torch::empty({TILE_IN * TILE_IN, g.size(0), g.size(1)}, g.options());
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "winograd_weight", [&] {
        transform_filters<3, 6, false>(g.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(), kc,
                                       [](const auto& f, auto& t) { wino::weight_tile(f, t); });
    });
    return u;
}

// dU: [36, K, C] → dg: [K, C, 3, 3], the adjoint of winograd_weight.
inline torch::Tensor winograd_weight_adjoint(const torch::Tensor& du) {
    check_cpu(du, "dU", 3);
    TORCH_CHECK(du.size(0) == 36, "winograd: dU must be [36, K, C]");
    const int64_t kc = du.size(1) * du.size(2);
    torch::Tensor dg = torch::empty({du.size(1), du.size(2), 3, 3}, du.options());
    AT_DISPATCH_FLOATING_TYPES(du.scalar_type(), "winograd_weight_adjoint", [&] {
        transform_filters<6, 3, true>(du.data_ptr<scalar_t>(), dg.data_ptr<scalar_t>(), kc,
                                      [](const auto& t, auto& f) { wino::weight_tile_adjoint(t, f); });
    });
    return dg;
}

// The planes keep (int64 [V], values 0..80 of up_weight_tile) of the transposed conv's filters from its taps
// in planes, taps: [3, 3, K, C] → U: [V, K, C] (into out if given: a plan's reused buffer, no allocation).
// Each value is a sum of at most four taps times constants, so a chunk of filters takes whole-vector loads
// of its taps and writes each plane in one run of 4 KiB: 5.3-6 ms for 512 x 512 filters on 2 cores, where
// the tile-by-tile transform (up_weight_tile over LANES filters at a time, 36 planes stored LANES values at a
// time) took 9-11 ms into the same buffer (benchmarks/THRESHOLDS.md, FILTERS_IN_ARENA). So a plan can make
// them per call.
inline torch::Tensor winograd_up_planes(const torch::Tensor& taps, const torch::Tensor& keep,
                                        const c10::optional<torch::Tensor>& out) {
    check_cpu(taps, "taps", 4);
    TORCH_CHECK(taps.size(0) == 3 && taps.size(1) == 3, "winograd: taps must be [3, 3, K, C]");
    torch::Tensor index = keep.to(torch::kCPU, torch::kLong).contiguous();
    const int64_t planes = index.numel(), k = taps.size(2), c = taps.size(3), filters = k * c;
    constexpr int values = wino::UP_VALUES * wino::UP_VALUES;
    TORCH_CHECK(index.dim() == 1 && planes >= 1 && index.min().item<int64_t>() >= 0 &&
                index.max().item<int64_t>() < values, "winograd: keep must be a 1-D list of values 0..80");
    torch::Tensor u = out ? *out : torch::empty({planes, k, c}, taps.options());
    TORCH_CHECK(u.device().is_cpu() && u.scalar_type() == taps.scalar_type() && u.is_contiguous() && u.dim() == 3 &&
                u.size(0) == planes && u.size(1) == k && u.size(2) == c,
                "winograd: out must be a contiguous [", planes, ", K, C] tensor of the taps' dtype on the CPU");
    // coef[v][t]: value v's coefficient of tap t, from the tile transform of each unit filter
    double coef[values][9];
    for (int t = 0; t < 9; ++t) {
        double unit[3][3] = {}, tile[wino::UP_VALUES][wino::UP_VALUES];
        unit[t / 3][t % 3] = 1.0;
        wino::up_weight_tile(unit, tile);
        for (int v = 0; v < values; ++v) coef[v][t] = tile[v / wino::UP_VALUES][v % wino::UP_VALUES];
    }
    // plane j's non-zero terms: taps[j][0 .. terms[j] - 1] with coefficients weights[j][...]
    std::vector<std::array<int, 9>> tap(planes);
    std::vector<std::array<double, 9>> weights(planes);
    std::vector<int> terms(planes, 0);
    for (int64_t j = 0; j < planes; ++j)
        for (int t = 0; t < 9; ++t) {
            const double w = coef[index.data_ptr<int64_t>()[j]][t];
            if (w != 0.0) tap[j][terms[j]] = t, weights[j][terms[j]++] = w;
        }
    AT_DISPATCH_FLOATING_TYPES(taps.scalar_type(), "winograd_up_planes", [&] {
        constexpr int64_t chunk = 1024;  // filters a pass: 4 KiB runs of each plane, 36 KiB of taps in L1/L2
        const scalar_t* g = taps.data_ptr<scalar_t>();
        scalar_t* dst = u.data_ptr<scalar_t>();
        at::parallel_for(0, (filters + chunk - 1) / chunk, 1, [&](int64_t begin, int64_t end) {
            for (int64_t q0 = begin * chunk; q0 < std::min(end * chunk, filters); q0 += chunk) {
                const int64_t count = std::min(chunk, filters - q0);
                for (int64_t j = 0; j < planes; ++j) {
                    scalar_t* row = dst + j * filters + q0;
                    for (int64_t q = 0; q < count; ++q) row[q] = 0;
                    for (int e = 0; e < terms[j]; ++e) {
                        const scalar_t* src = g + tap[j][e] * filters + q0;
                        const scalar_t w = scalar_t(weights[j][e]);
                        for (int64_t q = 0; q < count; ++q) row[q] += w * src[q];
                    }
                }
            }
        });
    });
    return u;
}

}  // namespace sa
