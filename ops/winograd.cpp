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
#include <tuple>
#include <type_traits>
#include <vector>

#include "layer_epilogue.h"
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
    const int64_t th = (h + wino::UP_STEP - 1) / wino::UP_STEP, tw = (w + wino::UP_STEP - 1) / wino::UP_STEP;
    return {n, c, h, w, th, tw, n * th * tw, wino::UP_STEP};
}

// Its output [N, K, 2H + 1, 2W + 1]: one 8 x 8 window per input window, side by side, covering all
// but the last row (column) when H (W) is a multiple of 4 (winograd.h).
Tiling up_output_tiling(int64_t n, int64_t k, int64_t h, int64_t w) {
    Tiling s = up_input_tiling(n, k, h, w);
    s.h = 2 * h + 1;
    s.w = 2 * w + 1;
    s.stride = wino::UP_TILE_OUT;
    return s;
}

// Zeros the rows and columns of y [N, C, H, W] that no window of s covers (the up-conv's last ones).
void zero_uncovered(torch::Tensor& y, const Tiling& s) {
    const int64_t rows = s.h - s.th * s.stride, cols = s.w - s.tw * s.stride;
    if (rows > 0) y.narrow(2, s.th * s.stride, rows).zero_();
    if (cols > 0) y.narrow(3, s.tw * s.stride, cols).zero_();
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
    int64_t image;
};

std::vector<Origin> origins(const Tiling& s, int r, int64_t shift) {
    std::vector<Origin> o(s.p);
    for (int64_t p = 0; p < s.p; ++p) {
        const int64_t b = p / (s.th * s.tw), ty = p / s.tw % s.th, tx = p % s.tw;
        const int64_t y0 = ty * s.stride + shift, x0 = tx * s.stride + shift;
        o[p] = {b * s.c * s.h * s.w + y0 * s.w + x0, y0, x0, y0 >= 0 && x0 >= 0 && y0 + r <= s.h && x0 + r <= s.w, b};
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
    int64_t ch;  // the channel
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
                                       int(std::min<int64_t>(LANES, count - p0)), o.data() + c0 + p0, ch});
                if (!READ)
                    for (int a = 0; a < S * S; ++a) copy_row(buf + a * CHUNK, rows + a * s.c * s.p, count);
            }
    });
}

template <int S, typename scalar_t, typename acc_t>
void load_tiles(const Block<scalar_t>& bl, Lanes<acc_t> (&t)[S][S]) {
    for (int a = 0; a < S * S; ++a) {
        const scalar_t* in = bl.tiles + a * bl.a_stride + bl.p0;
        if (std::is_same<scalar_t, acc_t>::value && bl.lanes == LANES)  // one vector load
            t[a / S][a % S] = Lanes<acc_t>::load(reinterpret_cast<const acc_t*>(in));
        else
            for (int l = 0; l < LANES; ++l) t[a / S][a % S].v[l] = l < bl.lanes ? acc_t(in[l]) : acc_t(0);
    }
}

template <int S, typename scalar_t, typename acc_t>
void store_tiles(const Block<scalar_t>& bl, const Lanes<acc_t> (&t)[S][S]) {
    for (int a = 0; a < S * S; ++a) {
        scalar_t* out = bl.tiles + a * bl.a_stride + bl.p0;
        if (std::is_same<scalar_t, acc_t>::value && bl.lanes == LANES)  // one vector store
            t[a / S][a % S].store(reinterpret_cast<acc_t*>(out));
        else if (bl.lanes == LANES)
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

template <int R, typename scalar_t, typename acc_t>
void gather_windows(const Block<scalar_t>& bl, const Tiling& s, Lanes<acc_t> (&d)[R][R]);
template <bool ADD, int R, typename scalar_t, typename acc_t>
void scatter_windows(const Block<scalar_t>& bl, const Tiling& s, const Lanes<acc_t> (&d)[R][R]);

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
    gather_windows(bl, s, d);
}

// load_windows one lane at a time, with bounds checks.
template <int R, typename scalar_t, typename acc_t>
void gather_windows(const Block<scalar_t>& bl, const Tiling& s, Lanes<acc_t> (&d)[R][R]) {
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
    scatter_windows<ADD>(bl, s, d);
}

// store_windows one lane at a time, with bounds checks.
template <bool ADD, int R, typename scalar_t, typename acc_t>
void scatter_windows(const Block<scalar_t>& bl, const Tiling& s, const Lanes<acc_t> (&d)[R][R]) {
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

// Which of a block's tiles lane l holds: here the tiles in order (a short block repeats its last one).
inline int in_order(int l, int lanes) { return std::min(l, lanes - 1); }

// Per lane, scale[image of the lane's tile, bl.ch] (scale: [N, channels]), lane l holding the block's
// tile tile_of(l, lanes). An image's tiles are consecutive: a block within one image takes one broadcast.
template <typename acc_t, typename scalar_t>
Lanes<acc_t> lane_scale(const Block<scalar_t>& bl, const scalar_t* scale, int64_t channels, int (*tile_of)(int, int)) {
    if (bl.o[0].image == bl.o[bl.lanes - 1].image) return Lanes<acc_t>(acc_t(scale[bl.o[0].image * channels + bl.ch]));
    Lanes<acc_t> f;
    for (int l = 0; l < LANES; ++l) f.v[l] = acc_t(scale[bl.o[tile_of(l, bl.lanes)].image * channels + bl.ch]);
    return f;
}

// d (the block's windows of channel bl.ch, as lane_scale's tile_of places them) times each lane's
// image's scale of the channel: the modulation of a modulated conv.
template <int R, typename scalar_t, typename acc_t>
void scale_windows(const Block<scalar_t>& bl, const scalar_t* scale, int64_t channels, int (*tile_of)(int, int),
                   Lanes<acc_t> (&d)[R][R]) {
    const Lanes<acc_t> f = lane_scale<acc_t>(bl, scale, channels, tile_of);
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < R; ++j) d[i][j] = d[i][j] * f;
}

// Image → tiles: fn maps the R x R window (at `shift` from each tile's origin) of every tile of
// image `img` ([N, C, H, W], tiled as s says) to its S x S values in the returned [S*S, C, P] tensor.
// With `scale` ([N, C], img's dtype, or undefined), each window is first multiplied by its image's
// scale of the channel: the modulation of a modulated conv, in the same pass.
template <int R, int S, typename Fn>
torch::Tensor windows_to_tiles(const torch::Tensor& img, const Tiling& s, int64_t shift, Fn fn,
                               const torch::Tensor& scale = torch::Tensor()) {
    TORCH_CHECK(s.stride == READ_STEP, "winograd: windows to read must lie ", READ_STEP, " pixels apart");
    if (scale.defined()) {
        check_cpu(scale, "scale", 2);
        TORCH_CHECK(scale.scalar_type() == img.scalar_type() && scale.size(0) == s.n && scale.size(1) == s.c,
                    "winograd: scale must be [N, C] of x's dtype");
    }
    torch::Tensor tiles = torch::empty({S * S, s.c, s.p}, img.options());
    AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "winograd_windows_to_tiles", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* sc = scale.defined() ? scale.data_ptr<scalar_t>() : nullptr;
        for_each_block<false, S>(img.data_ptr<scalar_t>(), tiles.data_ptr<scalar_t>(), s, R, shift,
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
    if (!ADD) zero_uncovered(img, s);
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

// x: [N, C, H, W] (times scale: [N, C] or None) → V: [36, C, P].
torch::Tensor winograd_input(const torch::Tensor& x, const c10::optional<torch::Tensor>& scale) {
    check_cpu(x, "x", 4);
    return windows_to_tiles<TILE_IN, TILE_IN>(x, tiling(x.size(0), x.size(1), x.size(2), x.size(3)), -1,
                                              [](const auto& d, auto& t) { wino::input_tile(d, t); },
                                              scale.value_or(torch::Tensor()));
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

// The stride-2 transposed 3x3 conv (winograd.h's up_ transforms). x: [N, C, H, W] (times scale: [N, C]
// or None) → V: [81, C, P].
torch::Tensor winograd_up_input(const torch::Tensor& x, const c10::optional<torch::Tensor>& scale) {
    check_cpu(x, "x", 4);
    return windows_to_tiles<wino::UP_WINDOW, wino::UP_VALUES>(
        x, up_input_tiling(x.size(0), x.size(1), x.size(2), x.size(3)), -1,
        [](const auto& d, auto& t) { wino::up_input_tile(d, t); }, scale.value_or(torch::Tensor()));
}

// M: [81, K, P] of an N x H x W input → y: [N, K, 2H + 1, 2W + 1], zero where no window reaches.
torch::Tensor winograd_up_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w) {
    return tiles_to_windows<false, wino::UP_TILE_OUT, wino::UP_VALUES>(
        m, tiling_of<wino::UP_VALUES>(m, "M", up_output_tiling, n, h, w), 0,
        [](const auto& t, auto& y) { wino::up_output_tile(t, y); });
}

namespace {

// ---------------------------------------------------------------------------- the fused convolution
//
// Transform, products and output transform one band of tiles at a time, so that a band's S*S
// values per channel go from the input transform to the products and on to the output transform
// while they are in the cache, instead of making three passes over [S*S, C, P] tensors in memory
// (at 512², F(4x4, 3x3)'s V and M are 2.25x the image each).

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

// m[k, q] = sum_c u[k, c] v[c, q] for one panel: u [ROWS, C] (row stride C), v and m [.., GEMM_COLS].
template <int ROWS>
void gemm_block(const float* u, int64_t c, const float* v, float* m) {
    Lanes<float> acc[ROWS][GEMM_VECS];
    for (int r = 0; r < ROWS; ++r)
        for (int j = 0; j < GEMM_VECS; ++j) acc[r][j] = 0.f;
    for (int64_t i = 0; i < c; ++i) {
        Lanes<float> b[GEMM_VECS];
        for (int j = 0; j < GEMM_VECS; ++j) b[j] = Lanes<float>::load(v + i * GEMM_COLS + j * LANES);
        for (int r = 0; r < ROWS; ++r) {
            const Lanes<float> a = u[r * c + i];
            for (int j = 0; j < GEMM_VECS; ++j) acc[r][j] = simd::fma(a, b[j], acc[r][j]);
        }
    }
    for (int r = 0; r < ROWS; ++r)
        for (int j = 0; j < GEMM_VECS; ++j) acc[r][j].store(m + r * GEMM_COLS + j * LANES);
}

// The band's products, plane by plane: m[a] = u[a] v[a] for u [planes, K, C] (contiguous) and the
// first `count` tiles of v (C rows) and m (K rows).
void band_products(const float* u, const float* v, float* m, int64_t planes, const BandLayout& lv,
                   const BandLayout& lm, int64_t count) {
    const int64_t c = lv.rows, k = lm.rows;
    for (int64_t a = 0; a < planes; ++a)
        for (int64_t q = 0; q < count; q += GEMM_COLS) {
            const float* vp = v + a * lv.plane() + q / GEMM_COLS * lv.panel();
            float* mp = m + a * lm.plane() + q / GEMM_COLS * lm.panel();
            const float* ua = u + a * k * c;
            int64_t r = 0;
            for (; r + GEMM_ROWS <= k; r += GEMM_ROWS) gemm_block<GEMM_ROWS>(ua + r * c, c, vp, mp + r * GEMM_COLS);
            for (; r < k; ++r) gemm_block<1>(ua + r * c, c, vp, mp + r * GEMM_COLS);
        }
}

// In a full block of the fused conv, lane l holds the block's tile PERM[l]: the order in which a 4 x 4
// transpose within each half of an AVX register leaves a row of side-by-side windows (`transpose4`),
// so that a row of 8 windows moves between image and registers as whole vectors. Input and output
// agree on it, and the products do not care how a panel's columns are ordered. (Blocks of fewer
// tiles keep the plain order.)
constexpr int PERM[LANES] = {0, 2, 4, 6, 1, 3, 5, 7};

// Which of a fused conv's block's tiles lane l holds (PERM order in full blocks), as in_order.
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

// load_windows for the fused conv (lanes in PERM order in full blocks).
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

// store_windows (no adding) for the fused conv (lanes in PERM order in full blocks).
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
// (WRITE: rows about to be written): alone, 1.15-1.2x faster fused convs with 64-128 channels in.
constexpr int64_t PREFETCH_CHANNELS = 2;
// The R rows of 8 windows side by side: 8 x 4 pixels (+ 2 for the 5- and 6-pixel input windows), or
// 8 x 8 for the up-conv's output windows.
template <int R, bool WRITE>
inline void prefetch_rows(const float* first, int64_t row_stride) {
    constexpr int WIDTH = LANES * (R > 6 ? R : 4) + 4;
    for (int i = 0; i < R; ++i) simd::prefetch<WRITE>(first + i * row_stride, WIDTH);
}

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
    bool keep_y;
};

// What the fused conv of x [N, C, H, W] into y needs to know: the tilings, the tiles' window origins.
struct FusedConv {
    const Tiling &si, &so;
    std::vector<Origin> oi, oo;
    BandLayout lv, lm;
    const float* scale;  // [N, C] or null
    const FusedEpilogue* epi;  // or null
    const FusedRgb* rgb;  // or null
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
void band_noise(const FusedConv& f, Lanes<float>* nz, int64_t p0, int64_t count) {
    const int64_t plane = f.so.h * f.so.w;
    for (int64_t q = 0; q < count; q += LANES) {
        const int lanes = int(std::min<int64_t>(LANES, count - q));
        Lanes<float>* w = nz + q / LANES * T * T;
        for (int a = 0; a < T * T; ++a) w[a] = 0.f;
        for (int l = 0; l < lanes; ++l) {
            const Origin& o = f.oo[p0 + q + lane_tile(l, lanes)];
            const float* src = f.epi->noise + (f.epi->noise_images == 1 ? 0 : o.image) * plane;
            for (int i = 0; i < T; ++i)
                for (int j = 0; j < T; ++j)
                    if (o.y0 + i < f.so.h && o.x0 + j < f.so.w) w[i * T + j].v[l] = src[(o.y0 + i) * f.so.w + o.x0 + j];
        }
    }
}

// The epilogue on a block's output windows d (of channel bl.ch).
template <int T>
void finish_windows(const FusedConv& f, const Block<float>& bl, const Lanes<float>* noise, Lanes<float> (&d)[T][T]) {
    const FusedEpilogue& e = *f.epi;
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
// epilogue if there is one, with the band's noise windows nz), and into the toRGB sums rgb if there
// is a toRGB layer (y is then stored only if kept).
template <int S, int T, typename OutTf>
void band_output(const FusedConv& f, const float* m, float* y, int64_t p0, int64_t count, const Lanes<float>* nz,
                 Lanes<float>* rgb, OutTf out_tf) {
    const bool store = !f.rgb || f.rgb->keep_y;
    for (int64_t ch = 0; ch < f.so.c; ++ch)
        for (int64_t q = 0; q < count; q += LANES) {
            float* plane = store ? y + ch * f.so.h * f.so.w : nullptr;
            const auto bl = f.lm.block(plane, const_cast<float*>(m), ch, q, count, f.oo.data() + p0);
            if (store && ch + PREFETCH_CHANNELS < f.so.c)
                prefetch_rows<T, true>(bl.img + PREFETCH_CHANNELS * f.so.h * f.so.w + bl.o[0].offset, f.so.w);
            Lanes<float> t[S][S], d[T][T];
            load_tiles(bl, t);
            out_tf(t, d);
            if (f.epi) finish_windows(f, bl, nz + q / LANES * T * T, d);
            if (store) store_band_windows(bl, f.so, d);
            if (f.rgb) add_to_rgb(*f.rgb, bl, f.so.c, d, rgb + q / LANES * f.rgb->tiling.c * T * T);
        }
    if (f.rgb) store_rgb<T>(*f.rgb, rgb, p0, count, f.lm);
}

// in_tf maps an R x R window to S x S values, out_tf S x S products to a T x T output window.
// y (undefined if rgb does not keep it); rgb->out filled if rgb is given.
template <int R, int S, int T, typename InTf, typename OutTf>
torch::Tensor fused_conv(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& scale,
                         const FusedEpilogue* epi, const FusedRgb* rgb, const Tiling& si, const Tiling& so,
                         int64_t band, InTf in_tf, OutTf out_tf) {
    const bool keep_y = !rgb || rgb->keep_y;
    torch::Tensor y = keep_y ? torch::empty({so.n, so.c, so.h, so.w}, x.options()) : torch::Tensor();
    const FusedConv f{si, so, origins(si, R, -1), origins(so, T, 0), {si.c, band}, {so.c, band},
                      scale.defined() ? scale.data_ptr<float>() : nullptr, epi, rgb};
    const int64_t blocks = (band + LANES - 1) / LANES;
    // Each thread takes an equal share of the tiles, in whole panels, and cuts it into bands. (Dealt
    // out whole, a few long bands split unevenly: a 128² image's 6 bands of 192 tiles gave one thread
    // 576 tiles and the other 448.)
    const int64_t panels = (si.p + GEMM_COLS - 1) / GEMM_COLS;
    const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), panels));
    at::parallel_for(0, shares, 1, [&](int64_t begin, int64_t end) {
        // Tiles past the last in a panel are multiplied too: zeros, not whatever the memory held.
        std::vector<float> v(S * S * f.lv.plane(), 0.f), m(S * S * f.lm.plane());
        std::vector<Lanes<float>> nz(epi ? blocks * T * T : 0, Lanes<float>(0.f));
        std::vector<Lanes<float>> sums(rgb ? blocks * rgb->tiling.c * T * T : 0);
        for (int64_t share = begin; share < end; ++share) {
            const int64_t first = panels * share / shares * GEMM_COLS;
            const int64_t last = std::min(si.p, panels * (share + 1) / shares * GEMM_COLS);
            for (int64_t p0 = first; p0 < last; p0 += band) {
                const int64_t count = std::min(last - p0, band);
                if (epi && epi->noise) band_noise<T>(f, nz.data(), p0, count);
                band_input<R, S>(f, x.data_ptr<float>(), v.data(), p0, count, in_tf);
                band_products(u.data_ptr<float>(), v.data(), m.data(), S * S, f.lv, f.lm, count);
                std::fill(sums.begin(), sums.end(), Lanes<float>(0.f));
                band_output<S, T>(f, m.data(), keep_y ? y.data_ptr<float>() : nullptr, p0, count, nz.data(),
                                  sums.data(), out_tf);
            }
        }
    });
    if (keep_y) zero_uncovered(y, so);
    return y;
}

void check_fused(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& scale, int s, int64_t band) {
    check_cpu(x, "x", 4);
    check_cpu(u, "U", 3);
    TORCH_CHECK(x.scalar_type() == at::kFloat && u.scalar_type() == at::kFloat, "winograd: the fused conv takes float32");
    TORCH_CHECK(u.size(0) == s * s && u.size(2) == x.size(1), "winograd: U must be [", s * s, ", K, ", x.size(1), "]");
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

}  // namespace

namespace {

// The fused F(4x4, 3x3) conv with its layer's epilogue, and with the toRGB layer that reads it if rgb is given.
torch::Tensor fused_f43(const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale,
                        int64_t band, const c10::optional<torch::Tensor>& out_scale,
                        const c10::optional<torch::Tensor>& bias, const c10::optional<torch::Tensor>& noise,
                        double noise_gain, double alpha, double clamp, const FusedRgb* rgb) {
    const torch::Tensor sc = scale.has_value() ? *scale : torch::Tensor();
    check_fused(x, u, sc, TILE_IN, band);
    const Tiling si = tiling(x.size(0), x.size(1), x.size(2), x.size(3));
    const Tiling so = tiling(x.size(0), u.size(1), x.size(2), x.size(3));
    const FusedEpilogue epi = fused_epilogue(so, out_scale, bias, noise, noise_gain, alpha, clamp);
    const bool finish = out_scale || bias || noise || alpha != 1.0 || clamp >= 0;
    return fused_conv<TILE_IN, TILE_IN, TILE_OUT>(x, u, sc, finish ? &epi : nullptr, rgb, si, so, band,
                                                  [](const auto& d, auto& t) { wino::input_tile(d, t); },
                                                  [](const auto& t, auto& y) { wino::output_tile(t, y); });
}

}  // namespace

// conv2d(x * scale[:, :, None, None], g, padding=1) from U = winograd_weight(g): [36, K, C]; x: [N, C, H, W]
// float32, scale: [N, C] or None → [N, K, H, W], then layer_epilogue.h's `finish` (with out_scale, bias,
// noise, noise_gain, alpha, clamp) where any of it does something. No gradients.
torch::Tensor winograd_conv(const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale,
                            int64_t band, const c10::optional<torch::Tensor>& out_scale,
                            const c10::optional<torch::Tensor>& bias, const c10::optional<torch::Tensor>& noise,
                            double noise_gain, double alpha, double clamp) {
    return fused_f43(x, u, scale, band, out_scale, bias, noise, noise_gain, alpha, clamp, nullptr);
}

// winograd_conv, and the toRGB layer reading its output y in the same pass: rgb = clamp(rgb_weight · y +
// rgb_bias, ±rgb_clamp) + skip (to_rgb.py's to_rgb, then the skip image added); rgb_weight [N, O, K],
// rgb_bias [O] or None, skip [N, O, H, W] or None, rgb_clamp < 0: none. Returns (y, or None unless keep_y; rgb).
std::tuple<c10::optional<torch::Tensor>, torch::Tensor> winograd_conv_rgb(
        const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale, int64_t band,
        const c10::optional<torch::Tensor>& out_scale, const c10::optional<torch::Tensor>& bias,
        const c10::optional<torch::Tensor>& noise, double noise_gain, double alpha, double clamp,
        const torch::Tensor& rgb_weight, const c10::optional<torch::Tensor>& rgb_bias,
        const c10::optional<torch::Tensor>& skip, double rgb_clamp, bool keep_y) {
    const int64_t n = x.size(0), k = u.size(1), h = x.size(2), w = x.size(3);
    TORCH_CHECK(rgb_weight.dim() == 3, "winograd: rgb_weight must be [N, O, K]");
    const int64_t outs = rgb_weight.size(1);
    const float* wp = checked_f32(rgb_weight, "rgb_weight", {n, outs, k});
    torch::Tensor out = torch::empty({n, outs, h, w}, x.options());
    const Tiling rt = tiling(n, outs, h, w);
    const FusedRgb rgb{wp, checked_f32(rgb_bias, "rgb_bias", {outs}), checked_f32(skip, "skip", {n, outs, h, w}),
                       out.data_ptr<float>(), rt, origins(rt, TILE_OUT, 0), epi::params<float>(0.0, 1.0, rgb_clamp),
                       keep_y};
    torch::Tensor y = fused_f43(x, u, scale, band, out_scale, bias, noise, noise_gain, alpha, clamp, &rgb);
    return {keep_y ? c10::optional<torch::Tensor>(y) : c10::nullopt, out};
}

// conv_transpose2d(x * scale[:, :, None, None], w_t, stride=2) from U = winograd_up_weight(g): [81, K, C]
// → [N, K, 2H + 1, 2W + 1], zero where no window reaches (winograd.h). No gradients.
torch::Tensor winograd_up_conv(const torch::Tensor& x, const torch::Tensor& u, const c10::optional<torch::Tensor>& scale,
                               int64_t band) {
    const torch::Tensor sc = scale.has_value() ? *scale : torch::Tensor();
    check_fused(x, u, sc, wino::UP_VALUES, band);
    const Tiling si = up_input_tiling(x.size(0), x.size(1), x.size(2), x.size(3));
    const Tiling so = up_output_tiling(x.size(0), u.size(1), x.size(2), x.size(3));
    return fused_conv<wino::UP_WINDOW, wino::UP_VALUES, wino::UP_TILE_OUT>(
        x, u, sc, nullptr, nullptr, si, so, band, [](const auto& d, auto& t) { wino::up_input_tile(d, t); },
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
    m.def("input", &sa::winograd_input, "x [N, C, H, W], scale [N, C] or None -> V [36, C, P] of x * scale "
          "(Winograd F(4x4, 3x3) input tiles)", py::arg("x"), py::arg("scale") = py::none());
    m.def("input_adjoint", &sa::winograd_input_adjoint, "dV [36, C, P], N, H, W -> dx [N, C, H, W]");
    m.def("output", &sa::winograd_output, "M [36, K, P], N, H, W -> y [N, K, H, W]");
    m.def("output_adjoint", &sa::winograd_output_adjoint, "dy [N, K, H, W] -> dM [36, K, P]");
    m.def("weight", &sa::winograd_weight, "g [K, C, 3, 3] -> U [36, K, C] (Winograd F(4x4, 3x3) filter tiles)");
    m.def("weight_adjoint", &sa::winograd_weight_adjoint, "dU [36, K, C] -> dg [K, C, 3, 3]");
    m.def("up_input", &sa::winograd_up_input, "x [N, C, H, W], scale [N, C] or None -> V [81, C, P] of x * scale "
          "(stride-2 transposed 3x3 conv)", py::arg("x"), py::arg("scale") = py::none());
    m.def("up_output", &sa::winograd_up_output, "M [81, K, P], N, H, W -> y [N, K, 2H + 1, 2W + 1]");
    m.def("conv", &sa::winograd_conv, "x [N, C, H, W], U [36, K, C], scale [N, C] or None, band, then the epilogue's "
          "out_scale [N, K], bias [K], noise [1 or N, H, W] (each or None), noise_gain, alpha, clamp (< 0: none) -> y [N, K, H, W]");
    m.def("conv_rgb", &sa::winograd_conv_rgb, "conv's arguments, then the toRGB layer's: rgb_weight [N, O, K], "
          "rgb_bias [O] or None, skip [N, O, H, W] or None, rgb_clamp (< 0: none), keep_y -> (y or None, rgb [N, O, H, W])");
    m.def("up_conv", &sa::winograd_up_conv, "x [N, C, H, W], U [81, K, C], scale [N, C] or None, band -> y [N, K, 2H + 1, 2W + 1]");
    m.def("up_weight", &sa::winograd_up_weight, "g [K, C, 3, 3] -> U [81, K, C]");
}
