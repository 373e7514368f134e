// The end of a synthesis layer on the CPU in one pass over memory: a separable FIR filter (the
// blur after an upsampling conv; none after a stride-1 conv), a per-(sample, channel) scale
// (demodulation), a per-channel bias, per-pixel noise, leaky ReLU and a clamp. The reference is
// stylegan_anime/ops/layer_epilogue.py (layer_epilogue_ref). CPU only and inference only: on CUDA, and
// wherever gradients are needed, the layers run torch's ops.
//
// Why a native op: torch runs the 4x4 blur as a depthwise conv at 5-10 GMAC/s, and then four more
// passes (scale, noise, activation, clamp) over activations that do not fit in cache (64 x 512^2
// floats). Here a plane is read once and written once; each input row is filtered horizontally
// once into a ring of filtered rows, which stay in L1 for the vertical taps and the epilogue.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "layer_epilogue.h"

namespace sa {
namespace {

using simd::LANES;
constexpr int64_t MAX_TAPS = 16;  // per axis; stylegan_anime/ops/layer_epilogue.py's MAX_TAPS

struct Shape {
    int64_t n, c, h, w, ho, wo, kh, kw, pad, noise_n;
};

template <typename T>
using Vec = simd::Lanes<T>;

// The values of one plane that the epilogue adds: its scale and bias, and its noise row.
template <typename T>
struct PlaneArgs {
    T scale, bias;
    const T* noise;  // the plane's [Ho, Wo] noise, or nullptr
};

// The whole vectors of taps_and_finish with NROWS rows known at compile time: the loops over the
// taps unroll and the taps stay in registers (at run time, the tap loop's overhead and broadcasts
// made the 4-tap blur twice as slow as the memory it reads).
template <int NROWS, typename T>
void taps_and_finish_fixed(const T* const* rows, const T* taps, T* out, int64_t whole, const epi::Params<T>& p,
                           const Vec<T>& vs, const Vec<T>& vb, const T* noise) {
    Vec<T> tap[NROWS];
    const T* row[NROWS];
    for (int k = 0; k < NROWS; ++k) tap[k] = Vec<T>(taps[k]), row[k] = rows[k];
    for (int64_t j = 0; j < whole; j += LANES) {
        Vec<T> acc = tap[0] * Vec<T>::load(row[0] + j);
        for (int k = 1; k < NROWS; ++k) acc = simd::fma(tap[k], Vec<T>::load(row[k] + j), acc);
        const Vec<T> nz = noise != nullptr ? Vec<T>::load(noise + j) : Vec<T>(T(0));
        epi::finish(acc, p, vs, vb, nz).store(out + j);
    }
}

// out[j] = finish(sum_k taps[k] * rows[k][j]) for j < count, LANES at a time; the last, partial
// block goes through buffers, so nothing is read or written at or past `count`.
template <typename T>
void taps_and_finish(const T* const* rows, const T* taps, int64_t nrows, T* out, int64_t count,
                     const epi::Params<T>& p, T scale, T bias, const T* noise) {
    const Vec<T> vs(scale), vb(bias);
    const int64_t whole = count / LANES * LANES;
    if (nrows == 4) {
        taps_and_finish_fixed<4>(rows, taps, out, whole, p, vs, vb, noise);
    } else if (nrows == 1) {
        taps_and_finish_fixed<1>(rows, taps, out, whole, p, vs, vb, noise);
    } else {
        for (int64_t j = 0; j < whole; j += LANES) {
            Vec<T> acc(T(0));
            for (int64_t k = 0; k < nrows; ++k) acc = acc + Vec<T>(taps[k]) * Vec<T>::load(rows[k] + j);
            const Vec<T> nz = noise != nullptr ? Vec<T>::load(noise + j) : Vec<T>(T(0));
            epi::finish(acc, p, vs, vb, nz).store(out + j);
        }
    }
    if (whole == count) return;
    T in[LANES], nz[LANES] = {};
    Vec<T> acc(T(0));
    for (int64_t k = 0; k < nrows; ++k) {
        std::fill(in, in + LANES, T(0));
        std::copy(rows[k] + whole, rows[k] + count, in);
        acc = acc + Vec<T>(taps[k]) * Vec<T>::load(in);
    }
    if (noise != nullptr) std::copy(noise + whole, noise + count, nz);
    epi::finish(acc, p, vs, vb, Vec<T>::load(nz)).store(in);
    std::copy(in, in + (count - whole), out + whole);
}

// filter_row's taps with KW known at compile time (as in taps_and_finish_fixed).
template <int KW, typename T>
void filter_row_fixed(const T* padded, T* dst, const T* tw, int64_t wo) {
    Vec<T> tap[KW];
    for (int b = 0; b < KW; ++b) tap[b] = Vec<T>(tw[b]);
    for (int64_t j = 0; j < wo; j += LANES) {
        Vec<T> acc = tap[0] * Vec<T>::load(padded + j);
        for (int b = 1; b < KW; ++b) acc = simd::fma(tap[b], Vec<T>::load(padded + j + b), acc);
        acc.store(dst + j);
    }
}

// Input row `row` zero padded by s.pad on both sides (into `padded`, which has LANES spare zeros
// at the end) and filtered with the horizontal taps: dst[j] = sum_b tw[b] * row[j + b - pad].
template <typename T>
void filter_row(const T* row, T* padded, T* dst, const T* tw, const Shape& s) {
    for (int64_t j = 0; j < s.w; ++j) padded[s.pad + j] = row[j];
    if (s.kw == 4) return filter_row_fixed<4>(padded, dst, tw, s.wo);
    for (int64_t j = 0; j < s.wo; j += LANES) {
        Vec<T> acc(T(0));
        for (int64_t b = 0; b < s.kw; ++b) acc = acc + Vec<T>(tw[b]) * Vec<T>::load(padded + j + b);
        acc.store(dst + j);
    }
}

// Row lengths in the plane buffer: padded input rows and filtered rows, rounded up to whole vectors.
int64_t padded_len(const Shape& s) { return s.w + 2 * s.pad + 2 * LANES; }
int64_t ring_len(const Shape& s) { return (s.wo + LANES - 1) / LANES * LANES; }

// Rows are read this many rows ahead of their use: the planes are read a row at a time, with
// filtering in between, which the hardware prefetcher alone does not keep up with.
constexpr int64_t PREFETCH_ROWS = 4;

// One [H, W] plane through the FIR filter and the epilogue into [Ho, Wo]. `buf` holds a padded
// input row and a ring of kh filtered rows, indexed by input row mod kh, so that each input row
// is filtered once and stays in L1 for the kh output rows that need it.
template <typename T>
void filter_plane(const T* x, T* y, const Shape& s, const T* th, const T* tw, const epi::Params<T>& p,
                  const PlaneArgs<T>& a, std::vector<T>& buf) {
    T* padded = buf.data();
    T* ring = padded + padded_len(s);
    std::fill(padded, ring, T(0));
    const T* rows[MAX_TAPS];
    int64_t next_row = 0;  // the next input row to filter into the ring
    for (int64_t i = 0; i < s.ho; ++i) {
        const int64_t r0 = i - s.pad, r1 = std::min(r0 + s.kh, s.h);  // input rows [r0, r1) meet the taps
        for (next_row = std::max(next_row, r0); next_row < r1; ++next_row) {
            if (next_row + PREFETCH_ROWS < s.h) simd::prefetch(x + (next_row + PREFETCH_ROWS) * s.w, s.w);
            filter_row(x + next_row * s.w, padded, ring + (next_row % s.kh) * ring_len(s), tw, s);
        }
        const int64_t first = std::max<int64_t>(r0, 0);
        for (int64_t r = first; r < r1; ++r) rows[r - first] = ring + (r % s.kh) * ring_len(s);
        taps_and_finish(rows, th + (first - r0), std::max<int64_t>(r1 - first, 0), y + i * s.wo, s.wo, p, a.scale,
                        a.bias, a.noise == nullptr ? nullptr : a.noise + i * s.wo);
    }
}

template <typename T>
void run(const torch::Tensor& x, torch::Tensor& y, const Shape& s, const torch::Tensor& th, const torch::Tensor& tw,
         const torch::Tensor& scale, const torch::Tensor& bias, const torch::Tensor& noise, double noise_gain,
         double alpha, double clamp) {
    const epi::Params<T> p = epi::params<T>(noise_gain, alpha, clamp);
    const T* xp = x.data_ptr<T>();
    T* yp = y.data_ptr<T>();
    const T* thp = th.data_ptr<T>();
    const T* twp = tw.data_ptr<T>();
    const T* sp = scale.numel() ? scale.data_ptr<T>() : nullptr;
    const T* bp = bias.numel() ? bias.data_ptr<T>() : nullptr;
    const T* np = noise.numel() ? noise.data_ptr<T>() : nullptr;
    const bool unfiltered = s.kh == 1 && s.kw == 1 && s.pad == 0;
    at::parallel_for(0, s.n * s.c, 1, [&](int64_t begin, int64_t end) {
        std::vector<T> buf(unfiltered ? 0 : padded_len(s) + s.kh * ring_len(s));
        for (int64_t plane = begin; plane < end; ++plane) {
            const int64_t n = plane / s.c, c = plane % s.c;
            const PlaneArgs<T> a{sp ? sp[plane] : T(1), bp ? bp[c] : T(0),
                                 np ? np + (s.noise_n == 1 ? 0 : n) * s.ho * s.wo : nullptr};
            const T* src = xp + plane * s.h * s.w;
            T* dst = yp + plane * s.ho * s.wo;
            if (unfiltered) {  // the rows as they are, in place if out is x
                const T tap = thp[0] * twp[0];
                taps_and_finish(&src, &tap, 1, dst, s.h * s.w, p, a.scale, a.bias, a.noise);
            } else {
                filter_plane(src, dst, s, thp, twp, p, a, buf);
            }
        }
    });
}

void check(const torch::Tensor& t, const torch::Tensor& x, const char* what, int64_t dim) {
    TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() && t.scalar_type() == x.scalar_type(), "layer_epilogue: ", what,
                " must be a contiguous CPU tensor of x's dtype");
    TORCH_CHECK(t.numel() == 0 || t.dim() == dim, "layer_epilogue: ", what, " must be ", dim, "-D or empty");
}

}  // namespace

// x: [N, C, H, W]; th: [kh], tw: [kw] (correlation taps); pad >= 0 on every side; scale: [N, C] or
// empty; bias: [C] or empty; noise: [1 or N, Ho, Wo] or empty, times noise_gain; clamp < 0: none.
// out: [N, C, Ho, Wo] with Ho = H + 2 pad - kh + 1 (Wo likewise); it may be x itself when there is no
// filter (kh = kw = 1, pad = 0).
torch::Tensor layer_epilogue(torch::Tensor x, torch::Tensor th, torch::Tensor tw, int64_t pad, torch::Tensor scale,
                             torch::Tensor bias, torch::Tensor noise, double noise_gain, double alpha, double clamp,
                             torch::Tensor out) {
    TORCH_CHECK(x.device().is_cpu() && x.dim() == 4 && x.is_contiguous(),
                "layer_epilogue: x must be a contiguous [N, C, H, W] CPU tensor");
    TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                "layer_epilogue: x must be float32 or float64");
    check(th, x, "th", 1);
    check(tw, x, "tw", 1);
    TORCH_CHECK(th.numel() >= 1 && th.numel() <= MAX_TAPS && tw.numel() >= 1 && tw.numel() <= MAX_TAPS && pad >= 0,
                "layer_epilogue: taps must number 1 to ", MAX_TAPS, ", pad >= 0");
    Shape s{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, th.numel(), tw.numel(), pad, 1};
    s.ho = s.h + 2 * pad - s.kh + 1;
    s.wo = s.w + 2 * pad - s.kw + 1;
    TORCH_CHECK(s.ho > 0 && s.wo > 0, "layer_epilogue: the filter is larger than the padded input");
    check(scale, x, "scale", 2);
    check(bias, x, "bias", 1);
    check(noise, x, "noise", 3);
    TORCH_CHECK(scale.numel() == 0 || (scale.size(0) == s.n && scale.size(1) == s.c), "layer_epilogue: scale must be [N, C]");
    TORCH_CHECK(bias.numel() == 0 || bias.size(0) == s.c, "layer_epilogue: bias must be [C]");
    if (noise.numel()) {
        s.noise_n = noise.size(0);
        TORCH_CHECK((s.noise_n == 1 || s.noise_n == s.n) && noise.size(1) == s.ho && noise.size(2) == s.wo,
                    "layer_epilogue: noise must be [1 or N, Ho, Wo]");
    }
    check(out, x, "out", 4);
    TORCH_CHECK(out.sizes() == torch::IntArrayRef({s.n, s.c, s.ho, s.wo}), "layer_epilogue: out must be [N, C, Ho, Wo]");
    const bool unfiltered = s.kh == 1 && s.kw == 1 && s.pad == 0;
    TORCH_CHECK(unfiltered || out.data_ptr() != x.data_ptr(), "layer_epilogue: out may alias x only without a filter");
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_epilogue", [&] {
        run<scalar_t>(x, out, s, th, tw, scale, bias, noise, noise_gain, alpha, clamp);
    });
    return out;
}

}  // namespace sa

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("layer_epilogue", &sa::layer_epilogue,
          "separable FIR filter, scale, bias, noise, leaky ReLU and clamp in one pass (NCHW, CPU)");
}
