"""rosinality/stylegan2-pytorch checkpoints: ``torch.save`` dicts with ``g_ema`` (a state
dict), ``latent_avg`` (from its TF converter) and, from training, ``g``, ``d`` and ``args``.

Read with ``torch.load(weights_only=True)``. Its layers compute what ours do under other
names: EqualLinear (weight [out, in], scale lr_mul/sqrt(in)) is our dense layer, its
modulated conv weight [1, out, in, k, k] (already in our orientation, up-convs included:
conv_transpose then blur) is ours without the leading 1, ``modulation`` is our
``affine`` (bias already holds the +1), ``noise.weight`` [1] is the noise strength,
``activate.bias`` the layer bias and ``noises.noise_i`` [1, 1, r, r] the constant noise.
"""
from __future__ import annotations

import argparse
import pickle
import re
import zipfile
from pathlib import Path

import torch

from ...errors import UserError
from ...networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from ...networks.config import build_config
from ...networks.validation import build_within, check_dense, shapes_of
from .native import Networks
from .python_pickle import TORCH_LEGACY_MAGIC
from .object_limits import check_tree, default_children
from .safe_pickle import UnsafePickleError
from .tensor_layout import check_tensor

W_AVG_SAMPLES = 4096


def sniff(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04" or head.startswith(TORCH_LEGACY_MAGIC)


# data.pkl of a full training checkpoint (G, D, G_ema, two optimizers) is well under 1 MiB.
MAX_DATA_PKL = 64 << 20


def check_zip(path: Path) -> None:
    """The zip container of a ``torch.save`` file, checked before anything is read from it.

    torch writes every member uncompressed (stored), so what a member may hold is bounded by the
    file itself: a deflated member (a zip bomb: 2.4 GB from a few MB) or members whose sizes add
    up to more than the file (overlapping members, each read in full) are refused.
    """
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UserError(f"{path.name} is a corrupt zip file ({str(e)[:100]})") from None
    pkls = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
    if not pkls:
        raise UserError(f"{path.name} is a zip file but not a torch checkpoint (no data.pkl inside)")
    size = path.stat().st_size
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise UserError(f"{path.name}: the member {info.filename[:60]} is compressed; torch checkpoints "
                            f"store members uncompressed (a compressed one may be a zip bomb)")
    if sum(i.file_size for i in infos) > size:
        raise UserError(f"{path.name}: its members declare {sum(i.file_size for i in infos):,} bytes in a file of "
                        f"{size:,} (overlapping members or a corrupt directory)")
    if len({i.filename for i in infos}) != len(infos):
        raise UserError(f"{path.name}: the zip file names a member twice")
    if any(i.file_size > MAX_DATA_PKL for i in pkls):
        raise UserError(f"{path.name}: its data.pkl is over {MAX_DATA_PKL >> 20} MiB, far more than a "
                        f"checkpoint's structure needs")


def _children(obj):
    if isinstance(obj, argparse.Namespace):
        return list(vars(obj).values())
    return default_children(obj)


def check_contents(data: object, what: str) -> None:
    """Nesting depth, expanded size and every tensor's layout (dense, its own storage)."""
    check_tree(data, what, _children)
    seen: set[int] = set()
    stack = [data]
    while stack:
        obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            check_tensor(obj, what)
        elif id(obj) not in seen:
            seen.add(id(obj))
            stack.extend(_children(obj) or ())


def torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)`` after ``check_zip``, then ``check_contents``; refused
    globals and broken or absurd files → one-line UserError."""
    if zipfile.is_zipfile(path):
        check_zip(path)
    else:
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                raise UserError(f"{path.name} is a truncated or corrupt torch checkpoint (a zip file without "
                                f"its directory)")
    try:
        # A file object, not the path: torch.load picks a reader by the file name's extension otherwise.
        with torch.serialization.safe_globals([argparse.Namespace]), open(path, "rb") as f:
            data = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e)) or re.search(r"global ([\w.]+)", str(e))
        if m:
            raise UnsafePickleError(f"{path.name}: refused to load: the checkpoint asks for the global "
                                    f"{m.group(1)}, which weights files never need (nothing from the file was "
                                    f"run)") from None
        raise UserError(f"{path.name} is a corrupt torch checkpoint ({str(e).splitlines()[0][:120]})") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError, MemoryError,
            OverflowError, AttributeError, IndexError, RecursionError, UnicodeDecodeError) as e:
        detail = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UserError(f"{path.name} is a truncated or corrupt torch checkpoint ({detail})") from None
    check_contents(data, path.name)
    return data


def _channel_config(chans: dict[int, int], what: str) -> tuple[int, int]:
    """(channel_base, channel_max) with min(base // r, max) == chans[r] for every r."""
    cmax = max(chans.values())
    top = max(r for r, c in chans.items() if c == cmax)
    lower = [r for r in chans if r > top]
    base = chans[min(lower)] * min(lower) if lower else cmax * top
    if any(min(base // r, cmax) != c for r, c in chans.items()):
        raise UserError(f"{what}: channel counts {dict(sorted(chans.items()))} do not follow "
                        f"min(base / resolution, max), which this toolkit's StyleGAN2 needs")
    return base, cmax


def _mod_layer(sd: dict, src: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
    out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]


def _one(t: torch.Tensor) -> torch.Tensor:
    # A tensor of another size is passed on unchanged for the shape check to name.
    return t.reshape([]) if t.numel() == 1 else t


def _styled(sd: dict, src: str, dst: str, noise: str, out: dict) -> None:
    _mod_layer(sd, src, dst, out)
    out[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
    out[f"{dst}.noise_strength"] = _one(sd[f"{src}.noise.weight"])
    out[f"{dst}.noise_const"] = sd[f"noises.{noise}"][0, 0]


def _check_state_dict(sd: dict, role: str, what: str) -> None:
    """Every entry a string name and a dense floating-point tensor, before any shape is read."""
    for k, v in sd.items():
        if not isinstance(k, str):
            raise UserError(f"{what}: the {role} state dict has a key that is not a name ({type(k).__name__})")
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            kind = f"a {v.dtype} tensor" if isinstance(v, torch.Tensor) else f"a {type(v).__name__}"
            raise UserError(f"{what}: {role} entry {k[:80]} is {kind}, not floating-point weights")
        check_dense(v, f"{role}.{k[:80]}", what)


def generator_config(sd: dict, args, what: str) -> GeneratorConfig:
    n_rgb = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k)])
    if n_rgb > 12:
        raise UserError(f"{what}: {n_rgb} to_rgbs layers describe a resolution beyond 8192")
    res = 4 * 2 ** n_rgb
    chans = {4: sd["input.input"].shape[1]}
    for j in range(n_rgb):
        chans[2 ** (j + 3)] = sd[f"convs.{2 * j}.conv.weight"].shape[1]
    base, cmax = _channel_config(chans, what)
    style_dim = sd["style.1.weight"].shape[1]
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    lr_mlp = getattr(args, "lr_mlp", None)
    lr_mlp = 0.01 if lr_mlp is None or (isinstance(lr_mlp, (int, float)) and not lr_mlp) else lr_mlp
    return build_config(GeneratorConfig, dict(img_resolution=res, z_dim=style_dim, w_dim=style_dim,
                                               mapping_layers=n_mlp, mapping_lr_multiplier=lr_mlp,
                                               channel_base=base, channel_max=cmax), what)


def generator_state(sd: dict, cfg: GeneratorConfig) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for i in range(cfg.mapping_layers):
        out[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
    out["synthesis.b4.const"] = sd["input.input"][0]
    _styled(sd, "conv1", "synthesis.b4.conv1", "noise_0", out)
    _mod_layer(sd, "to_rgb1", "synthesis.b4.torgb", out)
    out["synthesis.b4.torgb.bias"] = sd["to_rgb1.bias"].reshape(-1)
    n_blocks = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k)])
    for j in range(n_blocks):
        b = f"synthesis.b{2 ** (j + 3)}"
        _styled(sd, f"convs.{2 * j}", f"{b}.conv0", f"noise_{2 * j + 1}", out)
        _styled(sd, f"convs.{2 * j + 1}", f"{b}.conv1", f"noise_{2 * j + 2}", out)
        _mod_layer(sd, f"to_rgbs.{j}", f"{b}.torgb", out)
        out[f"{b}.torgb.bias"] = sd[f"to_rgbs.{j}.bias"].reshape(-1)
    return out


def discriminator_from(sd: dict, what: str) -> Discriminator:
    _check_state_dict(sd, "d", what)
    sd = _Tracked(sd)
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(r"convs\.(\d+)\.conv1\.0\.weight", k))})
    if not 1 <= len(blocks) <= 12:
        raise UserError(f"{what}: the d state dict has {len(blocks)} down-sampling blocks, expected 1-12")
    res = 4 * 2 ** len(blocks)
    chans = {res: sd["convs.0.0.weight"].shape[0], 4: sd["final_conv.0.weight"].shape[0]}
    for k in blocks:
        chans[res // 2 ** k] = sd[f"convs.{k}.conv2.1.weight"].shape[0]
    base, cmax = _channel_config(chans, what)
    # The minibatch-stddev features before final_conv: 1 in rosinality's code, more in forks (the
    # TADNE run used 4), so the count is read from final_conv's input width, not assumed.
    mbstd = sd["final_conv.0.weight"].shape[1] - sd[f"convs.{blocks[-1]}.conv2.1.weight"].shape[0]
    if mbstd < 0:
        raise UserError(f"{what}: the d state dict's final_conv has fewer inputs than its last block's outputs")
    cfg = build_config(DiscriminatorConfig, dict(img_resolution=res, channel_base=base, channel_max=cmax,
                                                 mbstd_num_channels=mbstd), what)
    out = {f"b{res}.fromrgb.weight": sd["convs.0.0.weight"], f"b{res}.fromrgb.bias": sd["convs.0.1.bias"]}
    for k in blocks:
        b = f"b{res // 2 ** (k - 1)}"
        out[f"{b}.conv0.weight"], out[f"{b}.conv0.bias"] = sd[f"convs.{k}.conv1.0.weight"], sd[f"convs.{k}.conv1.1.bias"]
        out[f"{b}.conv1.weight"], out[f"{b}.conv1.bias"] = sd[f"convs.{k}.conv2.1.weight"], sd[f"convs.{k}.conv2.2.bias"]
        out[f"{b}.skip.weight"] = sd[f"convs.{k}.skip.1.weight"]
    out["b4.conv.weight"], out["b4.conv.bias"] = sd["final_conv.0.weight"], sd["final_conv.1.bias"]
    out["b4.fc.weight"], out["b4.fc.bias"] = sd["final_linear.0.weight"], sd["final_linear.0.bias"]
    out["b4.out.weight"], out["b4.out.bias"] = sd["final_linear.1.weight"], sd["final_linear.1.bias"]
    return _load(Discriminator, cfg, out, sd, "d", what)


class _Tracked(dict):
    """A state dict that remembers which keys were read, so leftovers can be reported."""

    def __init__(self, *args):
        super().__init__(*args)
        self.used: set[str] = set()

    def __getitem__(self, key):
        self.used.add(key)
        return super().__getitem__(key)


def _load(net_cls: type, cfg, state: dict, sd: _Tracked, role: str, what: str) -> torch.nn.Module:
    """The network, built only when ``cfg`` describes about as many weights as the state dict
    holds, then every tensor checked against it and none left over. Blur/upsample kernels are
    fixed buffers and not read."""
    unused = sorted(k for k in sd if k not in sd.used and not k.endswith("kernel"))
    net = build_within(net_cls, cfg, sum(v.numel() for v in sd.values()), what)
    expected = shapes_of(net)
    expected.pop("mapping.w_avg", None)  # from latent_avg (or estimated), not from the state dict
    missing = [k for k in expected if k not in state]
    if missing or unused:
        name = missing[0] if missing else unused[0][:80]
        raise UserError(f"{what}: the {role} state dict does not fit a StyleGAN2 network ({name})")
    for k, shape in expected.items():
        if tuple(state[k].shape) != shape:
            raise UserError(f"{what}: {role} tensor for {k} has shape {list(state[k].shape)}, expected {list(shape)}")
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=False)
    return net


def _w_avg(G: Generator) -> torch.Tensor:
    # Training checkpoints carry no average w; rosinality's generate.py estimates one from random z.
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=gen)
    with torch.no_grad():
        return G.mapping(z, None)[:, 0].mean(dim=0)


def generator_from(sd: dict, args, latent_avg, what: str) -> Generator:
    _check_state_dict(sd, "g_ema", what)
    sd = _Tracked(sd)
    try:
        cfg = generator_config(sd, args, what)
        G = _load(Generator, cfg, generator_state(sd, cfg), sd, "g_ema", what)
    except KeyError as e:
        raise UserError(f"{what}: the generator state dict lacks {str(e.args[0])[:80]} (not a rosinality "
                        f"StyleGAN2)") from None
    except IndexError:
        raise UserError(f"{what}: a generator tensor has fewer dimensions than a rosinality StyleGAN2's") from None
    if latent_avg is not None and (not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != G.w_dim
                                   or not latent_avg.is_floating_point()):
        raise UserError(f"{what}: latent_avg is not a vector of {G.w_dim} numbers")
    with torch.no_grad():
        G.mapping.w_avg.copy_(latent_avg.reshape(-1) if latent_avg is not None else _w_avg(G))
    return G


def load(path: Path, device) -> Networks:
    what = path.name
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        kind = f"a dict with keys {', '.join(sorted(map(str, ckpt))[:6])}" if isinstance(ckpt, dict) \
            else f"a {type(ckpt).__name__}"
        raise UserError(f"{what} is a torch checkpoint holding {kind}; expected a rosinality StyleGAN2 "
                        f"checkpoint with g_ema")
    args, latent_avg = ckpt.get("args"), ckpt.get("latent_avg")
    G_ema = generator_from(ckpt["g_ema"], args, latent_avg, what)
    meta = {"source_format": "rosinality-checkpoint", "source_file": what,
            "w_avg": "from the checkpoint" if latent_avg is not None else f"mean of {W_AVG_SAMPLES} mapped z"}
    G = None
    if isinstance(ckpt.get("g"), dict):
        G = generator_from(ckpt["g"], args, latent_avg if latent_avg is not None else G_ema.mapping.w_avg, what)
    D = None
    if isinstance(ckpt.get("d"), dict):
        try:
            D = discriminator_from(ckpt["d"], what)
        except KeyError as e:
            raise UserError(f"{what}: the d state dict lacks {str(e.args[0])[:80]} (not a rosinality "
                            f"StyleGAN2)") from None
        except IndexError:
            raise UserError(f"{what}: a d tensor has fewer dimensions than a rosinality StyleGAN2's") from None
    nets = [n.to(device).eval().requires_grad_(False) if n is not None else None for n in (G_ema, G, D)]
    return Networks(G_ema=nets[0], G=nets[1], D=nets[2], meta=meta)
