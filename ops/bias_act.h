// bias_act, one element: bias, activation, gain and clamp, and the element's first and second
// derivative with respect to x (for the backward pass and the backward of the backward).
#pragma once

#include "common.h"

namespace sa {

// Same order as the names in native_ops.ACT_CODES.
enum Act { LINEAR = 0, RELU, LRELU, TANH, SIGMOID, ELU, SELU, SOFTPLUS, SWISH };

// Shape of the bias broadcast (`inner` elements after the bias dim, which has `channels`
// entries), the activation code, the derivative order and the scalar arguments.
struct BiasActArgs {
    int64_t inner, channels;
    int act, order;
    double alpha, gain, clamp;
};

// Channel of flat element i when x is contiguous and the bias runs along a dim with
// `channels` entries and `inner` elements after it.
SA_HD int64_t bias_channel(int64_t i, int64_t inner, int64_t channels) { return (i / inner) % channels; }

template <typename A>
SA_HD A sigmoid(A z) { return A(1) / (A(1) + sa_exp(-z)); }

// The activation (order 0) or its first / second derivative at z. Branch points follow
// torch's own ops (relu, leaky_relu, elu, selu, softplus with threshold 20), which the
// reference calls, so that gradients agree at the kinks too.
template <typename A>
SA_HD A activation(int act, A z, A alpha, int order) {
    const A zero = 0, one = 1;
    switch (act) {
        case RELU: return order == 0 ? (z > zero ? z : zero) : order == 1 ? (z > zero ? one : zero) : zero;
        case LRELU: return order == 0 ? (z > zero ? z : z * alpha) : order == 1 ? (z > zero ? one : alpha) : zero;
        case TANH: {
            const A t = sa_tanh(z);
            return order == 0 ? t : order == 1 ? one - t * t : A(-2) * t * (one - t * t);
        }
        case SIGMOID: {
            const A s = sigmoid(z);
            return order == 0 ? s : order == 1 ? s * (one - s) : s * (one - s) * (one - A(2) * s);
        }
        case ELU:  // alpha 1, as F.elu(x)
            if (z > zero) return order == 0 ? z : order == 1 ? one : zero;
            return order == 0 ? sa_expm1(z) : sa_exp(z);
        case SELU: {
            const A scale = A(1.0507009873554804934193349852946);
            const A a = A(1.6732632423543772848170429916717);
            if (z > zero) return order == 0 ? scale * z : order == 1 ? scale : zero;
            return order == 0 ? scale * a * sa_expm1(z) : scale * a * sa_exp(z);
        }
        case SOFTPLUS: {
            if (z > A(20)) return order == 0 ? z : order == 1 ? one : zero;
            if (order == 0) return sa_log1p(sa_exp(z));
            const A s = sigmoid(z);
            return order == 1 ? s : s * (one - s);
        }
        case SWISH: {
            const A s = sigmoid(z);
            return order == 0 ? z * s : order == 1 ? s * (one + z * (one - s))
                                                   : s * (one - s) * (A(2) + z * (one - A(2) * s));
        }
        default:  // LINEAR
            return order == 0 ? z : order == 1 ? one : zero;
    }
}

// order 0: clamp(act(x + b) * gain); order k > 0: dy * gain * act^(k)(x + b), zero where the
// forward value was clamped (torch.clamp passes the gradient where -clamp <= v <= clamp).
// clamp < 0 means no clamp.
// ACT >= 0 fixes the activation at compile time (it must then equal act), so that the CPU loop
// has no switch per element.
template <typename A, int ACT = -1>
SA_HD A bias_act_element(A x, A b, A dy, int act_arg, A alpha, A gain, A clamp, int order) {
    const int act = ACT >= 0 ? ACT : act_arg;
    const A z = x + b;
    if (order == 0) {
        A v = activation(act, z, alpha, 0) * gain;
        if (clamp >= A(0)) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
        return v;
    }
    if (clamp >= A(0)) {
        const A v = activation(act, z, alpha, 0) * gain;
        if (v > clamp || v < -clamp) return A(0);
    }
    return dy * gain * activation(act, z, alpha, order);
}

}  // namespace sa
