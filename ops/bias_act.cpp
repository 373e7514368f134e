// bias_act: argument checks, the CPU loop, and the Python binding.
// Built with -DSA_WITH_CUDA (together with bias_act.cu) for the CUDA extension.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "bias_act.h"

namespace sa {

#ifdef SA_WITH_CUDA
void bias_act_cuda(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& dy, const BiasActArgs& a,
                   torch::Tensor& y);
#endif

template <typename scalar_t, int ACT>
static void bias_act_cpu_loop(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& dy,
                              const BiasActArgs& a, torch::Tensor& y) {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    const scalar_t* dp = a.order ? dy.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    const acc_t alpha = a.alpha, gain = a.gain, clamp = a.clamp;
    const int order = a.order;
    // Runs of `inner` elements share one bias value, so the channel is found once per run.
    const int64_t inner = a.inner;
    at::parallel_for(0, x.numel(), 16384, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end;) {
            const int64_t run_end = std::min(end, (i / inner + 1) * inner);
            const acc_t bv = bp ? static_cast<acc_t>(bp[bias_channel(i, inner, a.channels)]) : acc_t(0);
            if (order == 0) {
                for (; i < run_end; ++i)
                    yp[i] = static_cast<scalar_t>(bias_act_element<acc_t, ACT>(static_cast<acc_t>(xp[i]), bv, acc_t(0),
                                                                                ACT, alpha, gain, clamp, 0));
            } else {
                for (; i < run_end; ++i)
                    yp[i] = static_cast<scalar_t>(bias_act_element<acc_t, ACT>(
                        static_cast<acc_t>(xp[i]), bv, static_cast<acc_t>(dp[i]), ACT, alpha, gain, clamp, order));
            }
        }
    });
}

static void bias_act_cpu(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& dy,
                         const BiasActArgs& a, torch::Tensor& y) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_cpu", [&] {
        switch (a.act) {
            case RELU: return bias_act_cpu_loop<scalar_t, RELU>(x, b, dy, a, y);
            case LRELU: return bias_act_cpu_loop<scalar_t, LRELU>(x, b, dy, a, y);
            case TANH: return bias_act_cpu_loop<scalar_t, TANH>(x, b, dy, a, y);
            case SIGMOID: return bias_act_cpu_loop<scalar_t, SIGMOID>(x, b, dy, a, y);
            case ELU: return bias_act_cpu_loop<scalar_t, ELU>(x, b, dy, a, y);
            case SELU: return bias_act_cpu_loop<scalar_t, SELU>(x, b, dy, a, y);
            case SOFTPLUS: return bias_act_cpu_loop<scalar_t, SOFTPLUS>(x, b, dy, a, y);
            case SWISH: return bias_act_cpu_loop<scalar_t, SWISH>(x, b, dy, a, y);
            default: return bias_act_cpu_loop<scalar_t, LINEAR>(x, b, dy, a, y);
        }
    });
}

// order 0: y = clamp(act(x + b) * gain); order 1 / 2: dy times the first / second derivative of y
// with respect to x. x, dy: contiguous, same shape and dtype; b: [x.size(dim)] of x's dtype, or empty.
torch::Tensor bias_act(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& dy, int64_t dim,
                       int64_t act, double alpha, double gain, double clamp, int64_t order) {
    TORCH_CHECK(x.is_contiguous(), "bias_act: x must be contiguous");
    TORCH_CHECK(order >= 0 && order <= 2, "bias_act: order must be 0, 1 or 2");
    TORCH_CHECK(act >= LINEAR && act <= SWISH, "bias_act: unknown activation code");
    BiasActArgs a;
    a.act = static_cast<int>(act), a.order = static_cast<int>(order);
    a.alpha = alpha, a.gain = gain, a.clamp = clamp;
    a.channels = 1, a.inner = std::max<int64_t>(x.numel(), 1);  // without a bias: one run
    if (b.numel()) {
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim) && b.is_contiguous(), "bias_act: b must be [x.shape[dim]]");
        TORCH_CHECK(b.scalar_type() == x.scalar_type() && b.device() == x.device(), "bias_act: b must match x");
        a.channels = x.size(dim), a.inner = 1;
        for (int64_t d = dim + 1; d < x.dim(); ++d) a.inner *= x.size(d);
    }
    if (order) {
        TORCH_CHECK(dy.sizes() == x.sizes() && dy.is_contiguous() && dy.scalar_type() == x.scalar_type() &&
                        dy.device() == x.device(),
                    "bias_act: dy must be contiguous and match x");
    }
    torch::Tensor y = torch::empty_like(x);
    if (y.numel() == 0) return y;
    if (x.is_cuda()) {
#ifdef SA_WITH_CUDA
        bias_act_cuda(x, b, dy, a, y);
        return y;
#else
        TORCH_CHECK(false, "bias_act: this build has no CUDA support");
#endif
    }
    TORCH_CHECK(x.is_cpu(), "bias_act: unsupported device");
    bias_act_cpu(x, b, dy, a, y);
    return y;
}

}  // namespace sa

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &sa::bias_act, "bias, activation, gain, clamp, and their derivatives");
}
