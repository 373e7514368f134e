// Winograd F(4x4, 3x3) tile transforms on the CPU: argument checks, loops over (channel, image)
// planes, and the Python binding. The per-tile arithmetic is in winograd.h. CPU only: on CUDA
// the networks use cuDNN's convolutions, which choose their own algorithms.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "winograd.h"

namespace sa {
namespace {

using wino::TILE_IN;
using wino::TILE_OUT;

struct Tiling {
    int64_t n, c, h, w, th, tw, p;
};

Tiling tiling(int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t th = (h + TILE_OUT - 1) / TILE_OUT, tw = (w + TILE_OUT - 1) / TILE_OUT;
    return {n, c, h, w, th, tw, n * th * tw};
}

void check_cpu(const torch::Tensor& t, const char* what, int64_t dim) {
    TORCH_CHECK(t.device().is_cpu(), "winograd: ", what, " must be a CPU tensor");
    TORCH_CHECK(t.dim() == dim && t.is_contiguous(), "winograd: ", what, " must be a contiguous ", dim, "-D tensor");
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                "winograd: ", what, " must be float32 or float64");
}

// The tiling of an N x H x W image whose tiles `t` ([36, C, P]) holds, checked.
Tiling tiling_of_tiles(const torch::Tensor& t, const char* what, int64_t n, int64_t h, int64_t w) {
    check_cpu(t, what, 3);
    TORCH_CHECK(t.size(0) == 36, "winograd: ", what, " must be [36, channels, tiles]");
    const Tiling s = tiling(n, t.size(1), h, w);
    TORCH_CHECK(t.size(2) == s.p, "winograd: ", what, " has ", t.size(2), " tiles, the image needs ", s.p);
    return s;
}

// Plane (channel ch, image b) of a [N, C, H, W] tensor, and its tiles in a [36, C, P] tensor.
template <typename scalar_t>
struct Plane {
    scalar_t* img;    // [H, W]
    scalar_t* tiles;  // element (a, tile t) at tiles[a * a_stride + t]
    int64_t a_stride;
};

// Calls fn(plane, ty, tx) for every tile of every (channel, image) plane; planes run in parallel,
// the tiles of one plane in order (so the adjoint's overlapping tiles can add up without races).
template <typename scalar_t, typename Fn>
void for_each_tile(scalar_t* img, scalar_t* tiles, const Tiling& s, Fn fn) {
    at::parallel_for(0, s.c * s.n, 1, [&](int64_t begin, int64_t end) {
        for (int64_t idx = begin; idx < end; ++idx) {
            const int64_t ch = idx / s.n, b = idx % s.n;
            const Plane<scalar_t> pl{img + (b * s.c + ch) * s.h * s.w, tiles + ch * s.p + b * s.th * s.tw, s.c * s.p};
            for (int64_t ty = 0; ty < s.th; ++ty)
                for (int64_t tx = 0; tx < s.tw; ++tx) fn(pl, ty, tx);
        }
    });
}

template <typename scalar_t, typename acc_t>
void load_tile(const Plane<scalar_t>& pl, const Tiling& s, int64_t ty, int64_t tx, acc_t (&t)[6][6]) {
    const scalar_t* in = pl.tiles + ty * s.tw + tx;
    for (int a = 0; a < 36; ++a) t[a / 6][a % 6] = acc_t(in[a * pl.a_stride]);
}

template <typename scalar_t, typename acc_t>
void store_tile(const Plane<scalar_t>& pl, const Tiling& s, int64_t ty, int64_t tx, const acc_t (&t)[6][6]) {
    scalar_t* out = pl.tiles + ty * s.tw + tx;
    for (int a = 0; a < 36; ++a) out[a * pl.a_stride] = scalar_t(t[a / 6][a % 6]);
}

// The R x R image window at (y0, x0), zeros outside the image.
template <int R, typename scalar_t, typename acc_t>
void load_window(const Plane<scalar_t>& pl, const Tiling& s, int64_t y0, int64_t x0, acc_t (&d)[R][R]) {
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < R; ++j) {
            const int64_t yy = y0 + i, xx = x0 + j;
            d[i][j] = (yy >= 0 && yy < s.h && xx >= 0 && xx < s.w) ? acc_t(pl.img[yy * s.w + xx]) : acc_t(0);
        }
}

// Writes (or, with ADD, adds) the R x R window at (y0, x0), skipping what falls outside the image.
template <bool ADD, int R, typename scalar_t, typename acc_t>
void store_window(const Plane<scalar_t>& pl, const Tiling& s, int64_t y0, int64_t x0, const acc_t (&d)[R][R]) {
    for (int i = 0; i < R; ++i) {
        const int64_t yy = y0 + i;
        if (yy < 0 || yy >= s.h) continue;
        for (int j = 0; j < R; ++j) {
            const int64_t xx = x0 + j;
            if (xx < 0 || xx >= s.w) continue;
            scalar_t& dst = pl.img[yy * s.w + xx];
            dst = ADD ? scalar_t(dst + d[i][j]) : scalar_t(d[i][j]);
        }
    }
}

}  // namespace

// x: [N, C, H, W] → V: [36, C, P].
torch::Tensor winograd_input(const torch::Tensor& x) {
    check_cpu(x, "x", 4);
    const Tiling s = tiling(x.size(0), x.size(1), x.size(2), x.size(3));
    torch::Tensor v = torch::empty({TILE_IN * TILE_IN, s.c, s.p}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_input", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_tile(x.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), s, [&](const Plane<scalar_t>& pl, int64_t ty, int64_t tx) {
            acc_t d[6][6], t[6][6];
            load_window(pl, s, ty * TILE_OUT - 1, tx * TILE_OUT - 1, d);
            wino::input_tile(d, t);
            store_tile(pl, s, ty, tx, t);
        });
    });
    return v;
}

// dV: [36, C, P] → dx: [N, C, H, W], the adjoint of winograd_input (overlapping tiles add up).
torch::Tensor winograd_input_adjoint(const torch::Tensor& dv, int64_t n, int64_t h, int64_t w) {
    const Tiling s = tiling_of_tiles(dv, "dV", n, h, w);
    torch::Tensor dx = torch::zeros({n, s.c, h, w}, dv.options());
    AT_DISPATCH_FLOATING_TYPES(dv.scalar_type(), "winograd_input_adjoint", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_tile(dx.data_ptr<scalar_t>(), dv.data_ptr<scalar_t>(), s, [&](const Plane<scalar_t>& pl, int64_t ty, int64_t tx) {
            acc_t t[6][6], d[6][6];
            load_tile(pl, s, ty, tx, t);
            wino::input_tile_adjoint(t, d);
            store_window<true>(pl, s, ty * TILE_OUT - 1, tx * TILE_OUT - 1, d);
        });
    });
    return dx;
}

// M: [36, K, P] → y: [N, K, H, W].
torch::Tensor winograd_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w) {
    const Tiling s = tiling_of_tiles(m, "M", n, h, w);
    torch::Tensor y = torch::empty({n, s.c, h, w}, m.options());
    AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "winograd_output", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_tile(y.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(), s, [&](const Plane<scalar_t>& pl, int64_t ty, int64_t tx) {
            acc_t t[6][6], o[4][4];
            load_tile(pl, s, ty, tx, t);
            wino::output_tile(t, o);
            store_window<false>(pl, s, ty * TILE_OUT, tx * TILE_OUT, o);
        });
    });
    return y;
}

// dy: [N, K, H, W] → dM: [36, K, P], the adjoint of winograd_output.
torch::Tensor winograd_output_adjoint(const torch::Tensor& dy) {
    check_cpu(dy, "dy", 4);
    const Tiling s = tiling(dy.size(0), dy.size(1), dy.size(2), dy.size(3));
    torch::Tensor dm = torch::empty({TILE_IN * TILE_IN, s.c, s.p}, dy.options());
    AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "winograd_output_adjoint", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        for_each_tile(dy.data_ptr<scalar_t>(), dm.data_ptr<scalar_t>(), s, [&](const Plane<scalar_t>& pl, int64_t ty, int64_t tx) {
            acc_t o[4][4], t[6][6];
            load_window(pl, s, ty * TILE_OUT, tx * TILE_OUT, o);
            wino::output_tile_adjoint(o, t);
            store_tile(pl, s, ty, tx, t);
        });
    });
    return dm;
}

}  // namespace sa

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("input", &sa::winograd_input, "x [N, C, H, W] -> V [36, C, P] (Winograd F(4x4, 3x3) input tiles)");
    m.def("input_adjoint", &sa::winograd_input_adjoint, "dV [36, C, P], N, H, W -> dx [N, C, H, W]");
    m.def("output", &sa::winograd_output, "M [36, K, P], N, H, W -> y [N, K, H, W]");
    m.def("output_adjoint", &sa::winograd_output_adjoint, "dy [N, K, H, W] -> dM [36, K, P]");
}
