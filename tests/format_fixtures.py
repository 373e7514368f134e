"""Writers of small files in each public weights layout, from our own networks.

Each writer takes our Generator / Discriminator and writes its weights the way the
public code base stores them (inverse of the reader's transform), with the real
class references (``dnnlib.tflib.network.Network``,
``torch_utils.persistence._reconstruct_persistent_obj``) so the pickles reduce exactly
as the originals do. Stand-in modules exist in ``sys.modules`` only while dumping.
The embedded module source would create ``MARKER`` if it were ever executed.
"""
from __future__ import annotations

import contextlib
import math
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from stylegan_anime.networks import Discriminator, Generator

MARKER_NAME = "embedded_source_ran.txt"


def hostile_source(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('embedded source executed')\n"


@contextlib.contextmanager
def fake_modules(**objects):
    """Install modules {dotted.name: {attr: obj}} (and their parents) while pickling."""
    added = []
    try:
        for modname, attrs in objects.items():
            parts = modname.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules:
                    sys.modules[name] = types.ModuleType(name)
                    added.append(name)
            for attr, obj in attrs.items():
                setattr(sys.modules[modname], attr, obj)
                obj.__module__ = modname
                obj.__qualname__ = attr
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


# --- NVlabs TensorFlow (G, D, Gs) -----------------------------------------------------------

class Network:
    """Pickles like dnnlib.tflib.network.Network: NEWOBJ of the class, then its state dict."""

    def __init__(self, state: dict):
        self._state = state

    def __getstate__(self):
        return self._state


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def tf_dense(w: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(_np(w).T)


def tf_conv(w: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(_np(w).transpose(2, 3, 1, 0))


def tf_upconv(w: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(_np(w).transpose(2, 3, 1, 0)[::-1, ::-1])


def _tf_mod_layer(prefix: str, layer, up: bool = False, noise: bool = True) -> list:
    v = [(f"{prefix}/weight", (tf_upconv if up else tf_conv)(layer.weight)),
         (f"{prefix}/mod_weight", tf_dense(layer.affine.weight)),
         (f"{prefix}/mod_bias", _np(layer.affine.bias) - 1),
         (f"{prefix}/bias", _np(layer.bias))]
    if noise:
        v.insert(3, (f"{prefix}/noise_strength", _np(layer.noise_strength)))
    return v


def tf_generator_networks(G: Generator, name: str, src: str, label_mode: str = "embed") -> Network:
    """G or Gs: the top Network with components mapping and synthesis (variables in TF creation order)."""
    cfg = G.cfg
    m, s = G.mapping, G.synthesis
    mvars = []
    if cfg.c_dim and label_mode == "concat":
        mvars.append(("LabelConcat/weight", tf_dense(m.embed.weight) / np.float32(math.sqrt(cfg.c_dim))))
    elif cfg.c_dim:
        mvars += [("LabelEmbed/weight", tf_dense(m.embed.weight)), ("LabelEmbed/bias", _np(m.embed.bias))]
    for i in range(cfg.mapping_layers):
        fc = getattr(m, f"fc{i}")
        mvars += [(f"Dense{i}/weight", tf_dense(fc.weight)), (f"Dense{i}/bias", _np(fc.bias))]
    svars = []
    for i, layer in enumerate(s.noise_layers()):
        svars.append((f"noise{i}", _np(layer.noise_const)[None, None]))
    b4 = s.b4
    svars.append(("4x4/Const/const", _np(b4.const)[None]))
    svars += _tf_mod_layer("4x4/Conv", b4.conv1)
    if hasattr(b4, "torgb"):
        svars += _tf_mod_layer("4x4/ToRGB", b4.torgb, noise=False)
    for res in s.block_resolutions[1:]:
        b = getattr(s, f"b{res}")
        svars += _tf_mod_layer(f"{res}x{res}/Conv0_up", b.conv0, up=True)
        svars += _tf_mod_layer(f"{res}x{res}/Conv1", b.conv1)
        if hasattr(b, "skip"):
            svars.append((f"{res}x{res}/Skip/weight", tf_upconv(b.skip.weight)))
        if hasattr(b, "torgb"):
            svars += _tf_mod_layer(f"{res}x{res}/ToRGB", b.torgb, noise=False)
    kwargs = dict(num_channels=cfg.img_channels, resolution=cfg.img_resolution, label_size=cfg.c_dim,
                  latent_size=cfg.z_dim, dlatent_size=cfg.w_dim, mapping_layers=cfg.mapping_layers,
                  mapping_lrmul=cfg.mapping_lr_multiplier, fmap_base=cfg.channel_base // 2,
                  fmap_max=cfg.channel_max, architecture=cfg.architecture,
                  resample_kernel=list(cfg.resample_filter), truncation_psi=0.5, randomize_noise=True)
    def net(n, func, variables, components=None):
        return Network(dict(version=4, name=n, static_kwargs=dict(kwargs), components=components or {},
                            build_module_src=src, build_func_name=func, variables=variables))
    mapping = net("G_mapping", "G_mapping", mvars)
    synthesis = net("G_synthesis", "G_synthesis_stylegan2", [("lod", np.float32(0))] + svars)
    return net(name, "G_main", [("lod", np.float32(0)), ("dlatent_avg", _np(m.w_avg))],
               {"synthesis": synthesis, "mapping": mapping})


def tf_discriminator_network(D: Discriminator, src: str) -> Network:
    cfg = D.cfg
    v = []
    for res in D.block_resolutions:
        b = getattr(D, f"b{res}")
        if hasattr(b, "fromrgb"):
            v += [(f"{res}x{res}/FromRGB/weight", tf_conv(b.fromrgb.weight)),
                  (f"{res}x{res}/FromRGB/bias", _np(b.fromrgb.bias))]
        v += [(f"{res}x{res}/Conv0/weight", tf_conv(b.conv0.weight)), (f"{res}x{res}/Conv0/bias", _np(b.conv0.bias)),
              (f"{res}x{res}/Conv1_down/weight", tf_conv(b.conv1.weight)),
              (f"{res}x{res}/Conv1_down/bias", _np(b.conv1.bias))]
        if hasattr(b, "skip"):
            v.append((f"{res}x{res}/Skip/weight", tf_conv(b.skip.weight)))
    e = D.b4
    v += [("4x4/Conv/weight", tf_conv(e.conv.weight)), ("4x4/Conv/bias", _np(e.conv.bias)),
          ("4x4/Dense0/weight", tf_dense(e.fc.weight)), ("4x4/Dense0/bias", _np(e.fc.bias)),
          ("Output/weight", tf_dense(e.out.weight)), ("Output/bias", _np(e.out.bias))]
    kwargs = dict(num_channels=cfg.img_channels, resolution=cfg.img_resolution, label_size=cfg.c_dim,
                  fmap_base=cfg.channel_base // 2, fmap_max=cfg.channel_max, architecture=cfg.architecture,
                  mbstd_group_size=cfg.mbstd_group_size, resample_kernel=list(cfg.resample_filter))
    if cfg.c_dim and cfg.label_mode == "project":
        v += [("LabelEmbed/weight", tf_dense(D.mapping.embed.weight)), ("LabelEmbed/bias", _np(D.mapping.embed.bias))]
        for i in range(cfg.mapping_layers):
            fc = getattr(D.mapping, f"fc{i}")
            v += [(f"Mapping{i}/weight", tf_dense(fc.weight)), (f"Mapping{i}/bias", _np(fc.bias))]
        kwargs.update(mapping_layers=cfg.mapping_layers, mapping_fmaps=cfg.cmap_dim,
                      mapping_lrmul=cfg.mapping_lr_multiplier)
    return Network(dict(version=4, name="D", static_kwargs=kwargs, components={}, build_module_src=src,
                        build_func_name="D_stylegan2", variables=v))


def write_tf_pickle(path: Path, G_ema: Generator, G: Generator, D: Discriminator, marker: Path,
                    label_mode: str = "embed", extra_kwargs: dict | None = None, protocol: int = 4) -> Path:
    src = hostile_source(marker)
    nets = (tf_generator_networks(G, "G", src, label_mode), tf_discriminator_network(D, src),
            tf_generator_networks(G_ema, "Gs", src, label_mode))
    for n in (nets[0], nets[2]):
        n._state["static_kwargs"].update(extra_kwargs or {})
    with fake_modules(**{"dnnlib.tflib.network": {"Network": Network}}):
        path.write_bytes(pickle.dumps(nets, protocol=protocol))
    return path


# --- stylegan2-ada-pytorch ------------------------------------------------------------------

def _reconstruct_persistent_obj(meta):  # never called: only its name goes into the pickle
    raise AssertionError("the fixture's reconstruct function must not run")


class EasyDict(dict):
    pass


class Persistent:
    """Reduces like a torch_utils.persistence object: _reconstruct_persistent_obj(meta)."""

    def __init__(self, class_name: str, state: dict, src: str):
        self.meta = dict(type="class", version=6, module_src=src, class_name=class_name, state=state)

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (self.meta,))


_CLASS_NAMES = {"MappingNetwork": "MappingNetwork", "SynthesisNetwork": "SynthesisNetwork",
                "SynthesisBlock": "SynthesisBlock", "SynthesisLayer": "SynthesisLayer", "ToRGBLayer": "ToRGBLayer",
                "FullyConnectedLayer": "FullyConnectedLayer", "Conv2dLayer": "Conv2dLayer",
                "DiscriminatorBlock": "DiscriminatorBlock", "DiscriminatorEpilogue": "DiscriminatorEpilogue",
                "Generator": "Generator", "Discriminator": "Discriminator"}


def _persistent_tree(module: torch.nn.Module, src: str, init_kwargs: dict | None = None) -> Persistent:
    params = OrderedDict((k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                         for k, v in module._parameters.items())
    buffers = OrderedDict((k, v.detach().clone()) for k, v in module._buffers.items())
    children = OrderedDict((k, _persistent_tree(m, src)) for k, m in module._modules.items())
    state = dict(training=False, _parameters=params, _buffers=buffers, _non_persistent_buffers_set=set(),
                 _modules=children, _forward_hooks=OrderedDict(), _init_args=(),
                 _init_kwargs=EasyDict(init_kwargs or {}))
    return Persistent(_CLASS_NAMES.get(type(module).__name__, type(module).__name__), state, src)


def ada_g_kwargs(G: Generator) -> dict:
    c = G.cfg
    return dict(z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim, img_resolution=c.img_resolution,
                img_channels=c.img_channels,
                mapping_kwargs=EasyDict(num_layers=c.mapping_layers, lr_multiplier=c.mapping_lr_multiplier),
                synthesis_kwargs=EasyDict(channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=0,
                                          conv_clamp=c.conv_clamp, architecture=c.architecture))


def ada_d_kwargs(D: Discriminator) -> dict:
    c = D.cfg
    return dict(c_dim=c.c_dim, img_resolution=c.img_resolution, img_channels=c.img_channels,
                architecture=c.architecture, channel_base=c.channel_base, channel_max=c.channel_max,
                num_fp16_res=0, conv_clamp=c.conv_clamp, cmap_dim=c.cmap_dim,
                block_kwargs=EasyDict(), mapping_kwargs=EasyDict(num_layers=c.mapping_layers),
                epilogue_kwargs=EasyDict(mbstd_group_size=c.mbstd_group_size))


def write_ada_pickle(path: Path, G_ema: Generator, G: Generator, D: Discriminator, marker: Path,
                     extra_g_kwargs: dict | None = None) -> Path:
    src = hostile_source(marker)
    data = dict(training_set_kwargs=EasyDict(class_name="training.dataset.ImageFolderDataset", path="x.zip"),
                G=_persistent_tree(G, src, ada_g_kwargs(G)), D=_persistent_tree(D, src, ada_d_kwargs(D)),
                G_ema=_persistent_tree(G_ema, src, {**ada_g_kwargs(G_ema), **(extra_g_kwargs or {})}),
                augment_pipe=None)
    with fake_modules(**{"torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj},
                         "dnnlib.util": {"EasyDict": EasyDict}}):
        path.write_bytes(pickle.dumps(data, protocol=2))
    return path


# --- rosinality/stylegan2-pytorch -----------------------------------------------------------

def rosinality_g_state(G: Generator) -> dict[str, torch.Tensor]:
    s, out = G.synthesis, {}
    for i in range(G.cfg.mapping_layers):
        fc = getattr(G.mapping, f"fc{i}")
        out[f"style.{i + 1}.weight"], out[f"style.{i + 1}.bias"] = fc.weight.clone(), fc.bias.clone()
    out["input.input"] = s.b4.const[None].clone()
    blur = torch.tensor([[1., 3, 3, 1]]) * torch.tensor([[1., 3, 3, 1]]).T / 64

    def styled(src, layer, noise_idx, up=False):
        out[f"{src}.conv.weight"] = layer.weight[None].clone()
        out[f"{src}.conv.modulation.weight"] = layer.affine.weight.clone()
        out[f"{src}.conv.modulation.bias"] = layer.affine.bias.clone()
        if up:
            out[f"{src}.conv.blur.kernel"] = blur * 4
        out[f"{src}.noise.weight"] = layer.noise_strength.reshape(1).clone()
        out[f"{src}.activate.bias"] = layer.bias.clone()
        out[f"noises.noise_{noise_idx}"] = layer.noise_const[None, None].clone()

    def torgb(src, layer, up=True):
        out[f"{src}.conv.weight"] = layer.weight[None].clone()
        out[f"{src}.conv.modulation.weight"] = layer.affine.weight.clone()
        out[f"{src}.conv.modulation.bias"] = layer.affine.bias.clone()
        out[f"{src}.bias"] = layer.bias.reshape(1, -1, 1, 1).clone()
        if up:
            out[f"{src}.upsample.kernel"] = blur * 4

    styled("conv1", s.b4.conv1, 0)
    torgb("to_rgb1", s.b4.torgb, up=False)
    for j, res in enumerate(s.block_resolutions[1:]):
        b = getattr(s, f"b{res}")
        styled(f"convs.{2 * j}", b.conv0, 2 * j + 1, up=True)
        styled(f"convs.{2 * j + 1}", b.conv1, 2 * j + 2)
        torgb(f"to_rgbs.{j}", b.torgb)
    return out


def rosinality_d_state(D: Discriminator) -> dict[str, torch.Tensor]:
    R = D.img_resolution
    b = getattr(D, f"b{R}")
    out = {"convs.0.0.weight": b.fromrgb.weight.clone(), "convs.0.1.bias": b.fromrgb.bias.clone()}
    blur = torch.tensor([[1., 3, 3, 1]]) * torch.tensor([[1., 3, 3, 1]]).T / 64
    for k, res in enumerate(D.block_resolutions, start=1):
        b = getattr(D, f"b{res}")
        out[f"convs.{k}.conv1.0.weight"], out[f"convs.{k}.conv1.1.bias"] = b.conv0.weight.clone(), b.conv0.bias.clone()
        out[f"convs.{k}.conv2.0.kernel"] = blur
        out[f"convs.{k}.conv2.1.weight"], out[f"convs.{k}.conv2.2.bias"] = b.conv1.weight.clone(), b.conv1.bias.clone()
        out[f"convs.{k}.skip.0.kernel"] = blur
        out[f"convs.{k}.skip.1.weight"] = b.skip.weight.clone()
    e = D.b4
    out.update({"final_conv.0.weight": e.conv.weight.clone(), "final_conv.1.bias": e.conv.bias.clone(),
                "final_linear.0.weight": e.fc.weight.clone(), "final_linear.0.bias": e.fc.bias.clone(),
                "final_linear.1.weight": e.out.weight.clone(), "final_linear.1.bias": e.out.bias.clone()})
    return out


def write_rosinality(path: Path, G_ema: Generator, G: Generator | None = None, D: Discriminator | None = None,
                     latent_avg: bool = True) -> Path:
    ckpt: dict = {"g_ema": rosinality_g_state(G_ema)}
    if latent_avg:
        ckpt["latent_avg"] = G_ema.mapping.w_avg.clone()
    if G is not None:
        ckpt["g"] = rosinality_g_state(G)
    if D is not None:
        ckpt["d"] = rosinality_d_state(D)
    import argparse
    ckpt["args"] = argparse.Namespace(size=G_ema.img_resolution, n_mlp=G_ema.cfg.mapping_layers, latent=G_ema.z_dim)
    torch.save(ckpt, path)
    return path
