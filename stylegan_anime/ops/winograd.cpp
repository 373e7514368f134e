// Winograd transforms on the CPU: argument checks, loops, and the Python binding, for F(4x4, 3x3)
// (the 3x3 'same' conv; 36 values a tile) and for the stride-2 transposed 3x3 conv (81 values a
// tile). The per-tile arithmetic is in winograd.h. CPU only: on CUDA the networks use cuDNN's
// convolutions, which choose their own algorithms.
//
// The loops hand winograd.h LANES tiles (or filters) at once, one per SIMD lane (simd.h): the tiles
// of one channel are contiguous in V and M, so their values are stored as whole vectors, and only
// the image side is gathered (tile origins are computed once per call).
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "simd.h"
#include "winograd.h"

namespace sa {
namespace {

using wino::TILE_IN;
using wino::TILE_OUT;
using simd::LANES;
using simd::Lanes;

// An [N, C, H, W] image cut into th x tw windows per image, `stride` pixels apart; P tiles in all.
// Every tiling whose windows are read (the F(4x4, 3x3) input and output, the up-conv's input) steps
// 4 pixels; only the up-conv's output, which is written, steps 8.
constexpr int64_t READ_STEP = TILE_OUT;
static_assert(wino::UP_STEP == READ_STEP, "the up-conv's input windows are read like F(4x4, 3x3)'s");
struct Tiling {
    int64_t n, c, h, w, th, tw, p, stride;
};

Tiling tiling(int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t th = (h + TILE_OUT - 1) / TILE_OUT, tw = (w + TILE_OUT - 1) / TILE_OUT;
    return {n, c, h, w, th, tw, n * th * tw, TILE_OUT};
}

// The transposed conv's input x [N, C, H, W]: 5 x 5 windows, 4 pixels apart, starting one pixel
// above and left of the image, cover input rows -1 .. 4 * th (its output has 2H + 1 rows).
Tiling up_input_tiling(int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t th = h / wino::UP_STEP + 1, tw = w / wino::UP_STEP + 1;
    return {n, c, h, w, th, tw, n * th * tw, wino::UP_STEP};
}

// Its output [N, K, 2H + 1, 2W + 1]: one 8 x 8 window per input window, side by side.
Tiling up_output_tiling(int64_t n, int64_t k, int64_t h, int64_t w) {
    Tiling s = up_input_tiling(n, k, h, w);
    s.h = 2 * h + 1;
    s.w = 2 * w + 1;
    s.stride = wino::UP_TILE_OUT;
    return s;
}

void check_cpu(const torch::Tensor& t, const char* what, int64_t dim) {
    TORCH_CHECK(t.device().is_cpu(), "winograd: ", what, " must be a CPU tensor");
    TORCH_CHECK(t.dim() == dim && t.is_contiguous(), "winograd: ", what, " must be a contiguous ", dim, "-D tensor");
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                "winograd: ", what, " must be float32 or float64");
}

// Where tile p's R x R image window starts, relative to its channel's plane in image 0.
struct Origin {
    int64_t offset, y0, x0;
    bool inside;  // the whole window lies in the image: no bounds checks
};

std::vector<Origin> origins(const Tiling& s, int r, int64_t shift) {
    std::vector<Origin> o(s.p);
    for (int64_t p = 0; p < s.p; ++p) {
        const int64_t b = p / (s.th * s.tw), ty = p / s.tw % s.th, tx = p % s.tw;
        const int64_t y0 = ty * s.stride + shift, x0 = tx * s.stride + shift;
        o[p] = {b * s.c * s.h * s.w + y0 * s.w + x0, y0, x0, y0 >= 0 && x0 >= 0 && y0 + r <= s.h && x0 + r <= s.w};
    }
    return o;
}

// One block of LANES tiles of channel ch: the channel's image plane in image 0, the block's
// tile values (value a of lane l at tiles[a * a_stride + p0 + l]) and the tiles' origins.
template <typename scalar_t>
struct Block {
    scalar_t* img;
    scalar_t* tiles;
    int64_t a_stride, p0;
    int lanes;  // LANES, or fewer in the last block
    const Origin* o;
};

// Tiles per chunk: the blocks see the S * S values of a chunk's tiles in a small buffer. Read or
// written in place, the S * S rows of a block (at strides of C * P values, a multiple of 4 KiB)
// would fall into one cache set and evict each other's half-written lines.
constexpr int CHUNK = 8 * LANES;

// A fixed-length loop for whole chunks: vector moves (std::copy_n becomes `rep movs`, slow to start).
template <typename scalar_t>
void copy_row(const scalar_t* src, scalar_t* dst, int64_t count) {
    if (count == CHUNK)
        for (int i = 0; i < CHUNK; ++i) dst[i] = src[i];
    else
        for (int64_t i = 0; i < count; ++i) dst[i] = src[i];
}

// Calls fn(block) for every block of every channel; channels run in parallel, the blocks of one
// channel in order (so the adjoint's overlapping windows can add up without races). READ: fn
// reads the tiles (they are copied into the buffer first); else fn writes them (copied out after).
template <bool READ, int S, typename scalar_t, typename Fn>
void for_each_block(scalar_t* img, scalar_t* tiles, const Tiling& s, int r, int64_t shift, Fn fn) {
    const std::vector<Origin> o = origins(s, r, shift);
    at::parallel_for(0, s.c, 1, [&](int64_t begin, int64_t end) {
        alignas(64) scalar_t buf[S * S * CHUNK] = {};
        for (int64_t ch = begin; ch < end; ++ch)
            for (int64_t c0 = 0; c0 < s.p; c0 += CHUNK) {
                const int64_t count = std::min<int64_t>(CHUNK, s.p - c0);
                scalar_t* rows = tiles + ch * s.p + c0;
                if (READ)
                    for (int a = 0; a < S * S; ++a) copy_row(rows + a * s.c * s.p, buf + a * CHUNK, count);
                for (int64_t p0 = 0; p0 < count; p0 += LANES)
                    fn(Block<scalar_t>{img + ch * s.h * s.w, buf, CHUNK, p0,
                                       int(std::min<int64_t>(LANES, count - p0)), o.data() + c0 + p0});
                if (!READ)
                    for (int a = 0; a < S * S; ++a) copy_row(buf + a * CHUNK, rows + a * s.c * s.p, count);
            }
    });
}

template <int S, typename scalar_t, typename acc_t>
void load_tiles(const Block<scalar_t>& bl, Lanes<acc_t> (&t)[S][S]) {
    for (int a = 0; a < S * S; ++a) {
        const scalar_t* in = bl.tiles + a * bl.a_stride + bl.p0;
        for (int l = 0; l < LANES; ++l) t[a / S][a % S].v[l] = l < bl.lanes ? acc_t(in[l]) : acc_t(0);
    }
}

template <int S, typename scalar_t, typename acc_t>
void store_tiles(const Block<scalar_t>& bl, const Lanes<acc_t> (&t)[S][S]) {
    for (int a = 0; a < S * S; ++a) {
        scalar_t* out = bl.tiles + a * bl.a_stride + bl.p0;
        if (bl.lanes == LANES)
            for (int l = 0; l < LANES; ++l) out[l] = scalar_t(t[a / S][a % S].v[l]);
        else
            for (int l = 0; l < bl.lanes; ++l) out[l] = scalar_t(t[a / S][a % S].v[l]);
    }
}

// Whether the block's windows all lie inside the image, side by side in one row of tiles: then
// lane l's window starts stride * l pixels right of lane 0's, and no bounds are checked.
template <typename scalar_t>
bool is_row_run(const Block<scalar_t>& bl, const Tiling& s) {
    const Origin &first = bl.o[0], &last = bl.o[LANES - 1];
    return bl.lanes == LANES && first.inside && last.inside && last.offset == first.offset + s.stride * (LANES - 1);
}

// The R x R image windows of the block's tiles, zeros outside the image.
template <int R, typename scalar_t, typename acc_t>
void load_windows(const Block<scalar_t>& bl, const Tiling& s, Lanes<acc_t> (&d)[R][R]) {
    if (is_row_run(bl, s)) {
        // A constant step (windows_to_tiles checks it) lets the compiler keep the gathers cheap.
        const scalar_t* src = bl.img + bl.o[0].offset;
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < R; ++j)
                for (int l = 0; l < LANES; ++l) d[i][j].v[l] = acc_t(src[i * s.w + READ_STEP * l + j]);
        return;
    }
    for (int l = 0; l < LANES; ++l) {
        const Origin& o = bl.o[l < bl.lanes ? l : 0];
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < R; ++j) {
                const bool in = o.inside || (o.y0 + i >= 0 && o.y0 + i < s.h && o.x0 + j >= 0 && o.x0 + j < s.w);
                d[i][j].v[l] = in ? acc_t(bl.img[o.offset + i * s.w + j]) : acc_t(0);
            }
    }
}

// Writes (or, with ADD, adds) the block's R x R windows, skipping what falls outside the image.
template <bool ADD, int R, typename scalar_t, typename acc_t>
void store_windows(const Block<scalar_t>& bl, const Tiling& s, const Lanes<acc_t> (&d)[R][R]) {
    if (is_row_run(bl, s)) {
        // Columns j and j + stride of neighbouring lanes may overlap: each pass over one j touches
        // every pixel at most once, so its lane loop has no dependences.
        scalar_t* dst = bl.img + bl.o[0].offset;
        if (!ADD && s.stride == R) {
            // Windows side by side: a row of the block is LANES * R consecutive pixels, put together
            // in a buffer and stored as whole vectors.
            alignas(64) scalar_t row[LANES * R];
            for (int i = 0; i < R; ++i) {
                for (int j = 0; j < R; ++j)
                    for (int l = 0; l < LANES; ++l) row[l * R + j] = scalar_t(d[i][j].v[l]);
                memcpy(dst + i * s.w, row, sizeof(row));
            }
            return;
        }
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < R; ++j)
                for (int l = 0; l < LANES; ++l) {
                    scalar_t& v = dst[i * s.w + s.stride * l + j];
                    v = ADD ? scalar_t(v + d[i][j].v[l]) : scalar_t(d[i][j].v[l]);
                }
        return;
    }
    for (int l = 0; l < bl.lanes; ++l) {
        const Origin& o = bl.o[l];
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < R; ++j) {
                if (!o.inside && !(o.y0 + i >= 0 && o.y0 + i < s.h && o.x0 + j >= 0 && o.x0 + j < s.w)) continue;
                scalar_t& v = bl.img[o.offset + i * s.w + j];
                v = ADD ? scalar_t(v + d[i][j].v[l]) : scalar_t(d[i][j].v[l]);
            }
    }
}

// Image → tiles: fn maps the R x R window (at `shift` from each tile's origin) of every tile of
// image `img` ([N, C, H, W], tiled as s says) to its S x S values in the returned [S*S, C, P] tensor.
template <int R, int S, typename Fn>
torch::Tensor windows_to_tiles(const torch::Tensor& img, const Tiling& s, int64_t shift, Fn fn) {
    TORCH_CHECK(s.stride == READ_STEP, "winograd: windows to read must lie ", READ_STEP, " pixels apart");
    torch::Tensor tiles = torch::empty({S * S, s.c, s.p}, img.options());
    AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "winograd_windows_to_tiles", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_block<false, S>(img.data_ptr<scalar_t>(), tiles.data_ptr<scalar_t>(), s, R, shift,
                                 [&](const Block<scalar_t>& bl) {
            Lanes<acc_t> d[R][R], t[S][S];
            load_windows(bl, s, d);
            fn(d, t);
            store_tiles(bl, t);
        });
    });
    return tiles;
}

// Tiles → image: fn maps each tile's S x S values (of `tiles`, [S*S, C, P]) to its R x R window of
// the returned [N, C, H, W] image (s's), which ADD sums where windows overlap (else they must not).
template <bool ADD, int R, int S, typename Fn>
torch::Tensor tiles_to_windows(const torch::Tensor& tiles, const Tiling& s, int64_t shift, Fn fn) {
    torch::Tensor img = ADD ? torch::zeros({s.n, s.c, s.h, s.w}, tiles.options())
                            : torch::empty({s.n, s.c, s.h, s.w}, tiles.options());
    AT_DISPATCH_FLOATING_TYPES(tiles.scalar_type(), "winograd_tiles_to_windows", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_block<true, S>(img.data_ptr<scalar_t>(), tiles.data_ptr<scalar_t>(), s, R, shift,
                                [&](const Block<scalar_t>& bl) {
            Lanes<acc_t> t[S][S], d[R][R];
            load_tiles(bl, t);
            fn(t, d);
            store_windows<ADD>(bl, s, d);
        });
    });
    return img;
}

// The tiling of `t` ([S*S, C, P]) given by make(n, C, h, w), checked against t's shape.
template <int S>
Tiling tiling_of(const torch::Tensor& t, const char* what, Tiling (*make)(int64_t, int64_t, int64_t, int64_t),
                 int64_t n, int64_t h, int64_t w) {
    check_cpu(t, what, 3);
    TORCH_CHECK(t.size(0) == S * S, "winograd: ", what, " must be [", S * S, ", channels, tiles]");
    const Tiling s = make(n, t.size(1), h, w);
    TORCH_CHECK(t.size(2) == s.p, "winograd: ", what, " has ", t.size(2), " tiles, the image needs ", s.p);
    return s;
}

}  // namespace

// x: [N, C, H, W] → V: [36, C, P].
torch::Tensor winograd_input(const torch::Tensor& x) {
    check_cpu(x, "x", 4);
    return windows_to_tiles<TILE_IN, TILE_IN>(x, tiling(x.size(0), x.size(1), x.size(2), x.size(3)), -1,
                                              [](const auto& d, auto& t) { wino::input_tile(d, t); });
}

// dV: [36, C, P] → dx: [N, C, H, W], the adjoint of winograd_input (overlapping tiles add up).
torch::Tensor winograd_input_adjoint(const torch::Tensor& dv, int64_t n, int64_t h, int64_t w) {
    return tiles_to_windows<true, TILE_IN, TILE_IN>(dv, tiling_of<TILE_IN>(dv, "dV", tiling, n, h, w), -1,
                                                    [](const auto& t, auto& d) { wino::input_tile_adjoint(t, d); });
}

// M: [36, K, P] → y: [N, K, H, W].
torch::Tensor winograd_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w) {
    return tiles_to_windows<false, TILE_OUT, TILE_IN>(m, tiling_of<TILE_IN>(m, "M", tiling, n, h, w), 0,
                                                      [](const auto& t, auto& y) { wino::output_tile(t, y); });
}

// dy: [N, K, H, W] → dM: [36, K, P], the adjoint of winograd_output.
torch::Tensor winograd_output_adjoint(const torch::Tensor& dy) {
    check_cpu(dy, "dy", 4);
    return windows_to_tiles<TILE_OUT, TILE_IN>(dy, tiling(dy.size(0), dy.size(1), dy.size(2), dy.size(3)), 0,
                                               [](const auto& o, auto& t) { wino::output_tile_adjoint(o, t); });
}

// The stride-2 transposed 3x3 conv (winograd.h's up_ transforms). x: [N, C, H, W] → V: [81, C, P].
torch::Tensor winograd_up_input(const torch::Tensor& x) {
    check_cpu(x, "x", 4);
    return windows_to_tiles<wino::UP_WINDOW, wino::UP_VALUES>(
        x, up_input_tiling(x.size(0), x.size(1), x.size(2), x.size(3)), -1,
        [](const auto& d, auto& t) { wino::up_input_tile(d, t); });
}

// M: [81, K, P] of an N x H x W input → y: [N, K, 2H + 1, 2W + 1].
torch::Tensor winograd_up_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w) {
    return tiles_to_windows<false, wino::UP_TILE_OUT, wino::UP_VALUES>(
        m, tiling_of<wino::UP_VALUES>(m, "M", up_output_tiling, n, h, w), 0,
        [](const auto& t, auto& y) { wino::up_output_tile(t, y); });
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
torch::Tensor winograd_weight(const torch::Tensor& g) {
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
torch::Tensor winograd_weight_adjoint(const torch::Tensor& du) {
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

// The transposed conv's filters: conv2d's weight g: [K, C, 3, 3] (conv_transpose2d's weight with the
// channel axes swapped) → U: [81, K, C].
torch::Tensor winograd_up_weight(const torch::Tensor& g) {
    check_cpu(g, "weight", 4);
    TORCH_CHECK(g.size(2) == 3 && g.size(3) == 3, "winograd: weight must be [K, C, 3, 3]");
    const int64_t kc = g.size(0) * g.size(1);
    torch::Tensor u = torch::empty({wino::UP_VALUES * wino::UP_VALUES, g.size(0), g.size(1)}, g.options());
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "winograd_up_weight", [&] {
        transform_filters<3, wino::UP_VALUES, false>(g.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(), kc,
                                                     [](const auto& f, auto& t) { wino::up_weight_tile(f, t); });
    });
    return u;
}

}  // namespace sa

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("input", &sa::winograd_input, "x [N, C, H, W] -> V [36, C, P] (Winograd F(4x4, 3x3) input tiles)");
    m.def("input_adjoint", &sa::winograd_input_adjoint, "dV [36, C, P], N, H, W -> dx [N, C, H, W]");
    m.def("output", &sa::winograd_output, "M [36, K, P], N, H, W -> y [N, K, H, W]");
    m.def("output_adjoint", &sa::winograd_output_adjoint, "dy [N, K, H, W] -> dM [36, K, P]");
    m.def("weight", &sa::winograd_weight, "g [K, C, 3, 3] -> U [36, K, C] (Winograd F(4x4, 3x3) filter tiles)");
    m.def("weight_adjoint", &sa::winograd_weight_adjoint, "dU [36, K, C] -> dg [K, C, 3, 3]");
    m.def("up_input", &sa::winograd_up_input, "x [N, C, H, W] -> V [81, C, P] (stride-2 transposed 3x3 conv)");
    m.def("up_output", &sa::winograd_up_output, "M [81, K, P], N, H, W -> y [N, K, 2H + 1, 2W + 1]");
    m.def("up_weight", &sa::winograd_up_weight, "g [K, C, 3, 3] -> U [81, K, C]");
}
