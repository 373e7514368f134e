// The per-element arithmetic of the layer epilogue (layer_epilogue.cpp): what happens to one
// filtered value on its way out of a synthesis layer.
#pragma once

#include <limits>

#include "common.h"
#include "simd.h"

namespace sa {
namespace epi {

template <typename T>
struct Params {
    T noise_gain, alpha, lo, hi;  // lo = -inf, hi = +inf when there is no clamp
};

template <typename T>
Params<T> params(double noise_gain, double alpha, double clamp) {
    const T inf = std::numeric_limits<T>::infinity();
    return {T(noise_gain), T(alpha), clamp < 0 ? -inf : T(-clamp), clamp < 0 ? inf : T(clamp)};
}

// scale * v + bias + noise_gain * noise, then leaky ReLU (slope alpha below zero), then clamp to
// [lo, hi]. V is T or simd::Lanes<T> (selects, not branches); NaN stays NaN, as in torch.
// v clamped to [p.lo, p.hi]; NaN stays NaN.
template <typename V, typename T>
SA_HD_INLINE V clamp(V v, const Params<T>& p) {
    using simd::select_lt;
    v = select_lt(v, V(p.lo), V(p.lo), v);
    return select_lt(V(p.hi), v, V(p.hi), v);
}

template <typename V, typename T>
SA_HD_INLINE V finish(V v, const Params<T>& p, V scale, V bias, V noise) {
    using simd::select_lt;
    v = v * scale + bias + V(p.noise_gain) * noise;
    v = select_lt(v, V(T(0)), v * V(p.alpha), v);
    return clamp(v, p);
}

}  // namespace epi
}  // namespace sa
