"""Official NVlabs TensorFlow pickles (stylegan2 and stylegan2-ada TF): a tuple (G, D, Gs)
of ``dnnlib.tflib.network.Network`` states, read without TensorFlow.

Each Network state holds ``static_kwargs`` (the build arguments), ``components``
(sub-networks: G's ``mapping`` and ``synthesis``) and ``variables`` (local name,
numpy array). TF stores dense weights [in, out] and conv weights [k, k, in, out];
its up-convolution is a transposed conv whose kernel is the spatial flip of ours;
the modulation bias is stored without the +1 that our affine layers fold in.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ...errors import UserError
from ...networks import Discriminator, Generator
from . import kwargs_map
from .native import Networks
from .safe_pickle import TFNetworkStub

TFParams = dict[str, np.ndarray]


def sniff(head: bytes) -> bool:
    return head[:1] == b"\x80" and b"dnnlib.tflib.network" in head


def is_tf_tuple(data) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkStub) for n in data)


def collect_params(net: TFNetworkStub, prefix: str = "") -> TFParams:
    """Every variable of ``net`` and its components, keyed 'component/.../local_name'."""
    params: TFParams = {}
    for name, value in net.state.get("variables", []):
        params[prefix + str(name)] = np.asarray(value)
    for cname, comp in dict(net.state.get("components") or {}).items():
        if isinstance(comp, TFNetworkStub):
            params.update(collect_params(comp, f"{prefix}{cname}/"))
    return params


def _dense(a: np.ndarray) -> np.ndarray:
    return a.T


def _conv(a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)


def _upconv(a: np.ndarray) -> np.ndarray:
    # TF's upsample_conv_2d runs a transposed conv on the kernel as stored; ours flips it back.
    return a[::-1, ::-1].transpose(3, 2, 0, 1)


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _plus_one(a: np.ndarray) -> np.ndarray:
    return a + 1


def _noise_index(res: str, conv: int) -> int:
    return 2 * int(np.log2(int(res))) - 5 + conv


# (our state_dict name pattern, TF variable name template, transform); groups fill the template.
G_RULES: list[tuple[str, Callable[..., str], Callable]] = [
    (r"mapping\.w_avg", lambda: "dlatent_avg", _same),
    (r"mapping\.embed\.weight", lambda: "mapping/LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", lambda: "mapping/LabelEmbed/bias", _same),
    (r"mapping\.fc(\d+)\.weight", lambda i: f"mapping/Dense{i}/weight", _dense),
    (r"mapping\.fc(\d+)\.bias", lambda i: f"mapping/Dense{i}/bias", _same),
    (r"synthesis\.b4\.const", lambda: "synthesis/4x4/Const/const", lambda a: a[0]),
    (r"synthesis\.b4\.conv1\.noise_const", lambda: "synthesis/noise0", lambda a: a[0, 0]),
    (r"synthesis\.b4\.conv1\.(weight|bias|noise_strength|affine\.weight|affine\.bias)",
     lambda v: f"synthesis/4x4/Conv/{v}", None),
    (r"synthesis\.b(\d+)\.conv0\.noise_const", lambda r: f"synthesis/noise{_noise_index(r, 0)}", lambda a: a[0, 0]),
    (r"synthesis\.b(\d+)\.conv1\.noise_const", lambda r: f"synthesis/noise{_noise_index(r, 1)}", lambda a: a[0, 0]),
    (r"synthesis\.b(\d+)\.conv0\.(weight|bias|noise_strength|affine\.weight|affine\.bias)",
     lambda r, v: f"synthesis/{r}x{r}/Conv0_up/{v}", "up"),
    (r"synthesis\.b(\d+)\.conv1\.(weight|bias|noise_strength|affine\.weight|affine\.bias)",
     lambda r, v: f"synthesis/{r}x{r}/Conv1/{v}", None),
    (r"synthesis\.b(\d+)\.torgb\.(weight|bias|affine\.weight|affine\.bias)",
     lambda r, v: f"synthesis/{r}x{r}/ToRGB/{v}", None),
    (r"synthesis\.b(\d+)\.skip\.weight", lambda r: f"synthesis/{r}x{r}/Skip/weight", _upconv),
]

D_RULES: list[tuple[str, Callable[..., str], Callable]] = [
    (r"b(\d+)\.fromrgb\.weight", lambda r: f"{r}x{r}/FromRGB/weight", _conv),
    (r"b(\d+)\.fromrgb\.bias", lambda r: f"{r}x{r}/FromRGB/bias", _same),
    (r"b(\d+)\.conv0\.weight", lambda r: f"{r}x{r}/Conv0/weight", _conv),
    (r"b(\d+)\.conv0\.bias", lambda r: f"{r}x{r}/Conv0/bias", _same),
    (r"b(\d+)\.conv1\.weight", lambda r: f"{r}x{r}/Conv1_down/weight", _conv),
    (r"b(\d+)\.conv1\.bias", lambda r: f"{r}x{r}/Conv1_down/bias", _same),
    (r"b(\d+)\.skip\.weight", lambda r: f"{r}x{r}/Skip/weight", _conv),
    (r"b4\.conv\.weight", lambda: "4x4/Conv/weight", _conv),
    (r"b4\.conv\.bias", lambda: "4x4/Conv/bias", _same),
    (r"b4\.fc\.weight", lambda: "4x4/Dense0/weight", _dense),
    (r"b4\.fc\.bias", lambda: "4x4/Dense0/bias", _same),
    (r"b4\.out\.weight", lambda: "Output/weight", _dense),
    (r"b4\.out\.bias", lambda: "Output/bias", _same),
    (r"mapping\.embed\.weight", lambda: "LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", lambda: "LabelEmbed/bias", _same),
    (r"mapping\.fc(\d+)\.weight", lambda i: f"Mapping{i}/weight", _dense),
    (r"mapping\.fc(\d+)\.bias", lambda i: f"Mapping{i}/bias", _same),
]

# Transforms of a modulated layer's variables, by the TF variable's last name part.
_MOD_TRANSFORMS = {"weight": _conv, "bias": _same, "noise_strength": _same, "mod_weight": _dense,
                   "mod_bias": _plus_one}

IGNORED_TF_VARS = re.compile(r"(.*/)?lod")


def _tf_name_and_transform(name: str, rules) -> tuple[str, Callable] | None:
    for pattern, template, transform in rules:
        m = re.fullmatch(pattern, name)
        if not m:
            continue
        tf_name = template(*m.groups())
        tf_name = tf_name.replace("/affine.weight", "/mod_weight").replace("/affine.bias", "/mod_bias")
        if transform is None or transform == "up":
            last = tf_name.rsplit("/", 1)[1]
            fn = _MOD_TRANSFORMS[last]
            transform = _upconv if (transform == "up" and last == "weight") else fn
        return tf_name, transform
    return None


def convert_params(net: torch.nn.Module, params: TFParams, rules, what: str) -> dict[str, torch.Tensor]:
    """Our state dict for ``net`` from TF variables; every TF variable must be used."""
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for name, ours in net.state_dict().items():
        found = _tf_name_and_transform(name, rules)
        if found is None:
            raise UserError(f"{what}: no TF variable maps to {name} (an architecture this reader does not know)")
        tf_name, transform = found
        if tf_name not in params:
            raise UserError(f"{what}: TF variable {tf_name} is missing (a StyleGAN2 config E/F network has it)")
        value = np.array(transform(params[tf_name]), dtype=np.float32, order="C")
        if tuple(value.shape) != tuple(ours.shape):
            raise UserError(f"{what}: TF variable {tf_name} has shape {list(params[tf_name].shape)}, "
                            f"which does not fit {name} {list(ours.shape)}")
        state[name] = torch.from_numpy(value)
        used.add(tf_name)
    unused = sorted(k for k in params if k not in used and not IGNORED_TF_VARS.fullmatch(k)
                    and not re.fullmatch(r"synthesis/noise\d+", k))
    if unused:
        raise UserError(f"{what}: TF variable {unused[0]} has no place in a StyleGAN2 network "
                        f"(a fork or another architecture?)")
    return state


def generator_from_tf(net: TFNetworkStub, what: str, extras: dict[str, str]) -> Generator:
    params = collect_params(net)
    if "synthesis/4x4/Conv/mod_weight" not in params:
        raise UserError(f"{what} is a TensorFlow network pickle, but not a StyleGAN2 generator "
                        f"(no synthesis/4x4/Conv/mod_weight: StyleGAN1 or configs A-D are not supported)")
    label_concat = "mapping/LabelConcat/weight" in params
    if label_concat:
        # The original code's label matrix is used unscaled; our dense layers scale by 1/sqrt(fan_in).
        w = params.pop("mapping/LabelConcat/weight")
        params["mapping/LabelEmbed/weight"] = (w * np.float32(np.sqrt(w.shape[0]))).astype(np.float32)
    cfg = kwargs_map.generator_config(dict(net.state.get("static_kwargs") or {}), what, extras,
                                      label_mode="concat" if label_concat else "embed")
    G = Generator(cfg)
    G.load_state_dict(convert_params(G, params, G_RULES, what))
    return G


def discriminator_from_tf(net: TFNetworkStub, what: str, extras: dict[str, str]) -> Discriminator:
    params = collect_params(net)
    kwargs = dict(net.state.get("static_kwargs") or {})
    label_size = int(kwargs.get("label_size", 0) or 0)
    output_mode = label_size > 0 and "LabelEmbed/weight" not in params
    if "4x4/Conv/weight" not in params:
        raise UserError(f"{what}: the discriminator has no 4x4/Conv/weight (not a StyleGAN2 discriminator)")
    fmaps = min(int(kwargs.get("fmap_base", 16 << 10)) * 2 // 4, int(kwargs.get("fmap_max", 512)))
    mbstd = int(params["4x4/Conv/weight"].shape[2]) - fmaps
    cfg = kwargs_map.discriminator_config(kwargs, what, extras, mbstd, "output" if output_mode else "project")
    D = Discriminator(cfg)
    D.load_state_dict(convert_params(D, params, D_RULES, what))
    return D


def networks_from_tf_gs(net: TFNetworkStub, path: Path, device) -> Networks:
    """A lone generator Network (people often share just Gs)."""
    extras: dict[str, str] = {}
    G_ema = generator_from_tf(net, path.name, extras)
    if extras:
        warnings.warn(f"{path.name}: kept unknown settings in the config's extra: {', '.join(sorted(extras))}",
                      stacklevel=3)
    meta = {"source_format": "nvlabs-tf-pickle", "source_file": path.name}
    return Networks(G_ema=G_ema.to(device).eval().requires_grad_(False), meta=meta)


def networks_from_tf(data: tuple, path: Path, device) -> Networks:
    what = path.name
    for net in data:
        version = net.state.get("version")
        if not isinstance(version, int) or version < 2:
            raise UserError(f"{what}: TF network {net.name} has pickle version {version!r}, expected 2-4")
    tf_G, tf_D, tf_Gs = data
    extras: dict[str, str] = {}
    G_ema = generator_from_tf(tf_Gs, what, extras)
    G = generator_from_tf(tf_G, what, {})
    D = discriminator_from_tf(tf_D, what, extras)
    if extras:
        warnings.warn(f"{what}: kept unknown settings in the config's extra: {', '.join(sorted(extras))}",
                      stacklevel=3)
    meta = {"source_format": "nvlabs-tf-pickle", "source_file": what}
    nets = [n.to(device).eval().requires_grad_(False) for n in (G_ema, G, D)]
    return Networks(G_ema=nets[0], G=nets[1], D=nets[2], meta=meta)
