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

// Plane (channel ch, image b) of a [N, C, H, W] tensor and of a [36, C, P] tile tensor.
template <typename scalar_t>
struct Planes {
    scalar_t* img;    // [H, W]
    scalar_t* tiles;  // element (a, tile t) at tiles[a * a_stride + t]
    int64_t a_stride;
};

template <typename scalar_t>
Planes<scalar_t> planes(scalar_t* img, scalar_t* tiles, const Tiling& s, int64_t idx) {
    const int64_t ch = idx / s.n, b = idx % s.n;
    return {img + (b * s.c + ch) * s.h * s.w, tiles + ch * s.p + b * s.th * s.tw, s.c * s.p};
}

}  // namespace

// x: [N, C, H, W] → V: [36, C, P].
torch::Tensor winograd_input(const torch::Tensor& x) {
    check_cpu(x, "x", 4);
    const Tiling s = tiling(x.size(0), x.size(1), x.size(2), x.size(3));
    torch::Tensor v = torch::empty({TILE_IN * TILE_IN, s.c, s.p}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_input", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        scalar_t* xp = x.data_ptr<scalar_t>();
        scalar_t* vp = v.data_ptr<scalar_t>();
        at::parallel_for(0, s.c * s.n, 1, [&](int64_t begin, int64_t end) {
            for (int64_t idx = begin; idx < end; ++idx) {
                const Planes<scalar_t> pl = planes(xp, vp, s, idx);
                for (int64_t ty = 0; ty < s.th; ++ty)
                    for (int64_t tx = 0; tx < s.tw; ++tx) {
                        acc_t d[6][6], t[6][6];
                        for (int i = 0; i < 6; ++i) {
                            const int64_t yy = ty * TILE_OUT - 1 + i;
                            for (int j = 0; j < 6; ++j) {
                                const int64_t xx = tx * TILE_OUT - 1 + j;
                                d[i][j] = (yy >= 0 && yy < s.h && xx >= 0 && xx < s.w) ? acc_t(pl.img[yy * s.w + xx]) : acc_t(0);
                            }
                        }
                        wino::input_tile(d, t);
                        scalar_t* out = pl.tiles + ty * s.tw + tx;
                        for (int a = 0; a < 36; ++a) out[a * pl.a_stride] = scalar_t(t[a / 6][a % 6]);
                    }
            }
        });
    });
    return v;
}

// dV: [36, C, P] → dx: [N, C, H, W], the adjoint of winograd_input (overlapping tiles add up).
torch::Tensor winograd_input_adjoint(const torch::Tensor& dv, int64_t n, int64_t h, int64_t w) {
    check_cpu(dv, "dV", 3);
    TORCH_CHECK(dv.size(0) == 36, "winograd: dV must be [36, C, P]");
    const Tiling s = tiling(n, dv.size(1), h, w);
    TORCH_CHECK(dv.size(2) == s.p, "winograd: dV has ", dv.size(2), " tiles, the image needs ", s.p);
    torch::Tensor dx = torch::zeros({n, s.c, h, w}, dv.options());
    AT_DISPATCH_FLOATING_TYPES(dv.scalar_type(), "winograd_input_adjoint", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        scalar_t* dxp = dx.data_ptr<scalar_t>();
        scalar_t* dvp = dv.data_ptr<scalar_t>();
        at::parallel_for(0, s.c * s.n, 1, [&](int64_t begin, int64_t end) {
            for (int64_t idx = begin; idx < end; ++idx) {
                const Planes<scalar_t> pl = planes(dxp, dvp, s, idx);
                for (int64_t ty = 0; ty < s.th; ++ty)
                    for (int64_t tx = 0; tx < s.tw; ++tx) {
                        acc_t t[6][6], d[6][6];
                        const scalar_t* in = pl.tiles + ty * s.tw + tx;
                        for (int a = 0; a < 36; ++a) t[a / 6][a % 6] = acc_t(in[a * pl.a_stride]);
                        wino::input_tile_adjoint(t, d);
                        for (int i = 0; i < 6; ++i) {
                            const int64_t yy = ty * TILE_OUT - 1 + i;
                            if (yy < 0 || yy >= s.h) continue;
                            for (int j = 0; j < 6; ++j) {
                                const int64_t xx = tx * TILE_OUT - 1 + j;
                                if (xx >= 0 && xx < s.w) pl.img[yy * s.w + xx] += scalar_t(d[i][j]);
                            }
                        }
                    }
            }
        });
    });
    return dx;
}

// M: [36, K, P] → y: [N, K, H, W].
torch::Tensor winograd_output(const torch::Tensor& m, int64_t n, int64_t h, int64_t w) {
    check_cpu(m, "M", 3);
    TORCH_CHECK(m.size(0) == 36, "winograd: M must be [36, K, P]");
    const Tiling s = tiling(n, m.size(1), h, w);
    TORCH_CHECK(m.size(2) == s.p, "winograd: M has ", m.size(2), " tiles, the image needs ", s.p);
    torch::Tensor y = torch::empty({n, s.c, h, w}, m.options());
    AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "winograd_output", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        scalar_t* yp = y.data_ptr<scalar_t>();
        scalar_t* mp = m.data_ptr<scalar_t>();
        at::parallel_for(0, s.c * s.n, 1, [&](int64_t begin, int64_t end) {
            for (int64_t idx = begin; idx < end; ++idx) {
                const Planes<scalar_t> pl = planes(yp, mp, s, idx);
                for (int64_t ty = 0; ty < s.th; ++ty)
                    for (int64_t tx = 0; tx < s.tw; ++tx) {
                        acc_t t[6][6], o[4][4];
                        const scalar_t* in = pl.tiles + ty * s.tw + tx;
                        for (int a = 0; a < 36; ++a) t[a / 6][a % 6] = acc_t(in[a * pl.a_stride]);
                        wino::output_tile(t, o);
                        for (int i = 0; i < 4; ++i) {
                            const int64_t yy = ty * TILE_OUT + i;
                            if (yy >= s.h) break;
                            for (int j = 0; j < 4; ++j) {
                                const int64_t xx = tx * TILE_OUT + j;
                                if (xx < s.w) pl.img[yy * s.w + xx] = scalar_t(o[i][j]);
                            }
                        }
                    }
            }
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
        scalar_t* dyp = dy.data_ptr<scalar_t>();
        scalar_t* dmp = dm.data_ptr<scalar_t>();
        at::parallel_for(0, s.c * s.n, 1, [&](int64_t begin, int64_t end) {
            for (int64_t idx = begin; idx < end; ++idx) {
                const Planes<scalar_t> pl = planes(dyp, dmp, s, idx);
                for (int64_t ty = 0; ty < s.th; ++ty)
                    for (int64_t tx = 0; tx < s.tw; ++tx) {
                        acc_t o[4][4], t[6][6];
                        for (int i = 0; i < 4; ++i) {
                            const int64_t yy = ty * TILE_OUT + i;
                            for (int j = 0; j < 4; ++j) {
                                const int64_t xx = tx * TILE_OUT + j;
                                o[i][j] = (yy < s.h && xx < s.w) ? acc_t(pl.img[yy * s.w + xx]) : acc_t(0);
                            }
                        }
                        wino::output_tile_adjoint(o, t);
                        scalar_t* out = pl.tiles + ty * s.tw + tx;
                        for (int a = 0; a < 36; ++a) out[a * pl.a_stride] = scalar_t(t[a / 6][a % 6]);
                    }
            }
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
