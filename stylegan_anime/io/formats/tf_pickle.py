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
from ...networks.validation import build_within, shapes_of
from .native import Networks
from .safe_pickle import TFNetworkStub

TFParams = dict[str, np.ndarray]


def sniff(head: bytes) -> bool:
    return head[:1] == b"\x80" and b"dnnlib.tflib.network" in head


def is_tf_tuple(data) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkStub) for n in data)


MAX_DEPTH = 8  # G → mapping / synthesis: two levels in every published file


def collect_params(net: TFNetworkStub, prefix: str = "", what: str = "", depth: int = 0) -> TFParams:
    """Every variable of ``net`` and its components, keyed 'component/.../local_name', as stored
    (views, not copies: shapes are checked before anything is converted)."""
    if depth > MAX_DEPTH:
        raise UserError(f"{what}: TF components nested deeper than {MAX_DEPTH} levels ({prefix[:80]})")
    params: TFParams = {}
    variables = net.state.get("variables") if isinstance(net.state, dict) else None
    components = net.state.get("components") if isinstance(net.state, dict) else None
    if not isinstance(variables, (list, tuple)) or not isinstance(components or {}, dict):
        raise UserError(f"{what}: TF network {prefix or 'at the top'} has no list of variables")
    for item in variables:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise UserError(f"{what}: TF network {prefix or 'at the top'} has a variable that is not a (name, array)")
        name, value = item
        value = value if isinstance(value, np.ndarray) else np.asarray(value) if isinstance(
            value, (float, int, np.number)) else None
        if value is None or value.dtype.kind != "f":
            raise UserError(f"{what}: TF variable {prefix}{name[:80]} is not a floating-point array")
        params[prefix + name] = value
    for cname, comp in (components or {}).items():
        if isinstance(comp, TFNetworkStub):
            params.update(collect_params(comp, f"{prefix}{str(cname)[:80]}/", what, depth + 1))
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


def _transformed_shape(a: np.ndarray, transform: Callable) -> tuple[int, ...] | None:
    """The shape ``transform(a)`` would have, found on a zero-stride stand-in (no memory);
    None if the transform does not apply to an array of this many dimensions."""
    if transform is _plus_one:
        return tuple(a.shape)
    try:
        return tuple(transform(np.broadcast_to(np.float32(0), a.shape)).shape)
    except (IndexError, ValueError):
        return None


def convert_params(expected: dict[str, tuple[int, ...]], params: TFParams, rules, what: str) -> dict[str, torch.Tensor]:
    """Our state dict for a network of ``expected`` shapes (``shapes_of``) from TF variables;
    every TF variable must be used. All names and shapes are checked before any array is copied."""
    plan: dict[str, tuple[str, Callable]] = {}
    for name, shape in expected.items():
        found = _tf_name_and_transform(name, rules)
        if found is None:
            raise UserError(f"{what}: no TF variable maps to {name} (an architecture this reader does not know)")
        tf_name, transform = found
        if tf_name not in params:
            raise UserError(f"{what}: TF variable {tf_name} is missing (a StyleGAN2 config E/F network has it)")
        if _transformed_shape(params[tf_name], transform) != shape:
            raise UserError(f"{what}: TF variable {tf_name} has shape {list(params[tf_name].shape)}, "
                            f"which does not fit {name} {list(shape)}")
        plan[name] = tf_name, transform
    used = {tf_name for tf_name, _ in plan.values()}
    unused = sorted(k for k in params if k not in used and not IGNORED_TF_VARS.fullmatch(k)
                    and not re.fullmatch(r"synthesis/noise\d+", k))
    if unused:
        raise UserError(f"{what}: TF variable {unused[0][:80]} has no place in a StyleGAN2 network "
                        f"(a fork or another architecture?)")
    return {name: torch.from_numpy(np.array(transform(params[tf_name]), dtype=np.float32, order="C"))
            for name, (tf_name, transform) in plan.items()}


def generator_from_tf(net: TFNetworkStub, what: str, extras: dict[str, str]) -> Generator:
    params = collect_params(net, what=what)
    if "synthesis/4x4/Conv/mod_weight" not in params:
        raise UserError(f"{what} is a TensorFlow network pickle, but not a StyleGAN2 generator "
                        f"(no synthesis/4x4/Conv/mod_weight: StyleGAN1 or configs A-D are not supported)")
    label_concat = "mapping/LabelConcat/weight" in params
    if label_concat:
        params["mapping/LabelEmbed/weight"] = params.pop("mapping/LabelConcat/weight")
    cfg = kwargs_map.generator_config(_static_kwargs(net, what), what, extras,
                                      label_mode="concat" if label_concat else "embed")
    G = build_within(Generator, cfg, _held(params), what)
    state = convert_params(shapes_of(G), params, G_RULES, what)
    if label_concat:
        # The original code's label matrix is used unscaled; our dense layers scale by 1/sqrt(fan_in).
        w = state["mapping.embed.weight"].numpy()
        state["mapping.embed.weight"] = torch.from_numpy((w * np.float32(np.sqrt(w.shape[1]))).astype(np.float32))
    G.load_state_dict(state)
    return G


def _held(params: TFParams) -> int:
    return sum(int(a.size) for a in params.values())


def _static_kwargs(net: TFNetworkStub, what: str) -> dict:
    kwargs = net.state.get("static_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise UserError(f"{what}: TF network {str(net.name)[:40]} has static_kwargs that are not a mapping")
    return dict(kwargs)


def discriminator_from_tf(net: TFNetworkStub, what: str, extras: dict[str, str]) -> Discriminator:
    params = collect_params(net, what=what)
    kwargs = _static_kwargs(net, what)
    label_size = kwargs_map._int(kwargs, "label_size", 0, what) or 0
    output_mode = label_size > 0 and "LabelEmbed/weight" not in params
    if "4x4/Conv/weight" not in params or params["4x4/Conv/weight"].ndim != 4:
        raise UserError(f"{what}: the discriminator has no 4x4/Conv/weight [3, 3, in, out] "
                        f"(not a StyleGAN2 discriminator)")
    fmap_base = kwargs_map._int(kwargs, "fmap_base", 16 << 10, what) or 0
    fmap_max = kwargs_map._int(kwargs, "fmap_max", 512, what) or 0
    mbstd = int(params["4x4/Conv/weight"].shape[2]) - min(fmap_base * 2 // 4, fmap_max)
    if mbstd < 0:
        raise UserError(f"{what}: the discriminator's 4x4/Conv/weight has fewer inputs than its config's channels")
    cfg = kwargs_map.discriminator_config(kwargs, what, extras, mbstd, "output" if output_mode else "project")
    D = build_within(Discriminator, cfg, _held(params), what)
    D.load_state_dict(convert_params(shapes_of(D), params, D_RULES, what))
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
