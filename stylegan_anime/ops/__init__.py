"""The ops layer: each op's plain-PyTorch reference beside the wrapper of its native kernel (sources in
the repository's top-level ``ops/``), and the build that compiles them (``native_build``).

kernels (upfirdn2d, bias_act; the networks' switch point) · native_ops (their autograd Functions) ·
winograd_op (F(4×4, 3×3) transforms and fused convs) · layer_epilogue · to_rgb · native_build."""
