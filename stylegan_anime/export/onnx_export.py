"""Export a generator to ONNX: z (and labels c) and psi in, images out, as one graph.

The graph is traced from the plain-PyTorch reference layers (reference ops, no Winograd, the
autograd path of every layer), so it holds only standard ONNX operators and runs in onnxruntime
anywhere, including onnxruntime-web in a browser. Noise is the network's constant noise, baked in.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..errors import UserError
from ..io.atomic import atomic_path
from ..networks import Generator
from ..networks import layers, mapping, modulated_conv, synthesis
from ..networks.winograd import use_winograd
from ..ops.native_build import use_ops

OPSET = 18  # recent (2023), covers every op we emit, and onnxruntime-web 1.31 runs it
# The module types the reference path is made of; anything else (a subclass, a fused or native
# layer patched in) may compute something the tracer cannot see, so it is refused by name.
KNOWN_MODULES = (Generator, mapping.MappingNetwork, synthesis.SynthesisNetwork, synthesis.SynthesisBlock,
                 modulated_conv.SynthesisLayer, modulated_conv.ToRGBLayer, layers.FullyConnectedLayer,
                 layers.Conv2dLayer)


@dataclass(frozen=True)
class OnnxExportConfig:
    """``dynamic_batch``: the batch axis N is free (else fixed to ``batch``)."""

    dynamic_batch: bool = True
    batch: int = 1
    opset: int = OPSET


class TruncatedGenerator(nn.Module):
    """The exported function: (z: [N, z_dim], c: [N, c_dim] or absent, psi: [] float) →
    images [N, img_channels, R, R] in about [-1, 1], all ws truncated towards w_avg by psi."""

    def __init__(self, G: Generator):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, psi: torch.Tensor) -> torch.Tensor:
        ws = self.G.mapping(z, c, psi=1.0)  # psi is a graph input, so the lerp is done here
        w_avg = self.G.mapping.w_avg
        ws = w_avg + psi * (ws - w_avg)
        return self.G.synthesis(ws, noise_mode="const")


def check_exportable(G: nn.Module) -> None:
    """Raise UserError naming the first thing the exporter cannot express."""
    if not isinstance(G, Generator):
        raise UserError(f"can only export a Generator, got {type(G).__name__}")
    for name, module in G.named_modules():
        if type(module) not in KNOWN_MODULES:
            raise UserError(f"cannot export module {name or 'G'} of type {type(module).__name__}: "
                            "only the reference StyleGAN2 layers have an ONNX form")
    if not hasattr(G.mapping, "w_avg"):
        raise UserError("cannot export a network without a tracked w_avg (w_avg_beta=None): psi needs it")


def example_inputs(G: Generator, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Inputs of the exported graph's shapes: z, c (None when unconditional), psi."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.zeros([n, G.c_dim]) if G.c_dim else None
    if c is not None:
        c[:, 0] = 1
    return z, c, torch.tensor(0.7)


def to_onnx_bytes(G: Generator, cfg: OnnxExportConfig = OnnxExportConfig()) -> bytes:
    """The ONNX model of ``TruncatedGenerator(G)`` as bytes (inputs z[, c], psi; output images)."""
    require_onnx()
    check_exportable(G)
    G = copy.deepcopy(G).cpu().float().requires_grad_(True)  # requires_grad: the layers' reference path
    model: nn.Module = TruncatedGenerator(G)
    # A free batch axis is traced at N = 2: torch.export takes an axis of size 1 for a fixed one.
    z, c, psi = example_inputs(G, max(cfg.batch, 2) if cfg.dynamic_batch else cfg.batch)
    if c is None:
        model, args, names = _Unconditional(model), (z, psi), ["z", "psi"]
    else:
        args, names = (z, c, psi), ["z", "c", "psi"]
    batch = torch.export.Dim("N", min=1, max=4096)
    shapes = tuple({0: batch} if name != "psi" else None for name in names) if cfg.dynamic_batch else None
    with use_ops("ref"), use_winograd("off"), _quiet():
        # torch.export (dynamo): the legacy tracer cannot give the FIR filter convs a free batch axis.
        try:
            program = torch.onnx.export(model.eval(), args, input_names=names, output_names=["images"],
                                        dynamic_shapes=shapes, opset_version=cfg.opset, dynamo=True,
                                        verbose=False)
        except Exception as e:  # the exporter's errors are pages long; the first line names the problem
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(f"torch's ONNX exporter could not express this network: {first}") from None
    data = program.model_proto.SerializeToString()
    _check_standard_ops(data)
    return data


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's chatter (optional torchvision ops, deprecations): the user gets one line."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class _Unconditional(nn.Module):
    """``TruncatedGenerator`` without the label input, for c_dim == 0."""

    def __init__(self, inner: TruncatedGenerator):
        super().__init__()
        self.inner = inner

    def forward(self, z: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return self.inner(z, None, psi)


def _check_standard_ops(data: bytes) -> None:
    """Refuse a graph with an operator outside the standard ONNX domain (it would need a custom op)."""
    import onnx
    model = onnx.load_from_string(data)
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise UserError(f"the traced graph needs custom operator(s) {', '.join(custom)}; cannot export")


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` at ``path`` atomically (an interrupted export leaves the old file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def export_onnx(G: Generator, path: str | Path, cfg: OnnxExportConfig = OnnxExportConfig()) -> Path:
    """Write G as an ONNX file at ``path`` and return the path."""
    require_onnx()
    return write_bytes(path, to_onnx_bytes(G, cfg))


def require_onnx() -> None:
    """One clear line when the optional export dependencies are missing."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as e:
        raise UserError(f"ONNX export needs {e.name}: pip install 'stylegan-anime[export]'") from None
