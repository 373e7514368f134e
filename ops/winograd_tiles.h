// Winograd tile I/O on the CPU: tilings of an image into windows, the tiles' window origins, and moving
// blocks of LANES tiles between an image, a [S*S, C, P] tile tensor and registers. One part of the
// winograd extension's single translation unit (winograd.cpp includes it); not a stand-alone header.
//
// Lane order here: lane l of a block holds the block's tile l (`in_order`; a short block repeats its
// last tile). The tiles of one channel are contiguous in the tile tensors, so their values move as whole
// vectors, and only the image side is gathered (tile origins are computed once per call). The fused
// conv's full blocks use another order, defined with PERM in winograd_fused.h.
#pragma once
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
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
// 4 pixels; only the up-conv's output, which is written, steps 8. A band (`band`) takes the rows
// ty0 .. ty0 + th - 1 of the th_all rows of windows of every image: a large image's tiles can then be
// transformed and multiplied a few rows at a time, in buffers a fraction of the image's size.
constexpr int64_t READ_STEP = TILE_OUT;
static_assert(wino::UP_STEP == READ_STEP, "the up-conv's input windows are read like F(4x4, 3x3)'s");
struct Tiling {
    int64_t n, c, h, w, th, tw, p, stride, ty0, th_all;
};

Tiling tiling(int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t th = (h + TILE_OUT - 1) / TILE_OUT, tw = (w + TILE_OUT - 1) / TILE_OUT;
    return {n, c, h, w, th, tw, n * th * tw, TILE_OUT, 0, th};
}

// Rows first_row .. first_row + rows - 1 of s's windows (rows < 0: s whole).
Tiling band(Tiling s, int64_t first_row, int64_t rows) {
    if (rows < 0) return s;
    TORCH_CHECK(first_row >= 0 && rows > 0 && first_row + rows <= s.th_all, "winograd: a band of ", rows,
                " rows of windows from row ", first_row, " does not fit the image's ", s.th_all);
    s.ty0 = first_row;
    s.th = rows;
    s.p = s.n * rows * s.tw;
    return s;
}

// The transposed conv's input x [N, C, H, W]: 5 x 5 windows, 4 pixels apart, starting one pixel
// above and left of the image, cover input rows -1 .. 4 * th (its output has 2H + 1 rows).
Tiling up_input_tiling(int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t th = (h + wino::UP_STEP - 1) / wino::UP_STEP, tw = (w + wino::UP_STEP - 1) / wino::UP_STEP;
    return {n, c, h, w, th, tw, n * th * tw, wino::UP_STEP, 0, th};
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

// Zeros the rows and columns of y [N, C, H, W] that no window of s covers (the up-conv's last ones),
// within s's band: its rows, and the rows below the windows if it is the last band.
void zero_uncovered(torch::Tensor& y, const Tiling& s) {
    const int64_t rows = s.h - s.th_all * s.stride, cols = s.w - s.tw * s.stride;
    const bool last = s.ty0 + s.th == s.th_all;
    if (rows > 0 && last) y.narrow(2, s.th_all * s.stride, rows).zero_();
    const int64_t top = s.ty0 * s.stride, bottom = last ? s.h : std::min(s.h, (s.ty0 + s.th) * s.stride);
    if (cols > 0) y.narrow(2, top, bottom - top).narrow(3, s.tw * s.stride, cols).zero_();
}

void check_cpu(const torch::Tensor& t, const char* what, int64_t dim) {
    TORCH_CHECK(t.device().is_cpu(), "winograd: ", what, " must be a CPU tensor");
    TORCH_CHECK(t.dim() == dim && t.is_contiguous(), "winograd: ", what, " must be a contiguous ", dim, "-D tensor");
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                "winograd: ", what, " must be float32 or float64");
}

// out (contiguous, like's dtype and device, of this shape, apart from like) if defined, else a new tensor:
// where an op stores a result its caller keeps between calls (an inference plan's buffers).
torch::Tensor given_or_new(const torch::Tensor& out, const std::vector<int64_t>& shape, const torch::Tensor& like) {
    if (!out.defined()) return torch::empty(shape, like.options());
    TORCH_CHECK(out.device() == like.device() && out.scalar_type() == like.scalar_type() && out.is_contiguous() &&
                out.sizes().vec() == shape, "winograd: out must be contiguous, of the input's dtype and of shape ",
                c10::IntArrayRef(shape));
    const auto* o = static_cast<const char*>(out.data_ptr());
    const auto* i = static_cast<const char*>(like.data_ptr());
    TORCH_CHECK(o + out.nbytes() <= i || i + like.nbytes() <= o, "winograd: out must not overlap the input");
    return out;
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
        const int64_t b = p / (s.th * s.tw), ty = s.ty0 + p / s.tw % s.th, tx = p % s.tw;
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

// An int64 [S*S] tensor's values, one per value of a tile (0 .. S*S - 1 if undefined); `what` names it
// in the error.
template <int S>
std::vector<int64_t> per_value(const c10::optional<torch::Tensor>& t, const char* what) {
    std::vector<int64_t> out(S * S);
    if (!t) {
        for (int a = 0; a < S * S; ++a) out[a] = a;
        return out;
    }
    const torch::Tensor i = t->to(torch::kCPU, torch::kLong).contiguous();
    TORCH_CHECK(i.dim() == 1 && i.numel() == S * S, "winograd: ", what, " must be [", S * S, "]");
    std::copy_n(i.data_ptr<int64_t>(), S * S, out.begin());
    return out;
}

// Which of a tile's S*S values each plane of a [S*S, C, P] tile tensor holds: plane p value values[p].
// Value order unless `order` (int64 [S*S], a permutation: value a in plane order[a]) says otherwise:
// the stride-2 conv's products group the planes whose filters are equal, which then lie side by side
// (winograd_op.py). The planes are then still visited in order, one stride apart: visited in value
// order they took the transforms 15 % longer (the hardware prefetcher follows a constant stride).
template <int S>
std::vector<int64_t> plane_values(const c10::optional<torch::Tensor>& order) {
    std::vector<int64_t> values = per_value<S>(c10::nullopt, "order");
    if (!order) return values;
    const std::vector<int64_t> planes = per_value<S>(order, "order");
    std::vector<bool> seen(S * S, false);
    for (int a = 0; a < S * S; ++a) {
        const int64_t q = planes[a];
        TORCH_CHECK(q >= 0 && q < S * S && !seen[q], "winograd: order must be a permutation of 0 .. ", S * S - 1);
        seen[q] = true;
        values[q] = a;
    }
    return values;
}

// Calls fn(block) for every block of every channel; channels run in parallel, the blocks of one
// channel in order (so the adjoint's overlapping windows can add up without races). READ: fn
// reads the tiles (they are copied into the buffer first); else fn writes them (copied out after).
// Plane p of `tiles` holds value values[p] of a tile (plane_values).
template <bool READ, int S, typename scalar_t, typename Fn>
void for_each_block(scalar_t* img, scalar_t* tiles, const Tiling& s, int r, int64_t shift, const int64_t* values,
                    Fn fn) {
    const std::vector<Origin> o = origins(s, r, shift);
    at::parallel_for(0, s.c, 1, [&](int64_t begin, int64_t end) {
        alignas(64) scalar_t buf[S * S * CHUNK] = {};
        for (int64_t ch = begin; ch < end; ++ch)
            for (int64_t c0 = 0; c0 < s.p; c0 += CHUNK) {
                const int64_t count = std::min<int64_t>(CHUNK, s.p - c0);
                scalar_t* rows = tiles + ch * s.p + c0;
                if (READ)
                    for (int p = 0; p < S * S; ++p) copy_row(rows + p * s.c * s.p, buf + values[p] * CHUNK, count);
                for (int64_t p0 = 0; p0 < count; p0 += LANES)
                    fn(Block<scalar_t>{img + ch * s.h * s.w, buf, CHUNK, p0,
                                       int(std::min<int64_t>(LANES, count - p0)), o.data() + c0 + p0, ch});
                if (!READ)
                    for (int p = 0; p < S * S; ++p) copy_row(buf + values[p] * CHUNK, rows + p * s.c * s.p, count);
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

// Which of a block's tiles lane l holds in the plain order (the top of this file).
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

}  // namespace
}  // namespace sa
