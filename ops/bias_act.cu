// bias_act on CUDA: one thread per element, the same element code as the CPU.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/OpMathType.h>
// Only c10's CUDA headers: ATen/cuda/CUDAContext.h would pull in cuBLAS / cuSPARSE headers,
// which a minimal CUDA toolkit does not have.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "bias_act.h"

namespace sa {

template <typename T, typename A>
__global__ void bias_act_kernel(const T* __restrict__ x, const T* __restrict__ b, const T* __restrict__ dy,
                                BiasActArgs a, T* __restrict__ y, int64_t total) {
    const A alpha = a.alpha, gain = a.gain, clamp = a.clamp;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const A bv = b ? static_cast<A>(b[bias_channel(i, a.inner, a.channels)]) : A(0);
        const A dv = dy ? static_cast<A>(dy[i]) : A(0);
        y[i] = static_cast<T>(bias_act_element<A>(static_cast<A>(x[i]), bv, dv, a.act, alpha, gain, clamp, a.order));
    }
}

void bias_act_cuda(const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy, const BiasActArgs& a,
                   at::Tensor& y) {
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t total = x.numel();
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65535 * 8);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "bias_act_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        bias_act_kernel<scalar_t, acc_t><<<(unsigned)blocks, threads, 0, stream>>>(
            x.data_ptr<scalar_t>(), b.numel() ? b.data_ptr<scalar_t>() : nullptr,
            a.order ? dy.data_ptr<scalar_t>() : nullptr, a, y.data_ptr<scalar_t>(), total);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}

}  // namespace sa
