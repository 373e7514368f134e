// upfirdn2d, one output element: zero-insertion upsampling, padding (negative crops),
// FIR filtering and downsampling, computed straight from the input without temporaries.
#pragma once

#include "common.h"

namespace sa {

struct Upfirdn2dParams {
    int64_t channels, in_h, in_w, out_h, out_w;
    int64_t sx_n, sx_c, sx_h, sx_w;  // input strides in elements (any layout works)
    int64_t fh, fw;                  // 2-D taps, row-major, contiguous
    int64_t upx, upy, downx, downy;
    int64_t px0, py0;                // leading padding; the trailing padding only sets out_h / out_w
    bool flip;                       // true: correlate with the taps as stored; false: true convolution
};

// An output whose window lies wholly inside an input upsampled by UP in both directions (UP = 1:
// not upsampled): only every UP-th tap meets an input sample, so the window holds (FH / UP) x
// (FW / UP) of them, from x0 on (row / column strides sh / sw), meeting taps ty0 + i * UP and
// tx0 + j * UP. The element code below takes this path for such windows, and the CPU loops run it
// over whole stretches of a row (with sw = 1 the compiler vectorises across outputs), so both run
// the same arithmetic.
template <typename T, typename A, int FH, int FW, int UP>
SA_HD A upfirdn2d_window(const T* x0, int64_t sh, int64_t sw, const A* f, bool flip, int64_t ty0, int64_t tx0) {
    A acc = 0;
    for (int i = 0; i < FH / UP; ++i) {
        const int64_t ty = ty0 + i * UP;
        const A* frow = f + (flip ? ty : FH - 1 - ty) * FW;
        for (int j = 0; j < FW / UP; ++j) {
            const int64_t tx = tx0 + j * UP;
            acc += static_cast<A>(x0[i * sh + j * sw]) * frow[flip ? tx : FW - 1 - tx];
        }
    }
    return acc;
}

// Output element (n, c, oy, ox), accumulated in A (float for half/float, double for double).
// Tap t of the window starting at m0 = o*down - pad reads upsampled sample m0 + t, which is
// nonzero only where it is a multiple of `up`, i.e. input sample i = (m0 + t) / up: so we visit
// exactly the input samples under the window instead of the zeros between them.
// FH / FW > 0 fix the filter size at compile time (it must then equal p.fh / p.fw), which lets
// the compiler unroll the tap loops for the common 4×4 filter.
template <typename T, typename A, int FH = 0, int FW = 0>
SA_HD A upfirdn2d_element(const T* x, const A* f, const Upfirdn2dParams& p, A gain,
                          int64_t n, int64_t c, int64_t oy, int64_t ox) {
    const int64_t fh = FH > 0 ? FH : p.fh, fw = FW > 0 ? FW : p.fw;
    const int64_t my = oy * p.downy - p.py0;
    const int64_t mx = ox * p.downx - p.px0;
    const int64_t iy0 = max64(ceil_div(my, p.upy), 0);
    const int64_t iy1 = min64(floor_div(my + fh - 1, p.upy), p.in_h - 1);
    const int64_t ix0 = max64(ceil_div(mx, p.upx), 0);
    const int64_t ix1 = min64(floor_div(mx + fw - 1, p.upx), p.in_w - 1);
    const T* xp = x + n * p.sx_n + c * p.sx_c;
    A acc = 0;
    if (FH > 0 && FW > 0 && p.upx == 1 && p.upy == 1 && iy1 - iy0 + 1 == FH && ix1 - ix0 + 1 == FW) {
        // Window wholly inside a non-upsampled input: fixed trip counts, which the compiler unrolls.
        return upfirdn2d_window<T, A, FH, FW, 1>(xp + iy0 * p.sx_h + ix0 * p.sx_w, p.sx_h, p.sx_w, f, p.flip, 0, 0) * gain;
    }
    if (FH > 0 && FW > 0 && FH % 2 == 0 && FW % 2 == 0 && p.upx == 2 && p.upy == 2 && iy1 - iy0 + 1 == FH / 2 &&
        ix1 - ix0 + 1 == FW / 2) {
        // Window wholly inside a 2x upsampled input: fixed trip counts again.
        return upfirdn2d_window<T, A, (FH > 0 ? FH : 2), (FW > 0 ? FW : 2), 2>(
                   xp + iy0 * p.sx_h + ix0 * p.sx_w, p.sx_h, p.sx_w, f, p.flip, iy0 * 2 - my, ix0 * 2 - mx) * gain;
    }
    for (int64_t iy = iy0; iy <= iy1; ++iy) {
        const int64_t ty = iy * p.upy - my;
        const A* frow = f + (p.flip ? ty : fh - 1 - ty) * fw;
        const T* xrow = xp + iy * p.sx_h;
        for (int64_t ix = ix0; ix <= ix1; ++ix) {
            const int64_t tx = ix * p.upx - mx;
            acc += static_cast<A>(xrow[ix * p.sx_w]) * frow[p.flip ? tx : fw - 1 - tx];
        }
    }
    return acc * gain;
}

}  // namespace sa
