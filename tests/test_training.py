"""Training loop: losses learn, regularisers' gradients, exact resume, FreezeD, configs."""
from __future__ import annotations

import json

import pytest
import torch

from stylegan_anime.ops import kernels
from stylegan_anime.errors import UserError
from stylegan_anime.io.formats import native
from stylegan_anime.networks import Discriminator, Generator
from stylegan_anime.training import checkpoint
from stylegan_anime.training.config import TrainingConfig
from stylegan_anime.training.loop import Trainer, make_optimizer, train
from stylegan_anime.training.loss import StyleGAN2Loss
from stylegan_anime.training.sampler import InfiniteSampler

from training_utils import BlobDataset, tiny_config


def _d_loss_on(trainer: Trainer, real: torch.Tensor, z: torch.Tensor) -> float:
    with torch.no_grad():
        fake = trainer.G_ema.synthesis(trainer.G_ema.mapping(z, None), noise_mode="const")
        real_logits, fake_logits = trainer.D(real), trainer.D(fake)
    return float(torch.nn.functional.softplus(-real_logits).mean() + torch.nn.functional.softplus(fake_logits).mean())


def test_a_few_steps_lower_the_discriminator_loss_on_a_fixed_batch(tmp_path):
    ds = BlobDataset(n=8)
    trainer = Trainer(tiny_config(r1_interval=4), tmp_path, ds, progress_bar=False)
    real = ds.images[:8].float() / 127.5 - 1
    z = torch.randn([8, 16], generator=torch.Generator().manual_seed(5))
    before = _d_loss_on(trainer, real, z)
    for _ in range(12):
        trainer.step()
    after = _d_loss_on(trainer, real, z)
    assert before == pytest.approx(2 * torch.nn.functional.softplus(torch.tensor(0.0)).item(), abs=0.3)
    assert after < before - 0.05


def test_lazy_regularisation_corrects_adam_lr_and_betas():
    opt = make_optimizer(torch.nn.Linear(2, 2), lr=0.0025, betas=(0.0, 0.99), reg_interval=16)
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert group["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert make_optimizer(torch.nn.Linear(2, 2), 0.0025, (0.0, 0.99), None).param_groups[0]["lr"] == 0.0025


def test_default_r1_gamma_follows_the_published_heuristic():
    cfg = tiny_config(res=64, batch=16)
    assert cfg.resolved_r1_gamma() == pytest.approx(0.0002 * 64 ** 2 / 16)
    assert tiny_config(r1_gamma=3.0).resolved_r1_gamma() == 3.0


def _reg_grads(G, D, real, z, monkeypatch, ref: bool) -> dict[str, torch.Tensor]:
    if ref:
        monkeypatch.setattr(kernels, "upfirdn2d", kernels.upfirdn2d_ref)
        monkeypatch.setattr(kernels, "bias_act", kernels.bias_act_ref)
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0, style_mixing=0.0, pl_batch_shrink=1)
    for p in list(G.parameters()) + list(D.parameters()):
        p.grad = None
    torch.manual_seed(0)
    loss.d_r1_phase(real, None, gain=1.0)
    loss.g_pl_phase(z, None, gain=1.0)
    monkeypatch.undo()
    return {n: p.grad.clone() for n, p in list(G.named_parameters()) + list(D.named_parameters())
            if p.grad is not None}


def test_r1_and_path_length_gradients_match_the_reference_ops(monkeypatch):
    cfg = tiny_config()
    torch.manual_seed(3)
    G, D = Generator(cfg.g), Discriminator(cfg.d)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    real = torch.rand([4, 3, 16, 16]) * 2 - 1
    z = torch.randn([4, 16])
    default = _reg_grads(G, D, real, z, monkeypatch, ref=False)
    reference = _reg_grads(G, D, real, z, monkeypatch, ref=True)
    assert default.keys() == reference.keys()
    assert any(k.startswith("synthesis.") for k in default) and any(k.startswith("b16.") for k in default)
    for k in default:
        torch.testing.assert_close(default[k], reference[k], rtol=1e-4, atol=1e-6, msg=k)
    assert all(torch.isfinite(g).all() for g in default.values())
    assert sum(g.abs().sum() for g in default.values()) > 0


def _all_tensors(path) -> dict[str, torch.Tensor]:
    snap = checkpoint.load_snapshot(path)
    return {k: v for k, v in snap.tensors.items() if not k.startswith("rng.")}


def test_a_stopped_run_resumes_exactly_like_an_uninterrupted_run(tmp_path):
    ds = BlobDataset()
    cfg = dict(kimg=0.024, augment="ada", ada_interval=1, ada_kimg=0.05)
    full = train(tiny_config(**cfg), tmp_path / "full", dataset=ds, progress_bar=False)
    # Stop one step after the first snapshot (at 8 images): that step's work is lost, as after a kill.
    train(tiny_config(**cfg), tmp_path / "cut", dataset=ds, progress_bar=False, max_steps=3)
    assert checkpoint.load_snapshot(checkpoint.latest_snapshot(tmp_path / "cut")).progress.nimg == 8
    resumed = train(None, tmp_path / "cut", dataset=ds, resume_run=True, progress_bar=False)
    a = _all_tensors(checkpoint.latest_snapshot(tmp_path / "full"))
    b = _all_tensors(checkpoint.latest_snapshot(tmp_path / "cut"))
    assert a.keys() == b.keys()
    assert any(k.startswith("opt.G.") for k in a) and "extra.pl_mean" in a
    assert 0 < float(a["extra.augment_p"]) < 1  # ADA moved p, and resumed with it
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert full.progress.nimg == resumed.progress.nimg == 24
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.004, 0.008, 0.012, 0.016, 0.02, 0.024]


def test_snapshots_keep_two_files_a_latest_pointer_a_grid_and_load_as_weights(tmp_path):
    ds = BlobDataset()
    train(tiny_config(kimg=0.024, snap_kimg=0.008), tmp_path, dataset=ds, progress_bar=False)
    snaps = sorted(p.name for p in tmp_path.glob("snapshot-*.safetensors"))
    assert snaps == ["snapshot-000000016.safetensors", "snapshot-000000024.safetensors"]
    assert json.loads((tmp_path / "latest.json").read_text())["snapshot"] == snaps[-1]
    # Sample grids are pruned like snapshots: the newest two.
    assert sorted(p.name for p in tmp_path.glob("samples-*.png")) == ["samples-000000016.png", "samples-000000024.png"]
    nets = native.load(tmp_path / snaps[-1])
    assert nets.G is not None and nets.D is not None
    assert TrainingConfig.from_json((tmp_path / "training.json").read_text()).g == nets.G_ema.cfg


def test_freezed_discriminator_blocks_do_not_change(tmp_path):
    trainer = Trainer(tiny_config(freezed=1), tmp_path, BlobDataset(), progress_bar=False)
    before = {n: p.detach().clone() for n, p in trainer.D.named_parameters()}
    for _ in range(2):
        trainer.step()
    for n, p in trainer.D.named_parameters():
        assert torch.equal(p, before[n]) == n.startswith("b16."), n


def test_resume_from_a_model_of_another_resolution_says_so(tmp_path):
    G = Generator(tiny_config(res=32).g)
    native.save(G, tmp_path / "m32.safetensors")
    cfg = tiny_config(resume=str(tmp_path / "m32.safetensors"))
    with pytest.raises(UserError, match="32² model but the data set is 16²"):
        train(cfg, tmp_path / "run", dataset=BlobDataset(), progress_bar=False)


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    ds = BlobDataset()
    first = train(tiny_config(kimg=0.008), tmp_path / "a", dataset=ds, progress_bar=False)
    src = checkpoint.latest_snapshot(tmp_path / "a")
    trainer = Trainer(tiny_config(resume=str(src), seed=9), tmp_path / "b", ds, progress_bar=False)
    for k, v in first.G.state_dict().items():
        assert torch.equal(trainer.G.state_dict()[k], v), k
    for k, v in first.D.state_dict().items():
        assert torch.equal(trainer.D.state_dict()[k], v), k


def test_a_run_folder_with_snapshots_is_not_overwritten(tmp_path):
    train(tiny_config(kimg=0.008), tmp_path, dataset=BlobDataset(), progress_bar=False)
    with pytest.raises(UserError, match="--resume-run"):
        train(tiny_config(kimg=0.008), tmp_path, dataset=BlobDataset(), progress_bar=False)


def test_sampler_resumes_mid_epoch_and_splits_batches_across_ranks():
    a = InfiniteSampler(10, seed=1)
    first = a.take(7)
    b = InfiniteSampler(10, seed=1, epoch=a.epoch, pos=a.pos)
    assert a.take(9) == b.take(9)
    assert sorted(first + InfiniteSampler(10, seed=1).take(10)[7:]) == list(range(10))
    s0, s1 = InfiniteSampler(10, seed=2), InfiniteSampler(10, seed=2)
    whole = InfiniteSampler(10, seed=2).take(4)
    assert s0.take_batch(4, 0, 2) + s1.take_batch(4, 1, 2) == whole


def test_training_config_round_trips_through_json():
    cfg = tiny_config(c_dim=3, freezed=2, r1_gamma=0.5)
    assert TrainingConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(UserError, match="augment"):
        tiny_config(augment="maybe")


def test_fp16_settings_are_ignored_on_the_cpu():
    cfg = tiny_config()
    torch.manual_seed(0)
    G32, D32 = Generator(cfg.g), Discriminator(cfg.d)
    g16 = type(cfg.g).from_dict({**cfg.g.to_dict(), "num_fp16_res": 2})
    d16 = type(cfg.d).from_dict({**cfg.d.to_dict(), "num_fp16_res": 2})
    G16, D16 = Generator(g16), Discriminator(d16)
    G16.load_state_dict(G32.state_dict())
    D16.load_state_dict(D32.state_dict())
    assert any(b.use_fp16 for b in G16.synthesis.blocks()) and D16.b16.use_fp16
    z = torch.randn([4, 16])
    img = G16(z)
    assert img.dtype == torch.float32 and torch.equal(img, G32(z))
    assert torch.equal(D16(img), D32(img))
