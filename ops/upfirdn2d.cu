// upfirdn2d on CUDA: one thread per output element, the same element code as the CPU.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/OpMathType.h>
// Only c10's CUDA headers: ATen/cuda/CUDAContext.h would pull in cuBLAS / cuSPARSE headers,
// which a minimal CUDA toolkit does not have.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "upfirdn2d.h"

namespace sa {

template <typename T, typename A>
__global__ void upfirdn2d_kernel(const T* __restrict__ x, const A* __restrict__ f, Upfirdn2dParams p, A gain,
                                 T* __restrict__ y, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ox = i % p.out_w;
        int64_t t = i / p.out_w;
        const int64_t oy = t % p.out_h;
        t /= p.out_h;
        y[i] = static_cast<T>(upfirdn2d_element<T, A>(x, f, p, gain, t / p.channels, t % p.channels, oy, ox));
    }
}

void upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, const Upfirdn2dParams& p, double gain,
                    at::Tensor& y) {
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t total = y.numel();
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65535 * 8);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "upfirdn2d_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        upfirdn2d_kernel<scalar_t, acc_t><<<(unsigned)blocks, threads, 0, stream>>>(
            x.data_ptr<scalar_t>(), f.data_ptr<acc_t>(), p, static_cast<acc_t>(gain), y.data_ptr<scalar_t>(), total);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}

}  // namespace sa
