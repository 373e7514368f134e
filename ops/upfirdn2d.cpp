// upfirdn2d: argument checks, the CPU loop over output rows, and the Python binding.
// Built with -DSA_WITH_CUDA (together with upfirdn2d.cu) for the CUDA extension.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "upfirdn2d.h"

namespace sa {

#ifdef SA_WITH_CUDA
void upfirdn2d_cuda(const torch::Tensor& x, const torch::Tensor& f, const Upfirdn2dParams& p, double gain,
                    torch::Tensor& y);
#endif

// The taps in the orientation they are applied in (flip = true from then on), in a local array: the
// compiler then knows the output rows cannot overwrite them, and vectorises.
template <typename acc_t, int FH, int FW>
struct OrientedTaps {
    acc_t t[FH * FW];
    OrientedTaps(const acc_t* f, bool flip) {
        for (int ty = 0; ty < FH; ++ty)
            for (int tx = 0; tx < FW; ++tx) t[ty * FW + tx] = f[(flip ? ty : FH - 1 - ty) * FW + (flip ? tx : FW - 1 - tx)];
    }
};

// Runs row_fn(yr, n, c, oy) for every output row, rows in parallel.
template <typename scalar_t, typename RowFn>
static void for_each_row(torch::Tensor& y, const Upfirdn2dParams& p, RowFn row_fn) {
    scalar_t* yp = y.data_ptr<scalar_t>();
    const int64_t rows = y.size(0) * p.channels * p.out_h;
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / p.out_w), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
            row_fn(yp + r * p.out_w, r / (p.out_h * p.channels), (r / p.out_h) % p.channels, r % p.out_h);
    });
}

template <typename scalar_t, int FH, int FW>
static void upfirdn2d_cpu_loop(const torch::Tensor& x, const torch::Tensor& f, const Upfirdn2dParams& p, double gain,
                               torch::Tensor& y) {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const acc_t* fp = f.data_ptr<acc_t>();
    const acc_t g = static_cast<acc_t>(gain);
    // Outputs ox in [lo, hi) of a row have their whole window inside the input (no upsampling,
    // unit stride): those run as one vectorisable stretch of upfirdn2d_window, the rest per element.
    const bool stretch = FH > 0 && FW > 0 && p.upx == 1 && p.upy == 1 && p.sx_w == 1;
    const int64_t lo = stretch ? std::max<int64_t>(std::min(ceil_div(p.px0, p.downx), p.out_w), 0) : p.out_w;
    const int64_t hi = stretch ? std::max(std::min(floor_div(p.in_w - FW + p.px0, p.downx) + 1, p.out_w), lo) : lo;
    const OrientedTaps<acc_t, (FH > 0 ? FH : 1), (FW > 0 ? FW : 1)> taps(fp, stretch ? p.flip : true);
    for_each_row<scalar_t>(y, p, [&](scalar_t* yr, int64_t n, int64_t c, int64_t oy) {
        const int64_t iy0 = oy * p.downy - p.py0;
        const bool rows_inside = stretch && iy0 >= 0 && iy0 + FH <= p.in_h;
        const int64_t a = rows_inside ? lo : p.out_w, b = rows_inside ? hi : p.out_w;
        for (int64_t ox = 0; ox < a; ++ox)
            yr[ox] = static_cast<scalar_t>(upfirdn2d_element<scalar_t, acc_t, FH, FW>(xp, fp, p, g, n, c, oy, ox));
        if (a < b) {
            const scalar_t* __restrict__ x0 = xp + n * p.sx_n + c * p.sx_c + iy0 * p.sx_h - p.px0;
            scalar_t* __restrict__ yo = yr;
            const acc_t* t = taps.t;
            if (p.downx == 1) {
                for (int64_t ox = a; ox < b; ++ox)
                    yo[ox] = static_cast<scalar_t>(
                        upfirdn2d_window<scalar_t, acc_t, FH, FW, 1>(x0 + ox, p.sx_h, 1, t, true, 0, 0) * g);
            } else {
                for (int64_t ox = a; ox < b; ++ox)
                    yo[ox] = static_cast<scalar_t>(
                        upfirdn2d_window<scalar_t, acc_t, FH, FW, 1>(x0 + ox * p.downx, p.sx_h, 1, t, true, 0, 0) * g);
            }
        }
        for (int64_t ox = b; ox < p.out_w; ++ox)
            yr[ox] = static_cast<scalar_t>(upfirdn2d_element<scalar_t, acc_t, FH, FW>(xp, fp, p, g, n, c, oy, ox));
    });
}

// 2x upsampling (down 1, unit column stride), as in the gradient of a 2x downsampling: outputs whose
// window lies inside the input skip the element code's general index arithmetic. With an even
// filter size every window row meets exactly FH / 2 input rows, so only the ends need checking.
template <typename scalar_t, int FH, int FW>
static void upfirdn2d_cpu_up2_loop(const torch::Tensor& x, const torch::Tensor& f, const Upfirdn2dParams& p,
                                   double gain, torch::Tensor& y) {
    static_assert(FH % 2 == 0 && FW % 2 == 0, "even filter sizes only");
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const acc_t* fp = f.data_ptr<acc_t>();
    const acc_t g = static_cast<acc_t>(gain);
    const OrientedTaps<acc_t, FH, FW> taps(fp, p.flip);
    for_each_row<scalar_t>(y, p, [&](scalar_t* yr, int64_t n, int64_t c, int64_t oy) {
        const int64_t my = oy - p.py0, iy0 = ceil_div(my, 2);
        const bool rows_inside = iy0 >= 0 && iy0 + FH / 2 <= p.in_h;
        const scalar_t* xrow = xp + n * p.sx_n + c * p.sx_c + iy0 * p.sx_h;
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
            const int64_t mx = ox - p.px0, ix0 = ceil_div(mx, 2);
            if (rows_inside && ix0 >= 0 && ix0 + FW / 2 <= p.in_w)
                yr[ox] = static_cast<scalar_t>(upfirdn2d_window<scalar_t, acc_t, FH, FW, 2>(
                    xrow + ix0, p.sx_h, 1, taps.t, true, iy0 * 2 - my, ix0 * 2 - mx) * g);
            else
                yr[ox] = static_cast<scalar_t>(upfirdn2d_element<scalar_t, acc_t, FH, FW>(xp, fp, p, g, n, c, oy, ox));
        }
    });
}

static void upfirdn2d_cpu(const torch::Tensor& x, const torch::Tensor& f, const Upfirdn2dParams& p, double gain,
                          torch::Tensor& y) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cpu", [&] {
        if (p.fh == 4 && p.fw == 4 && p.upx == 2 && p.upy == 2 && p.downx == 1 && p.downy == 1 && p.sx_w == 1)
            upfirdn2d_cpu_up2_loop<scalar_t, 4, 4>(x, f, p, gain, y);
        else if (p.fh == 4 && p.fw == 4)  // StyleGAN2's [1, 3, 3, 1] filter
            upfirdn2d_cpu_loop<scalar_t, 4, 4>(x, f, p, gain, y);
        else
            upfirdn2d_cpu_loop<scalar_t, 0, 0>(x, f, p, gain, y);
    });
}

// x: [N, C, H, W] (any strides); f: [fh, fw] contiguous, float32 for half/float x, float64 for double x.
torch::Tensor upfirdn2d(const torch::Tensor& x, const torch::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                        int64_t downy, int64_t px0, int64_t px1, int64_t py0, int64_t py1, bool flip, double gain) {
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be [N, C, H, W]");
    TORCH_CHECK(f.dim() == 2 && f.is_contiguous(), "upfirdn2d: f must be a contiguous 2-D filter");
    TORCH_CHECK(f.device() == x.device(), "upfirdn2d: f and x must be on the same device");
    TORCH_CHECK(f.scalar_type() == (x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat),
                "upfirdn2d: f must be float64 for float64 x and float32 otherwise");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up/down must be >= 1");
    Upfirdn2dParams p;
    p.channels = x.size(1);
    p.in_h = x.size(2);
    p.in_w = x.size(3);
    p.fh = f.size(0);
    p.fw = f.size(1);
    p.upx = upx, p.upy = upy, p.downx = downx, p.downy = downy;
    p.px0 = px0, p.py0 = py0;
    p.flip = flip;
    p.out_h = (p.in_h * upy + py0 + py1 - p.fh) / downy + 1;
    p.out_w = (p.in_w * upx + px0 + px1 - p.fw) / downx + 1;
    TORCH_CHECK(p.in_h * upy + py0 + py1 - p.fh >= 0 && p.in_w * upx + px0 + px1 - p.fw >= 0,
                "upfirdn2d: output would be empty");
    p.sx_n = x.stride(0), p.sx_c = x.stride(1), p.sx_h = x.stride(2), p.sx_w = x.stride(3);
    torch::Tensor y = torch::empty({x.size(0), p.channels, p.out_h, p.out_w}, x.options());
    if (y.numel() == 0) return y;
    if (x.is_cuda()) {
#ifdef SA_WITH_CUDA
        upfirdn2d_cuda(x, f, p, gain, y);
        return y;
#else
        TORCH_CHECK(false, "upfirdn2d: this build has no CUDA support");
#endif
    }
    TORCH_CHECK(x.is_cpu(), "upfirdn2d: unsupported device");
    upfirdn2d_cpu(x, f, p, gain, y);
    return y;
}

}  // namespace sa

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("upfirdn2d", &sa::upfirdn2d, "upsample, pad, FIR filter, downsample (NCHW)");
}
