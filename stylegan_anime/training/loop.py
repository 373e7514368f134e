"""The training loop: phases, optimisers, EMA, ADA, snapshots, logs.

One iteration runs the published phase order, each phase with its own optimiser step:
G main, G path length (every ``pl_interval`` steps), D main, D R1 (every ``r1_interval``
steps). Lazily applied regularisers take extra optimiser steps, so Adam's learning rate
and betas are corrected by interval / (interval + 1), as in the StyleGAN2 paper.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import latents
from ..io import loading
from ..features import render
from ..io.atomic import atomic_path
from ..errors import UserError
from ..io.formats.native import Networks
from ..networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from . import checkpoint, disk_space, distributed
from ..editing.tags import stores_label_names
from .drawn_labels import DrawnLabels
from .augment import AdaConfig, AdaptiveP, AugmentPipe
from .checkpoint import Progress
from .config import TrainingConfig
from .label_guide import LabelGuide
from .label_pairs import groups_for
from .loss import StyleGAN2Loss, TextMethods
from .sampler import InfiniteSampler

MetricFn = Callable[[Generator, int], dict[str, float]]
TRAINING_JSON = "training.json"
LOG = "log.jsonl"
METRICS = "metrics.jsonl"
SAMPLES_GLOB = "samples-*.png"


def make_optimizer(module: nn.Module, lr: float, betas: tuple[float, float], reg_interval: int | None):
    """Adam with the lazy-regularisation correction of lr and betas (no correction when the
    regulariser is off)."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    params = list(module.parameters())
    # The fused kernel updates every tensor in one pass: 3x faster than the per-tensor loop on
    # the CPU (37 vs 116 ms for a 64² G and D), which PyTorch otherwise picks there.
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return torch.optim.Adam(params, lr=lr * ratio, betas=tuple(float(b ** ratio) for b in betas), eps=1e-8,
                            fused=fused or None)


def frozen_discriminator_params(D: Discriminator, freezed: int) -> set[str]:
    """FreezeD: the parameters of D's ``freezed`` highest-resolution blocks."""
    if freezed > len(D.block_resolutions):
        raise UserError(f"--freezed {freezed} is more than the discriminator's {len(D.block_resolutions)} blocks")
    prefixes = tuple(f"b{res}." for res in D.block_resolutions[:freezed])
    return {name for name, _ in D.named_parameters() if name.startswith(prefixes)}


@torch.no_grad()
def update_ema(G_ema: Generator, G: Generator, beta: float) -> None:
    """G_ema ← beta·G_ema + (1-beta)·G for parameters; buffers copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def build_augment(cfg: TrainingConfig, device: torch.device,
                  pipe: nn.Module | None = None) -> tuple[nn.Module | None, AdaptiveP | None]:
    """The augmentation pipeline and, with ``--augment ada``, the controller of its p
    (both None with ``--augment off``)."""
    if cfg.augment == "off":
        return None, None
    pipe = (pipe if pipe is not None else AugmentPipe(p=cfg.augment_p)).to(device)
    mode = "adaptive" if cfg.augment == "ada" else "fixed"
    ada = AdaptiveP(pipe, AdaConfig(mode=mode, target=cfg.ada_target, interval=cfg.ada_interval, kimg=cfg.ada_kimg,
                                    p=cfg.augment_p))
    return pipe, ada


def ada_state(ada: AdaptiveP | None) -> tuple[float, float]:
    """The controller's pending statistics (sum of signs, count), which a snapshot keeps."""
    return (ada._sign_sum, float(ada._count)) if ada is not None else (0.0, 0.0)


def set_ada_state(ada: AdaptiveP | None, sign_sum: float, count: float, calls: int) -> None:
    if ada is not None:
        ada._sign_sum, ada._count, ada._calls = sign_sum, int(count), calls


CA_WARM_SIGMA = 0.1  # small beside the embedding's unit second moment: the resumed model draws as before


def with_conditioning_augmentation(G: Generator) -> Generator:
    """A copy of the conditional ``G`` built with conditioning augmentation: every weight kept, the
    label embedding's layer giving μ as before, and log σ² rows that start at a constant σ =
    ``CA_WARM_SIGMA`` for every label (zero weights), so that training from a plain snapshot starts
    from the images it drew instead of from noise in the embedding."""
    out = Generator(dataclasses.replace(G.cfg, cond_aug=True)).to(next(G.parameters()).device)
    state = G.state_dict()
    embed = out.mapping.embed
    w_mu, b_mu = state.pop("mapping.embed.weight"), state.pop("mapping.embed.bias")
    with torch.no_grad():
        embed.weight.copy_(torch.cat([w_mu, torch.zeros_like(w_mu)]))
        log_var = 2 * math.log(CA_WARM_SIGMA) / embed.bias_gain  # the layer multiplies its bias by bias_gain
        embed.bias.copy_(torch.cat([b_mu, torch.full_like(b_mu, log_var)]))
    missing, unexpected = out.load_state_dict(state, strict=False)
    assert set(missing) == {"mapping.embed.weight", "mapping.embed.bias"} and not unexpected, (missing, unexpected)
    return out


def initial_networks(cfg: TrainingConfig, c_dim: int) -> tuple[Generator, Discriminator, dict[str, str]]:
    """Fresh networks from ``cfg`` (seeded), or the ones ``cfg.resume`` names (fine-tuning)."""
    if cfg.resume is None:
        torch.manual_seed(cfg.seed)
        g_cfg = dataclasses.replace(cfg.g, cond_aug=True) if cfg.cond_aug else cfg.g
        return Generator(g_cfg), Discriminator(cfg.d), {}
    nets = loading.load_networks(cfg.resume, device="cpu")
    G = copy.deepcopy(nets.G if nets.G is not None else nets.G_ema)
    if G.img_resolution != cfg.resolution:
        raise UserError(f"--resume {cfg.resume} is a {G.img_resolution}² model but the data set is "
                        f"{cfg.resolution}²: fine-tuning needs images at the model's resolution")
    if G.c_dim != c_dim and not (c_dim == 0 and stores_label_names(G)):
        raise UserError(f"--resume {cfg.resume} takes {G.c_dim} labels but the data set has {c_dim} "
                        f"(use --no-labels for an unconditional model)")
    if cfg.cond_aug and not G.cfg.cond_aug:
        G = with_conditioning_augmentation(G)
        print(f"--resume {cfg.resume} was trained without conditioning augmentation: its label embedding "
              f"becomes the mean, with sigma starting at {CA_WARM_SIGMA}", file=sys.stderr, flush=True)
    if nets.D is not None:
        D = copy.deepcopy(nets.D)
    else:
        torch.manual_seed(cfg.seed)
        D = Discriminator(matching_discriminator_config(cfg.d, G.cfg))
        print(f"--resume {cfg.resume} has no discriminator: training a fresh one of the generator's widths "
              f"(channel base {D.cfg.channel_base}, max {D.cfg.channel_max})", file=sys.stderr, flush=True)
    return G, D, {"resumed_from": str(cfg.resume)}


def record_kimg(line: str) -> float | None:
    """The ``kimg`` of one log line; None for a line that is not a whole record (torn, garbage)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    kimg = record.get("kimg") if isinstance(record, dict) else None
    return float(kimg) if isinstance(kimg, (int, float)) and not isinstance(kimg, bool) else None


def matching_discriminator_config(d: DiscriminatorConfig, g: GeneratorConfig) -> DiscriminatorConfig:
    """``d`` with the generator's widths, resolution and labels: the D built for a resumed G that
    came without one (the default 16384/512 beside a 2048/128 G was 17× wider, and as slow)."""
    return dataclasses.replace(d, channel_base=g.channel_base, channel_max=g.channel_max,
                               img_resolution=g.img_resolution, c_dim=g.c_dim, img_channels=g.img_channels)


def text_methods(cfg: TrainingConfig, G: Generator, c_dim: int, labels: torch.Tensor | None) -> TextMethods:
    """The GAN-CLS / GAN-INT / CA settings of a run, with the label groups of G's layout
    (``labels``: a few data set label vectors [N, c_dim], to recognise plain one-hot classes)."""
    if not c_dim and (cfg.gan_cls > 0 or cfg.gan_int > 0 or cfg.cond_aug):
        raise UserError("--gan-cls, --gan-int and --cond-aug need a labelled data set (a conditional model)")
    stored = G.cfg.extra.get("label_names")
    names = json.loads(stored) if stored else None
    groups = groups_for(names, c_dim, labels) if c_dim else []
    return TextMethods(gan_cls=cfg.gan_cls, gan_int=cfg.gan_int, gan_int_beta=cfg.gan_int_beta, ca_kl=cfg.ca_kl,
                       groups=groups)


def label_guide(cfg: TrainingConfig, G: Generator, device: torch.device) -> LabelGuide | None:
    """The run's label guide (None without ``--label-guide``), checked against G's label layout."""
    if cfg.label_guide is None:
        return None
    if not G.c_dim:
        raise UserError("--label-guide needs a conditional model (a labelled data set)")
    return LabelGuide.load(cfg.label_guide, G, device, cfg.label_guide_weight)


class Trainer:
    """Owns the networks, optimisers and progress of one run in ``run_dir``.

    ``dataset[i]`` → (uint8 image [3, R, R], float32 label [c_dim] or [0]). ``metric_fn``
    (G_ema, nimg) → {name: value} is called at each snapshot (e.g. FID).
    """

    def __init__(self, cfg: TrainingConfig, run_dir: str | Path, dataset, augment_pipe: nn.Module | None = None,
                 metric_fn: MetricFn | None = None, dist: distributed.Dist | None = None, progress_bar: bool = True):
        self.dist = dist or distributed.Dist(device=loading.resolve_device(cfg.device))
        if cfg.batch % self.dist.world_size:
            raise UserError(f"--batch {cfg.batch} must be a multiple of the number of processes "
                            f"({self.dist.world_size})")
        self.cfg, self.run_dir, self.dataset = cfg, Path(run_dir), dataset
        self.device = self.dist.device
        self.metric_fn, self.progress_bar = metric_fn, progress_bar
        self.c_dim = int(dataset[0][1].numel())
        names = getattr(dataset, "label_names", None)
        if cfg.resume is None and self.c_dim and names and "label_names" not in cfg.g.extra:
            # Saved with the generator so that tag prompts (`generate --tags`) know its label layout,
            # and seeds asked for no particular character are drawn as the data set is.
            from ..editing.tags import with_label_names, with_label_prior
            extra = with_label_names(cfg.g.extra, names)
            if hasattr(dataset, "get_label"):
                labels = torch.stack([dataset.get_label(i) for i in range(len(dataset))]).numpy()
                extra = with_label_prior(extra, labels)
            cfg.g = dataclasses.replace(cfg.g, extra=extra)
        G, D, self.meta = initial_networks(cfg, self.c_dim)
        if G.c_dim and not self.c_dim:
            self.dataset = dataset = DrawnLabels(dataset, G)
            self.c_dim = G.c_dim
            print(f"the data set has no labels: each image gets labels drawn from the network's label frequencies "
                  f"({G.c_dim} labels; label the set to teach them)", file=sys.stderr, flush=True)
        cfg.g, cfg.d = G.cfg, D.cfg
        self.G, self.D = G.to(self.device).train(), D.to(self.device).train()
        distributed.sync_module(self.G, self.dist)
        distributed.sync_module(self.D, self.dist)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.frozen = frozen_discriminator_params(self.D, cfg.freezed)
        self.augment_pipe, self.ada = build_augment(cfg, self.device, augment_pipe)
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment_pipe, cfg.resolved_r1_gamma(), cfg.style_mixing,
                                  cfg.pl_weight, cfg.pl_decay, cfg.pl_batch_shrink,
                                  mean_across_ranks=lambda x: distributed.mean_tensor(x, self.dist),
                                  text=text_methods(cfg, self.G, self.c_dim, self._some_labels()),
                                  label_guide=label_guide(cfg, self.G, self.device))
        self.opt_G = make_optimizer(self.G, cfg.g_lr, cfg.betas, cfg.pl_interval if cfg.pl_weight > 0 else None)
        self.opt_D = make_optimizer(self.D, cfg.d_lr, cfg.betas, cfg.r1_interval if cfg.resolved_r1_gamma() > 0
                                    else None)
        self.progress = Progress(next_snap_nimg=self._kimg_to_nimg(cfg.snap_kimg),
                                 next_tick_nimg=self._kimg_to_nimg(cfg.tick_kimg))
        self.sampler = InfiniteSampler(len(dataset), seed=cfg.seed)
        self._tick_stats: dict[str, list[float]] = {}
        self._tick_start = (time.perf_counter(), 0)
        # Every rank draws its own latents and noise.
        torch.manual_seed(cfg.seed * 7919 + 1 + self.dist.rank)

    def _some_labels(self, n: int = 64) -> torch.Tensor | None:
        return torch.stack([self._label(i) for i in range(min(n, len(self.dataset)))]) if self.c_dim else None

    def _kimg_to_nimg(self, kimg: float) -> int:
        return max(int(round(kimg * 1000)), 1)

    # ------------------------------------------------------------------ one iteration

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self.sampler.take_batch(self.cfg.batch, self.dist.rank, self.dist.world_size)
        items = [self.dataset[i] for i in idx]
        img = torch.stack([im for im, _ in items]).to(self.device, torch.float32) / 127.5 - 1
        c = torch.stack([lab for _, lab in items]).to(self.device) if self.c_dim else None
        return img, c

    def _fake_inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn([n, self.G.z_dim], device=self.device)
        if not self.c_dim:
            return z, None
        idx = torch.randint(len(self.dataset), [n]).tolist()
        return z, torch.stack([self._label(i) for i in idx]).to(self.device)

    def _label(self, i: int) -> torch.Tensor:
        get_label = getattr(self.dataset, "get_label", None)
        return get_label(i) if get_label is not None else self.dataset[i][1]

    def _set_trainable(self, g: bool, d: bool) -> None:
        self.G.requires_grad_(g)
        for name, p in self.D.named_parameters():
            p.requires_grad_(d and name not in self.frozen)

    def _phase(self, module: nn.Module, opt: torch.optim.Optimizer, fn: Callable[[], dict]) -> dict:
        opt.zero_grad(set_to_none=True)
        stats = fn()
        distributed.average_gradients(module, self.dist)
        opt.step()
        return stats

    def step(self) -> dict[str, float]:
        """One iteration over the global batch; returns this rank's loss statistics."""
        cfg, step, n = self.cfg, self.progress.step, self.cfg.batch // self.dist.world_size
        real, real_c = self._real_batch()
        stats: dict[str, float] = {}
        self._set_trainable(True, False)
        stats.update(self._phase(self.G, self.opt_G, lambda: self.loss.g_main_phase(*self._fake_inputs(n))))
        if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
            stats.update(self._phase(self.G, self.opt_G,
                                     lambda: self.loss.g_pl_phase(*self._fake_inputs(n), gain=cfg.pl_interval)))
        distributed.sync_module(self.G.mapping, self.dist, average_buffers=True)
        self._set_trainable(False, True)
        real_logits = []

        def d_main():
            s, logits = self.loss.d_main_phase(real, real_c, *self._fake_inputs(n))
            real_logits.append(logits)
            return s
        stats.update(self._phase(self.D, self.opt_D, d_main))
        if self.loss.r1_gamma > 0 and step % cfg.r1_interval == 0:
            stats.update(self._phase(self.D, self.opt_D,
                                     lambda: self.loss.d_r1_phase(real, real_c, gain=cfg.r1_interval)))
        self._set_trainable(False, False)
        self._after_step(real_logits[0])
        return stats

    def _after_step(self, real_logits: torch.Tensor) -> None:
        cfg, prog = self.cfg, self.progress
        ema_nimg = cfg.resolved_ema_kimg() * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, prog.nimg * cfg.ema_rampup)
        update_ema(self.G_ema, self.G, 0.5 ** (cfg.batch / max(ema_nimg, 1e-8)))
        prog.nimg += cfg.batch
        prog.step += 1
        if self.ada is not None:
            # Every rank feeds the same (global) logits, so p stays identical across ranks.
            self.ada.update(distributed.gather_tensor(real_logits, self.dist))

    # ------------------------------------------------------------------ snapshots and logs

    def networks(self) -> Networks:
        return Networks(G_ema=self.G_ema, G=self.G, D=self.D, meta=dict(self.meta))

    def extras(self) -> dict[str, torch.Tensor]:
        out = {"pl_mean": self.loss.pl_mean}
        if self.augment_pipe is not None:
            out["augment_p"] = self.augment_pipe.p
        return out

    def save_snapshot(self) -> Path | None:
        """Write a snapshot (rank 0) with every rank's RNG state, then a sample grid and the
        metrics; the RNG is put back afterwards so that snapshots do not change the run."""
        prog = self.progress
        prog.sampler_epoch, prog.sampler_pos = self.sampler.epoch, self.sampler.pos
        prog.ada_sum, prog.ada_count = ada_state(self.ada)
        rng = checkpoint.capture_rng()
        states = distributed.gather_objects(rng, self.dist)
        path = None
        if self.dist.is_writer:
            path = checkpoint.save_snapshot(self.run_dir, self.networks(), {"G": self.opt_G, "D": self.opt_D},
                                            self.extras(), states, prog, self.cfg.to_json(),
                                            keep=self.cfg.keep_snapshots)
            self._write_samples()
            checkpoint.prune(self.run_dir, SAMPLES_GLOB, self.cfg.keep_snapshots)
            if self.metric_fn is not None:
                metrics = {"kimg": prog.nimg / 1000, **self.metric_fn(self.G_ema, prog.nimg)}
                self._append_jsonl(METRICS, metrics)
        checkpoint.restore_rng(*rng)
        distributed.barrier(self.dist)
        return path

    def grid_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fixed latents (seeds 0..N-1) and labels (data set items 0..N-1) of the sample grids."""
        n = self.cfg.grid_seeds
        z = latents.seeds_to_z(list(range(n)), self.G.z_dim, device=self.device)
        c = torch.stack([self._label(i % len(self.dataset)) for i in range(n)]).to(self.device) \
            if self.c_dim else None
        return z, c

    @torch.no_grad()
    def _write_samples(self) -> Path:
        z, c = self.grid_inputs()
        images = torch.cat([self.G_ema(z[i: i + 8], c[i: i + 8] if c is not None else None, noise_mode="const").cpu()
                            for i in range(0, len(z), 8)])
        cols = max(int(math.sqrt(len(z))), 1)
        path = self.run_dir / f"samples-{self.progress.nimg:09d}.png"
        needed = images[0].numel() * len(images)   # the raw 8-bit grid: a bound on its PNG
        with disk_space.disk_full_is_a_user_error(self.run_dir, path.name, needed):
            return render.save_grid(images, path, cols=cols)

    def _append_jsonl(self, name: str, record: dict) -> None:
        line = json.dumps(record) + "\n"
        # A full disk may cut the line: a torn last line is dropped on resume (_truncate_logs).
        with disk_space.disk_full_is_a_user_error(self.run_dir, name, len(line)):
            with open(self.run_dir / name, "a") as f:
                f.write(line)

    def _accumulate(self, stats: dict[str, float]) -> None:
        for k, v in stats.items():
            self._tick_stats.setdefault(k, []).append(v)

    def _log_tick(self) -> dict:
        now, prog = time.perf_counter(), self.progress
        t0, nimg0 = self._tick_start
        record = {"kimg": prog.nimg / 1000, "step": prog.step,
                  **{k: sum(v) / len(v) for k, v in sorted(self._tick_stats.items())},
                  "augment_p": float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0,
                  "kimg_per_s": (prog.nimg - nimg0) / 1000 / max(now - t0, 1e-9), "elapsed_s": prog.elapsed}
        if self.dist.is_writer:
            self._append_jsonl(LOG, record)
        self._tick_stats, self._tick_start = {}, (now, prog.nimg)
        return record

    # ------------------------------------------------------------------ resume and run

    def restore(self, snap: checkpoint.Snapshot) -> None:
        """Continue exactly where ``snap`` was taken: weights, optimisers, progress, RNGs."""
        for role, net in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            net.load_state_dict(snap.network_state(role))
        self.opt_G.load_state_dict(snap.optimizer_state("G"))
        self.opt_D.load_state_dict(snap.optimizer_state("D"))
        self.loss.pl_mean.copy_(snap.extra("pl_mean").reshape([]))
        if self.augment_pipe is not None and "extra.augment_p" in snap.tensors:
            self.augment_pipe.p.copy_(snap.extra("augment_p").reshape(self.augment_pipe.p.shape))
        self.meta = dict(snap.meta["meta"])
        self.progress = snap.progress
        set_ada_state(self.ada, self.progress.ada_sum, self.progress.ada_count, self.progress.step)
        self.sampler = InfiniteSampler(len(self.dataset), seed=self.cfg.seed, epoch=self.progress.sampler_epoch,
                                       pos=self.progress.sampler_pos)
        if self.dist.is_writer:
            self._truncate_logs(self.progress.nimg)
        checkpoint.restore_rng(*snap.rng(self.dist.rank))

    def _truncate_logs(self, nimg: int) -> None:
        """Drop log lines written after the snapshot by the run that died, and lines it tore
        (killed, or the disk filled, half way through a write)."""
        for name in (LOG, METRICS):
            path = self.run_dir / name
            if not path.exists():
                continue
            keep = [line for line in path.read_text(errors="replace").splitlines()
                    if (kimg := record_kimg(line)) is not None and kimg <= nimg / 1000 + 1e-9]
            text = "".join(line + "\n" for line in keep)
            with disk_space.disk_full_is_a_user_error(self.run_dir, name, len(text)), atomic_path(path) as tmp:
                tmp.write_text(text)

    def run(self, max_steps: int | None = None) -> None:
        """Train until ``cfg.kimg`` (or for ``max_steps`` iterations), with a tick line every
        ``tick_kimg`` and a snapshot every ``snap_kimg`` and at the end."""
        cfg, prog = self.cfg, self.progress
        total = self._kimg_to_nimg(cfg.kimg)
        bar = tqdm(total=total, initial=prog.nimg, unit="img", unit_scale=True, desc="train", dynamic_ncols=True,
                   disable=not (self.progress_bar and self.dist.is_writer))
        steps = 0
        self._tick_start = (time.perf_counter(), prog.nimg)
        while prog.nimg < total and (max_steps is None or steps < max_steps):
            t = time.perf_counter()
            self._accumulate(self.step())
            steps += 1
            bar.update(cfg.batch)
            done = prog.nimg >= total
            if prog.nimg >= prog.next_tick_nimg or done:
                while prog.next_tick_nimg <= prog.nimg:
                    prog.next_tick_nimg += self._kimg_to_nimg(cfg.tick_kimg)
                prog.elapsed += time.perf_counter() - t
                t = time.perf_counter()
                record = self._log_tick()
                bar.set_postfix_str(" ".join(f"{k.split('/')[-1]}={v:.3g}" for k, v in record.items()
                                             if k in ("loss/G", "loss/D", "augment_p", "kimg_per_s")))
            if prog.nimg >= prog.next_snap_nimg or done:
                while prog.next_snap_nimg <= prog.nimg:
                    prog.next_snap_nimg += self._kimg_to_nimg(cfg.snap_kimg)
                prog.elapsed += time.perf_counter() - t
                t = time.perf_counter()
                self.save_snapshot()
            prog.elapsed += time.perf_counter() - t
        bar.close()


def open_dataset(cfg: TrainingConfig):
    from .dataset import ImageDataset
    return ImageDataset(cfg.data, use_labels=cfg.use_labels, xflip=cfg.xflip)


def train(cfg: TrainingConfig | None, run_dir: str | Path, dataset=None, resume_run: bool = False,
          augment_pipe: nn.Module | None = None, metric_fn: MetricFn | None = None,
          dist: distributed.Dist | None = None, max_steps: int | None = None, kimg: float | None = None,
          progress_bar: bool = True, keep: int | None = None) -> Trainer:
    """Start a run in ``run_dir`` (which must not hold snapshots yet) or, with ``resume_run``,
    continue it from its latest snapshot using its saved ``training.json`` (``kimg``
    extends the run, ``keep`` changes how many snapshots and sample grids are kept). Temp files
    of writes that were killed are removed first."""
    run_dir = Path(run_dir)
    snap = None
    if resume_run:
        path = checkpoint.latest_snapshot(run_dir)
        if path is None or not (run_dir / TRAINING_JSON).exists():
            raise UserError(f"{run_dir} holds no snapshot to resume from")
        snap = checkpoint.load_snapshot(path)
        cfg = TrainingConfig.from_json((run_dir / TRAINING_JSON).read_text())
        cfg.resume = None  # the snapshot's weights replace whatever the run started from
    elif checkpoint.latest_snapshot(run_dir) is not None:
        raise UserError(f"{run_dir} already holds a run: continue it with --resume-run {run_dir} "
                        f"or choose another --out")
    if kimg is not None:
        cfg.kimg = kimg
    if keep is not None:
        cfg.keep_snapshots = keep
    dataset = dataset if dataset is not None else open_dataset(cfg)
    _check_dataset(cfg, dataset)
    trainer = Trainer(cfg, run_dir, dataset, augment_pipe=augment_pipe, metric_fn=metric_fn, dist=dist,
                      progress_bar=progress_bar)
    if trainer.dist.is_writer and run_dir.is_dir():
        checkpoint.remove_stale_temps(run_dir)
    if snap is not None:
        trainer.restore(snap)
    elif trainer.dist.is_writer:
        text = cfg.to_json()
        with disk_space.disk_full_is_a_user_error(run_dir, TRAINING_JSON, len(text)), \
                atomic_path(run_dir / TRAINING_JSON) as tmp:
            tmp.write_text(text)
    trainer.run(max_steps=max_steps)
    return trainer


def _check_dataset(cfg: TrainingConfig, dataset) -> None:
    img, label = dataset[0]
    if img.shape[-1] != cfg.resolution:
        raise UserError(f"the data set is {img.shape[-1]}² but the model is {cfg.resolution}²: "
                        f"resolution must match (resize the images with `stylegan-anime dataset`)")
    drawn = label.numel() == 0 and stores_label_names(cfg.g)   # a conditional run on pictures without labels
    if cfg.resume is None and label.numel() != cfg.g.c_dim and not drawn:
        raise UserError(f"the data set has {label.numel()} labels but the generator takes {cfg.g.c_dim}")
