// The winograd extension's Python binding: F(4x4, 3x3) Winograd convolution (the 3x3 'same' conv) and
// the stride-2 transposed 3x3 conv on the CPU. CPU only: on CUDA the networks use cuDNN's convolutions,
// which choose their own algorithms. One translation unit, built from these headers:
//   winograd.h          the per-tile transforms (shared with the CUDA-capable ops' headers)
//   winograd_tiles.h    tile I/O: tilings, window origins, blocks of LANES tiles to and from images
//   winograd_unfused.h  the unfused transforms (image ↔ tiles, filters), with their adjoints
//   winograd_gemm.h     the fused conv's products: band layout and GEMM micro-kernel
//   winograd_fused.h    the fused conv, with the layer's epilogue and toRGB on the way out
//   winograd_filter_blocks.h  tile products with the filters transformed block by block, not kept
#include <torch/extension.h>

#include "winograd_filter_blocks.h"
#include "winograd_fused.h"
#include "winograd_unfused.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("input", &sa::winograd_input, "x [N, C, H, W], scale [N, C] or None -> V [36, C, P] of x * scale "
          "(Winograd F(4x4, 3x3) input tiles; in out if given; of the band of `rows` rows of windows from first_row "
          "if rows >= 0)", py::arg("x"), py::arg("scale") = py::none(), py::arg("out") = py::none(),
          py::arg("first_row") = 0, py::arg("rows") = -1);
    m.def("input_adjoint", &sa::winograd_input_adjoint, "dV [36, C, P], N, H, W -> dx [N, C, H, W]");
    m.def("output", &sa::winograd_output, "M [36, K, P], N, H, W -> y [N, K, H, W] (in out if given; M a band's "
          "tiles if rows >= 0, which write that band of out)", py::arg("m"), py::arg("n"), py::arg("h"), py::arg("w"),
          py::arg("out") = py::none(), py::arg("first_row") = 0, py::arg("rows") = -1);
    m.def("output_adjoint", &sa::winograd_output_adjoint, "dy [N, K, H, W] -> dM [36, K, P]");
    m.def("weight", &sa::winograd_weight, "g [K, C, 3, 3] -> U [36, K, C] (Winograd F(4x4, 3x3) filter tiles)");
    m.def("weight_adjoint", &sa::winograd_weight_adjoint, "dU [36, K, C] -> dg [K, C, 3, 3]");
    m.def("up_input", &sa::winograd_up_input, "x [N, C, H, W], scale [N, C] or None -> V [81, C, P] of x * scale "
          "(stride-2 transposed 3x3 conv; in out if given; a band as input's; value a in plane order[a] if order "
          "[81] is given)", py::arg("x"), py::arg("scale") = py::none(), py::arg("out") = py::none(),
          py::arg("first_row") = 0, py::arg("rows") = -1, py::arg("order") = py::none());
    m.def("up_output", &sa::winograd_up_output, "M [81, K, P], N, H, W -> y [N, K, 2H + 1, 2W + 1] (in out if given; "
          "a band as output's; order as up_input's)", py::arg("m"), py::arg("n"), py::arg("h"), py::arg("w"),
          py::arg("out") = py::none(), py::arg("first_row") = 0, py::arg("rows") = -1, py::arg("order") = py::none());
    m.def("conv", &sa::winograd_conv, "x [N, C, H, W], U [36, K, C], scale [N, C] or None, band, then the epilogue's "
          "out_scale [N, K], bias [K], noise [1 or N, H, W] (each or None), noise_gain, alpha, clamp (< 0: none), out (None: new), "
          "work (the threads' band buffers, work_floats values; None: new) -> y [N, K, H, W]", py::arg("x"), py::arg("u"),
          py::arg("scale"), py::arg("band"), py::arg("out_scale"), py::arg("bias"), py::arg("noise"), py::arg("noise_gain"),
          py::arg("alpha"), py::arg("clamp"), py::arg("out") = py::none(), py::arg("work") = py::none());
    m.def("conv_rgb", &sa::winograd_conv_rgb, "conv's arguments, then the toRGB layer's: rgb_weight [N, O, K], "
          "rgb_bias [O] or None, skip [N, O, H, W] or None, rgb_clamp (< 0: none), keep_y, y_out, rgb_out (None: new), work "
          "-> (y or None, rgb [N, O, H, W])", py::arg("x"), py::arg("u"), py::arg("scale"), py::arg("band"),
          py::arg("out_scale"), py::arg("bias"), py::arg("noise"), py::arg("noise_gain"), py::arg("alpha"),
          py::arg("clamp"), py::arg("rgb_weight"), py::arg("rgb_bias"), py::arg("skip"), py::arg("rgb_clamp"),
          py::arg("keep_y"), py::arg("y_out") = py::none(), py::arg("rgb_out") = py::none(), py::arg("work") = py::none());
    m.def("up_conv", &sa::winograd_up_conv, "x [N, C, H, W], U [81, K, C], scale [N, C] or None, band, out (None: new), "
          "work (as conv's), u_index ([81]: the plane of U each value multiplies; None: its own) -> "
          "y [N, K, 2H + 1, 2W + 1]", py::arg("x"), py::arg("u"), py::arg("scale"), py::arg("band"),
          py::arg("out") = py::none(), py::arg("work") = py::none(), py::arg("u_index") = py::none());
    m.def("work_floats", &sa::winograd_work_floats, "S (6: conv, conv_rgb; 9: up_conv), N, C, K, H, W, band -> the "
          "floats of the work buffers the fused conv of N images of H x W (C channels in, K out) takes");
    m.def("up_planes", &sa::winograd_up_planes, "taps [3, 3, K, C], keep (int64 [V]: values 0..80), out (None: "
          "new) -> U [V, K, C], the values keep of each filter's 81 (up_weight_tile)", py::arg("taps"), py::arg("keep"),
          py::arg("out") = py::none());
    m.def("products_from_weights", &sa::winograd_products_from_weights, "g [K, C, 3, 3], V [36, C, P], M [36, K, P], "
          "work (None: new) -> M = the products of V and g's filter transform, made block by block into work",
          py::arg("g"), py::arg("v"), py::arg("m"), py::arg("work") = py::none());
    m.def("filter_work_floats", &sa::winograd_filter_work_floats, "C, threads -> the floats of products_from_weights' "
          "work buffer");
}
