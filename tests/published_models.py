"""Files with the published architecture of each registry model, random weights, in its format.

Unlike ``format_fixtures`` (which writes our own small networks out), these builders never
touch our networks: every shape comes from the public code that made or converted the real
file, so loading one proves that the readers infer the architecture from the file alone.

- ``anime-portraits-512``: NVlabs stylegan2 ``run_training.py --config=config-f`` at 512²
  (G_main / G_mapping / G_synthesis_stylegan2 / D_stylegan2 defaults: z = w = 512, 8 mapping
  layers, fmap_base 16 << 10, fmap_max 512, skip G, resnet D, minibatch-stddev group 4 with one
  feature). A network snapshot pickles (G, D, Gs); their static_kwargs are what the training loop
  passes (num_channels, resolution, label_size), so the defaults must be known to the reader.
- ``tadne-512``: Aydao's StyleGAN2-ext run (z = w = 1024, 4 mapping layers 1024 wide, fmap_base
  32 << 10, fmap_max 1024) converted by rosinality's ``convert_weight.py`` into rosinality's
  Generator(512, 1024, 4, channel_multiplier=2) with every channel count doubled again
  (``additional_multiplier=2``, the patch the public TADNE demos apply). The converter saves
  ``{"g_ema": state_dict, "latent_avg": w_avg}`` and nothing else.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch

import format_fixtures as ff

# ---------------------------------------------------------------------------- NVlabs TF config F

TF_FMAP_BASE, TF_FMAP_MAX = 16 << 10, 512      # networks_stylegan2.py defaults = config F


def tf_nf(stage: int, fmap_base: int = TF_FMAP_BASE, fmap_max: int = TF_FMAP_MAX) -> int:
    """Feature maps of a TF stage (stage = log2(resolution) - 1), as networks_stylegan2.py's nf()."""
    return int(min(fmap_base / 2.0 ** stage, fmap_max))


class _Random:
    """float32 normal arrays (numpy, TF layouts) from one seeded stream."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape: int, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))


def _tf_modconv(rnd: _Random, prefix: str, k: int, cin: int, cout: int, w_dim: int, noise: bool) -> list:
    v = [(f"{prefix}/weight", rnd(k, k, cin, cout)), (f"{prefix}/mod_weight", rnd(w_dim, cin)),
         (f"{prefix}/mod_bias", rnd(cin, scale=0.1))]
    if noise:
        v.append((f"{prefix}/noise_strength", rnd(scale=0.1)))
    return v + [(f"{prefix}/bias", rnd(cout, scale=0.1))]


def tf_config_f_generator(name: str, resolution: int, src: str, seed: int) -> ff.Network:
    """G or Gs of config F: G_main with components mapping and synthesis (TF variable layouts)."""
    rnd, log2 = _Random(seed), int(math.log2(resolution))
    z_dim = w_dim = 512
    mapping = [(f"Dense{i}/{p}", rnd(z_dim, w_dim) if p == "weight" else rnd(w_dim, scale=0.1))
               for i in range(8) for p in ("weight", "bias")]
    num_layers = 2 * log2 - 2
    synthesis = [(f"noise{i}", rnd(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2))) for i in range(num_layers - 1)]
    synthesis.append(("4x4/Const/const", rnd(1, tf_nf(1), 4, 4)))
    synthesis += _tf_modconv(rnd, "4x4/Conv", 3, tf_nf(1), tf_nf(1), w_dim, noise=True)
    synthesis += _tf_modconv(rnd, "4x4/ToRGB", 1, tf_nf(1), 3, w_dim, noise=False)
    for res in range(3, log2 + 1):
        r = 2 ** res
        synthesis += _tf_modconv(rnd, f"{r}x{r}/Conv0_up", 3, tf_nf(res - 2), tf_nf(res - 1), w_dim, noise=True)
        synthesis += _tf_modconv(rnd, f"{r}x{r}/Conv1", 3, tf_nf(res - 1), tf_nf(res - 1), w_dim, noise=True)
        synthesis += _tf_modconv(rnd, f"{r}x{r}/ToRGB", 1, tf_nf(res - 1), 3, w_dim, noise=False)
    # training_loop.py builds G with the data set's shape only; config F adds no G arguments.
    kwargs = dict(num_channels=3, resolution=resolution, label_size=0)

    def net(n, func, variables, components=None, **extra):
        return ff.Network(dict(version=4, name=n, static_kwargs={**kwargs, **extra}, components=components or {},
                               build_module_src=src, build_func_name=func, variables=variables))
    return net(name, "G_main", [("lod", np.float32(0)), ("dlatent_avg", rnd(w_dim))],
               {"mapping": net("G_mapping", "G_mapping", mapping, dlatent_broadcast=num_layers),
                "synthesis": net("G_synthesis", "G_synthesis_stylegan2", synthesis)})


def tf_config_f_discriminator(resolution: int, src: str, seed: int) -> ff.Network:
    """D_stylegan2 (resnet, minibatch stddev of one feature) in TF variable layouts."""
    rnd, log2 = _Random(seed), int(math.log2(resolution))
    v = [(f"{resolution}x{resolution}/FromRGB/weight", rnd(1, 1, 3, tf_nf(log2 - 1))),
         (f"{resolution}x{resolution}/FromRGB/bias", rnd(tf_nf(log2 - 1), scale=0.1))]
    for res in range(log2, 2, -1):
        r, cin, cout = 2 ** res, tf_nf(res - 1), tf_nf(res - 2)
        v += [(f"{r}x{r}/Conv0/weight", rnd(3, 3, cin, cin)), (f"{r}x{r}/Conv0/bias", rnd(cin, scale=0.1)),
              (f"{r}x{r}/Conv1_down/weight", rnd(3, 3, cin, cout)), (f"{r}x{r}/Conv1_down/bias", rnd(cout, scale=0.1)),
              (f"{r}x{r}/Skip/weight", rnd(1, 1, cin, cout))]
    mbstd_features = 1
    v += [("4x4/Conv/weight", rnd(3, 3, tf_nf(1) + mbstd_features, tf_nf(1))), ("4x4/Conv/bias", rnd(tf_nf(1))),
          ("4x4/Dense0/weight", rnd(tf_nf(1) * 16, tf_nf(0))), ("4x4/Dense0/bias", rnd(tf_nf(0))),
          ("Output/weight", rnd(tf_nf(0), 1)), ("Output/bias", rnd(1))]
    return ff.Network(dict(version=4, name="D", static_kwargs=dict(num_channels=3, resolution=resolution, label_size=0),
                           components={}, build_module_src=src, build_func_name="D_stylegan2", variables=v))


def write_anime_portraits_512(path: Path, marker: Path) -> tuple:
    """The (G, D, Gs) snapshot pickle; returns the three Network stand-ins (their variables)."""
    src = ff.hostile_source(marker)
    nets = (tf_config_f_generator("G", 512, src, seed=1), tf_config_f_discriminator(512, src, seed=2),
            tf_config_f_generator("Gs", 512, src, seed=3))
    with ff.fake_modules(**{"dnnlib.tflib.network": {"Network": ff.Network}}), open(path, "wb") as f:
        pickle.dump(nets, f, protocol=4)
    return nets


def tf_variables(net: ff.Network, prefix: str = "") -> dict[str, np.ndarray]:
    """'mapping/Dense0/weight' → array, for checking what the reader placed where."""
    out = {prefix + n: np.asarray(a) for n, a in net._state["variables"]}
    for cname, comp in net._state["components"].items():
        out.update(tf_variables(comp, f"{prefix}{cname}/"))
    return out


# ---------------------------------------------------------------------------- rosinality TADNE

def rosinality_channels(channel_multiplier: int, additional_multiplier: int = 1) -> dict[int, int]:
    """rosinality model.py's channel table; the TADNE patch multiplies every entry once more."""
    cm = channel_multiplier
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm,
             1024: 16 * cm}
    return {r: c * additional_multiplier for r, c in table.items()}


def _blur_kernel(gain: float) -> torch.Tensor:
    k = torch.tensor([1.0, 3, 3, 1])
    return (k[None] * k[:, None]) / (k.sum() ** 2) * gain


def rosinality_generator_state(size: int, style_dim: int, n_mlp: int, channels: dict[int, int],
                               dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    """rosinality Generator.state_dict() key names and shapes, random values."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(shape, generator=gen) * scale).to(dtype)

    sd = {}
    for i in range(1, n_mlp + 1):   # style.0 is PixelNorm (no parameters)
        sd[f"style.{i}.weight"], sd[f"style.{i}.bias"] = rand(style_dim, style_dim), rand(style_dim, scale=0.1)

    def styled(prefix, cin, cout, up):
        sd[f"{prefix}.conv.weight"] = rand(1, cout, cin, 3, 3)
        sd[f"{prefix}.conv.modulation.weight"] = rand(cin, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + rand(cin, scale=0.1)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = _blur_kernel(4.0)
        sd[f"{prefix}.noise.weight"] = rand(1, scale=0.1)
        sd[f"{prefix}.activate.bias"] = rand(cout, scale=0.1)

    def to_rgb(prefix, cin, up):
        if up:
            sd[f"{prefix}.upsample.kernel"] = _blur_kernel(4.0)
        sd[f"{prefix}.conv.weight"] = rand(1, 3, cin, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = rand(cin, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + rand(cin, scale=0.1)
        sd[f"{prefix}.bias"] = rand(1, 3, 1, 1, scale=0.1)

    sd["input.input"] = rand(1, channels[4], 4, 4)
    styled("conv1", channels[4], channels[4], up=False)
    to_rgb("to_rgb1", channels[4], up=False)
    log_size = int(math.log2(size))
    for k in range((log_size - 2) * 2 + 1):
        res = 2 ** ((k + 5) // 2)
        sd[f"noises.noise_{k}"] = rand(1, 1, res, res)
    cin = channels[4]
    for j, res in enumerate(2 ** i for i in range(3, log_size + 1)):
        styled(f"convs.{2 * j}", cin, channels[res], up=True)
        styled(f"convs.{2 * j + 1}", channels[res], channels[res], up=False)
        to_rgb(f"to_rgbs.{j}", channels[res], up=True)
        cin = channels[res]
    return sd


TADNE = dict(size=512, style_dim=1024, n_mlp=4, channel_multiplier=2, additional_multiplier=2)


def write_tadne_512(path: Path, dtype: torch.dtype = torch.float16) -> dict:
    """What convert_weight.py saves for TADNE: g_ema and a 1024-wide latent_avg. float16 storage
    halves the ~460 MB (the reader takes any float dtype); returns the checkpoint dict."""
    channels = rosinality_channels(TADNE["channel_multiplier"], TADNE["additional_multiplier"])
    sd = rosinality_generator_state(TADNE["size"], TADNE["style_dim"], TADNE["n_mlp"], channels, dtype, seed=4)
    ckpt = {"g_ema": sd, "latent_avg": torch.randn(TADNE["style_dim"], generator=torch.Generator().manual_seed(5))}
    torch.save(ckpt, path)
    return ckpt
