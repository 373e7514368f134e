"""GAN-CLS, GAN-INT and conditioning augmentation (issue 21), and the D built for a resumed
generator that came without one."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from stylegan_anime import cli
from stylegan_anime.data.attributes import label_names
from stylegan_anime.errors import UserError
from stylegan_anime.io import loading
from stylegan_anime.io.formats import native
from stylegan_anime.metrics.classifier import label_groups
from stylegan_anime.networks import Discriminator, Generator, GeneratorConfig
from stylegan_anime.networks.mapping import MappingNetwork, kl_to_standard_normal
from stylegan_anime.training.config import TrainingConfig
from stylegan_anime.training.label_pairs import groups_for, interpolated_labels, mismatched_labels
from stylegan_anime.training.loop import Trainer
from stylegan_anime.training.loss import StyleGAN2Loss, TextMethods

from training_utils import BlobDataset, tiny_config, write_folder_dataset

NAMES = label_names()
GROUPS = label_groups(NAMES)


def random_labels(n: int, gen: torch.Generator) -> torch.Tensor:
    """n valid label vectors of the synthetic vocabulary: one value per categorical group, 0/1 binaries."""
    c = torch.zeros([n, len(NAMES)])
    for g in GROUPS:
        if g.binary:
            c[:, g.start] = (torch.rand(n, generator=gen) < 0.5).float()
        else:
            c[torch.arange(n), g.start + torch.randint(g.width, [n], generator=gen)] = 1.0
    return c


def assert_valid(c: torch.Tensor) -> None:
    assert bool(((c == 0) | (c == 1)).all())
    for g in GROUPS:
        if not g.binary:
            assert bool((c[:, g.start:g.start + g.width].sum(1) == 1).all()), g.name


class LabelLinearD(nn.Module):
    """A stand-in D with known logits: mean pixel + c·v; records the labels it is shown."""

    def __init__(self, c_dim: int):
        super().__init__()
        self.v = nn.Parameter(torch.linspace(-2, 2, c_dim))
        self.seen: list[torch.Tensor] = []

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        self.seen.append(c.detach().clone())
        return (img.mean([1, 2, 3]) + c @ self.v)[:, None]


def tiny_conditional_G(c_dim: int, cond_aug: bool = False) -> Generator:
    torch.manual_seed(0)
    return Generator(GeneratorConfig(img_resolution=8, z_dim=8, w_dim=8, c_dim=c_dim, mapping_layers=1,
                                     channel_base=32, channel_max=4, cond_aug=cond_aug))


# ----------------------------------------------------------------------------- GAN-CLS


@pytest.mark.parametrize("lam", [0.5, 0.2])
def test_gan_cls_d_loss_is_real_right_real_wrong_and_fake_right(lam):
    c_dim = len(NAMES)
    G, D = tiny_conditional_G(c_dim), LabelLinearD(c_dim)
    loss = StyleGAN2Loss(G, D, style_mixing=0.0, text=TextMethods(gan_cls=lam, groups=GROUPS))
    gen = torch.Generator().manual_seed(1)
    real, real_c = torch.rand([6, 3, 8, 8], generator=gen) * 2 - 1, random_labels(6, gen)
    z, c = torch.randn([6, 8], generator=gen), random_labels(6, gen)
    torch.manual_seed(5)
    stats, _ = loss.d_main_phase(real, real_c, z, c)
    fake_c, right_c, wrong_c = D.seen  # the phase's order: fake+right, real+right, real+wrong
    assert torch.equal(fake_c, c) and torch.equal(right_c, real_c)
    assert bool((wrong_c != real_c).any(1).all())
    # By hand: replay the phase's random draws (G's noise, then the wrong labels).
    torch.manual_seed(5)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c), noise_mode="random")
        wrong = mismatched_labels(real_c, GROUPS)
        s_r = real.mean([1, 2, 3]) + real_c @ D.v
        s_w = real.mean([1, 2, 3]) + wrong @ D.v
        s_f = fake.mean([1, 2, 3]) + c @ D.v
    assert torch.equal(wrong, wrong_c)
    sig = torch.sigmoid
    expected = -(sig(s_r).log() + (1 - lam) * (1 - sig(s_f)).log() + lam * (1 - sig(s_w)).log()).mean()
    assert stats["loss/D"] == pytest.approx(float(expected), rel=1e-5)
    if lam == 0.5:  # Reed et al.: log s_r + (log(1 - s_w) + log(1 - s_f)) / 2
        reed = -(sig(s_r).log() + ((1 - sig(s_w)).log() + (1 - sig(s_f)).log()) / 2).mean()
        assert stats["loss/D"] == pytest.approx(float(reed), rel=1e-5)
    # The gradient of the label weights: d/dv of the same expression.
    v = D.v.detach().clone().requires_grad_(True)
    r, w, f = (real.mean([1, 2, 3]) + real_c @ v, real.mean([1, 2, 3]) + wrong @ v, fake.mean([1, 2, 3]) + c @ v)
    (F.softplus(-r).mean() + (1 - lam) * F.softplus(f).mean() + lam * F.softplus(w).mean()).backward()
    assert torch.allclose(D.v.grad, v.grad, atol=1e-6)


def test_without_gan_cls_d_never_sees_wrong_labels():
    c_dim = len(NAMES)
    G, D = tiny_conditional_G(c_dim), LabelLinearD(c_dim)
    gen = torch.Generator().manual_seed(2)
    real_c = random_labels(4, gen)
    StyleGAN2Loss(G, D, style_mixing=0.0).d_main_phase(torch.zeros([4, 3, 8, 8]), real_c,
                                                       torch.randn([4, 8]), real_c)
    assert len(D.seen) == 2 and all(torch.equal(s, real_c) for s in D.seen)


def test_mismatched_labels_differ_and_keep_one_hot_groups():
    gen = torch.Generator().manual_seed(3)
    c = random_labels(200, gen)
    c[100:150] = c[0]  # many identical rows: "another image's labels" would not be wrong for them
    wrong = mismatched_labels(c, GROUPS, gen)
    assert bool((wrong != c).any(1).all())
    assert_valid(wrong)
    rows = {tuple(r.tolist()) for r in c}
    from_batch = [tuple(w.tolist()) in rows for w in wrong]
    changed_groups = [sum(bool((w[g.start:g.start + g.width] != r[g.start:g.start + g.width]).any()) for g in GROUPS)
                      for w, r in zip(wrong, c)]
    # Both kinds occur; a row not taken from the batch differs in exactly one attribute.
    assert 40 < sum(from_batch) < 160
    assert all(n == 1 for n, b in zip(changed_groups, from_batch) if not b)


def test_plain_class_labels_stay_one_hot_when_changed():
    c = torch.eye(3)[torch.tensor([0, 1, 2, 0, 0, 0])]
    groups = groups_for(["c0", "c1", "c2"], 3, c)
    wrong = mismatched_labels(c, groups, torch.Generator().manual_seed(4), p_other=0.0)
    assert bool((wrong.sum(1) == 1).all()) and bool((wrong != c).any(1).all())


# ----------------------------------------------------------------------------- GAN-INT


def test_gan_int_labels_lie_on_the_segment_between_two_batch_images():
    gen = torch.Generator().manual_seed(5)
    c = random_labels(16, gen)
    beta = 0.3
    out = interpolated_labels(c, beta, gen)
    assert len({tuple(r.tolist()) for r in c}) == 16  # distinct rows, so each partner is unique
    partners = []
    for i, row in enumerate(out):  # row i = beta·c_i + (1 - beta)·c_j for one batch image j
        hits = [j for j in range(16) if torch.allclose(row, beta * c[i] + (1 - beta) * c[j])]
        assert len(hits) == 1, i
        partners += hits
    assert sorted(partners) == list(range(16))  # a permutation: every image is used once as c2
    assert not torch.equal(out, c)


def test_g_trains_on_interpolated_labels_with_gan_int():
    c_dim = len(NAMES)
    G, D = tiny_conditional_G(c_dim), LabelLinearD(c_dim)
    loss = StyleGAN2Loss(G, D, style_mixing=0.0, text=TextMethods(gan_int=1.0, gan_int_beta=0.25))
    gen = torch.Generator().manual_seed(6)
    c = random_labels(8, gen)
    stats = loss.g_main_phase(torch.randn([8, 8], generator=gen), c)
    assert len(D.seen) == 2 and torch.equal(D.seen[0], c)
    interp = D.seen[1]
    for i, row in enumerate(interp):  # row i is 0.25·c_i + 0.75·c_j for some j
        assert any(torch.allclose(row, 0.25 * c[i] + 0.75 * c[j]) for j in range(8)), i
    assert "loss/G_int" in stats and stats["loss/G_int"] > 0


# ----------------------------------------------------------------------------- conditioning augmentation


def test_ca_kl_term_is_the_closed_form_and_zero_for_the_standard_normal():
    gen = torch.Generator().manual_seed(7)
    mu, logvar = torch.randn([5, 12], generator=gen), torch.randn([5, 12], generator=gen)
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                                  torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    assert float(kl_to_standard_normal(mu, logvar)) == pytest.approx(float(reference), rel=1e-5)
    assert float(kl_to_standard_normal(torch.zeros(5, 12), torch.zeros(5, 12))) == 0.0


def test_ca_samples_have_the_embedding_mean_and_sigma():
    torch.manual_seed(0)
    m = MappingNetwork(8, 3, 8, num_ws=2, num_layers=1, cond_aug=True)
    c = torch.eye(3)[[1]].repeat(20000, 1)
    with torch.no_grad():
        mu, logvar = m.embedding_stats(c[:1])
        samples = m.label_embedding(c, ca_sample=True)
    assert torch.allclose(samples.mean(0), mu[0], atol=0.05 * float(logvar.mul(0.5).exp().max()))
    assert torch.allclose(samples.std(0), logvar[0].mul(0.5).exp(), rtol=0.05)
    with torch.no_grad():
        assert torch.equal(m.label_embedding(c[:4]), mu.repeat(4, 1))


def test_ca_inference_uses_the_mean_and_ignores_sigma():
    c_dim = len(NAMES)
    G = tiny_conditional_G(c_dim, cond_aug=True).eval()
    gen = torch.Generator().manual_seed(8)
    z, c = torch.randn([3, 8], generator=gen), random_labels(3, gen)
    first = G(z, c, noise_mode="const")
    assert torch.equal(first, G(z, c, noise_mode="const"))
    assert not torch.equal(G(z, c, noise_mode="const", ca_sample=True), G(z, c, noise_mode="const", ca_sample=True))
    half = G.mapping.embed.weight.shape[0] // 2
    with torch.no_grad():  # a wider sigma changes nothing at inference
        G.mapping.embed.weight[half:] += 3.0
        G.mapping.embed.bias[half:] += 3.0
    assert torch.equal(first, G(z, c, noise_mode="const"))


def test_g_loss_adds_the_weighted_kl_term_with_cond_aug():
    c_dim = len(NAMES)
    G, D = tiny_conditional_G(c_dim, cond_aug=True), LabelLinearD(c_dim)
    gen = torch.Generator().manual_seed(9)
    c = random_labels(4, gen)
    stats = StyleGAN2Loss(G, D, style_mixing=0.0, text=TextMethods(ca_kl=2.0)).g_main_phase(torch.randn([4, 8]), c)
    expected = kl_to_standard_normal(*G.mapping.embedding_stats(c)).detach()
    assert stats["loss/ca_kl"] == pytest.approx(float(expected), rel=1e-6) and stats["loss/ca_kl"] > 0
    assert G.mapping.embed.weight.grad is not None  # the KL term reaches the embedding


def test_a_ca_generator_round_trips_and_old_files_load_with_ca_off(tmp_path):
    G = tiny_conditional_G(len(NAMES), cond_aug=True).eval()
    z, c = torch.randn([2, 8]), random_labels(2, torch.Generator().manual_seed(10))
    back = loading.load(native.save(G, tmp_path / "ca.safetensors"))
    assert back.cfg.cond_aug and torch.allclose(back(z, c), G(z, c), atol=1e-5)  # the loader's own op path
    # A file written before the field existed: its config JSON has no cond_aug.
    plain = tiny_conditional_G(len(NAMES)).eval()
    path = native.save(plain, tmp_path / "old.safetensors", write_sidecar=False)
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    configs = json.loads(meta["configs"])
    for cfg in configs.values():
        cfg.pop("cond_aug", None)
    meta["configs"] = json.dumps(configs)
    save_file(tensors, str(path), metadata=meta)
    old = loading.load(path)
    assert not old.cfg.cond_aug and torch.allclose(old(z, c), plain(z, c), atol=1e-5)
    training = json.loads(TrainingConfig().to_json())
    for key in ("gan_cls", "gan_int", "gan_int_beta", "cond_aug", "ca_kl"):
        training.pop(key)
    training["g"].pop("cond_aug")
    cfg = TrainingConfig.from_dict(training)
    assert (cfg.gan_cls, cfg.gan_int, cfg.cond_aug, cfg.g.cond_aug) == (0.0, 0.0, False, False)


# ----------------------------------------------------------------------------- training options


def test_cond_aug_option_builds_the_generator_with_it(tmp_path):
    ds = BlobDataset(n=8, c_dim=3)
    trainer = Trainer(tiny_config(c_dim=3, cond_aug=True, gan_cls=0.5, gan_int=1.0), tmp_path / "r", ds,
                      progress_bar=False)
    assert trainer.G.cfg.cond_aug and trainer.cfg.g.cond_aug and trainer.G_ema.mapping.cond_aug
    assert trainer.loss.text.groups == groups_for(None, 3, ds.labels)  # one-hot classes: one group
    assert (trainer.loss.text.gan_cls, trainer.loss.text.gan_int) == (0.5, 1.0)
    assert TrainingConfig.from_json(trainer.cfg.to_json()).g.cond_aug


def test_text_methods_on_unlabelled_data_or_out_of_range_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="labelled data set"):
        Trainer(tiny_config(gan_cls=0.5), tmp_path / "r", BlobDataset(n=4), progress_bar=False)
    with pytest.raises(UserError, match="--gan-cls must be in"):
        tiny_config(gan_cls=1.5)


def test_cli_text_method_options_reach_the_run_and_bad_values_are_one_line(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", BlobDataset(n=4, c_dim=2))
    tiny = ["--cbase", "128", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map", "2", "--batch", "4",
            "--quiet", "--augment", "off"]
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--gan-cls", "0.5", "--gan-int",
                     "1", "--gan-int-beta", "0.3", "--cond-aug", "--kimg", "0.004", *tiny]) == 0
    cfg = json.loads((tmp_path / "r" / "training.json").read_text())
    assert (cfg["gan_cls"], cfg["gan_int"], cfg["gan_int_beta"], cfg["cond_aug"], cfg["g"]["cond_aug"]) == \
        (0.5, 1.0, 0.3, True, True)
    logged = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss/ca_kl", "loss/G_int", "scores/wrong"} <= set(logged)
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "s"), "--gan-cls", "2", *tiny]) == 2
    err = capsys.readouterr().err
    assert "--gan-cls must be in [0, 1]" in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- D widths on resume


def test_a_resumed_generator_without_d_gets_a_d_of_its_widths(tmp_path, capsys):
    cfg = tiny_config(c_dim=2)
    g_cfg = GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, c_dim=2, mapping_layers=2, channel_base=64,
                            channel_max=8)
    path = native.save(Generator(g_cfg), tmp_path / "g_only.safetensors")
    trainer = Trainer(tiny_config(c_dim=2, resume=str(path)), tmp_path / "r", BlobDataset(c_dim=2),
                      progress_bar=False)
    assert (trainer.D.cfg.channel_base, trainer.D.cfg.channel_max) == (64, 8)
    assert trainer.D.cfg.c_dim == 2 and trainer.cfg.d.channel_base == 64
    assert max(p.shape[0] for p in trainer.D.parameters() if p.ndim == 4) == 8  # widest conv: G's 8
    wide = sum(p.numel() for p in Discriminator(cfg.d).parameters())
    assert sum(p.numel() for p in trainer.D.parameters()) < wide
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no discriminator" in err[0] and "channel base 64, max 8" in err[0]


def test_a_resumed_file_with_a_d_keeps_it_and_says_nothing(tmp_path, capsys):
    cfg = tiny_config(c_dim=2)
    torch.manual_seed(1)
    nets = native.Networks(G_ema=Generator(cfg.g), G=Generator(cfg.g), D=Discriminator(cfg.d), meta={})
    path = native.save(nets, tmp_path / "full.safetensors")
    trainer = Trainer(tiny_config(c_dim=2, resume=str(path)), tmp_path / "r", BlobDataset(c_dim=2),
                      progress_bar=False)
    for k, v in nets.D.state_dict().items():
        assert torch.equal(trainer.D.state_dict()[k], v), k
    assert "no discriminator" not in capsys.readouterr().err


def test_gan_cls_teaches_d_to_score_wrong_labels_below_right_ones():
    cfg = tiny_config(c_dim=4)
    ds = BlobDataset(n=8, c_dim=4, seed=3)
    real, c = ds.images.float() / 127.5 - 1, ds.labels
    groups = groups_for(None, 4, c)
    wrong = mismatched_labels(c, groups, torch.Generator().manual_seed(1), p_other=0.0)
    margins = {}
    for lam in (0.0, 0.5):
        torch.manual_seed(0)
        G, D = Generator(cfg.g).requires_grad_(False), Discriminator(cfg.d)
        loss = StyleGAN2Loss(G, D, style_mixing=0.0, text=TextMethods(gan_cls=lam, groups=groups))
        opt = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.0, 0.99))
        for _ in range(30):
            opt.zero_grad()
            loss.d_main_phase(real, c, torch.randn(8, 16), c)
            opt.step()
        with torch.no_grad():
            margins[lam] = float((D(real, c) - D(real, wrong)).mean())
    # Plain D has no reason to tell right from wrong labels on real images; the matching-aware one does.
    assert margins[0.5] > 1.0 and margins[0.5] > margins[0.0] + 1.0, margins


def test_a_plain_conditional_generator_resumed_with_cond_aug_draws_as_before(tmp_path, capsys):
    """--cond-aug on a snapshot trained without it: μ is the old embedding (same images at inference),
    σ starts small and equal for every label, and the KL term sees it."""
    from stylegan_anime.training.loop import CA_WARM_SIGMA, with_conditioning_augmentation
    plain = tiny_conditional_G(len(NAMES))
    ca = with_conditioning_augmentation(plain)
    assert ca.cfg.cond_aug and ca.mapping.cond_aug and not plain.cfg.cond_aug
    gen = torch.Generator().manual_seed(9)
    z, c = torch.randn([4, 8], generator=gen), random_labels(4, gen)
    # Equal to float32 rounding, not bitwise: the embedding's product with twice the rows may take another
    # BLAS kernel (it does on AMD EPYC: 1.7e-6 apart).
    images = plain(z, c, noise_mode="const")
    torch.testing.assert_close(ca(z, c, noise_mode="const"), images, atol=1e-6 * images.abs().max().item(), rtol=1e-5)
    mu, logvar = ca.mapping.embedding_stats(c)
    torch.testing.assert_close(mu, plain.mapping.embedding_stats(c)[0])
    torch.testing.assert_close(logvar.mul(0.5).exp(), torch.full_like(logvar, CA_WARM_SIGMA))
    ds = BlobDataset(n=8, c_dim=3)
    g3 = GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, c_dim=3, mapping_layers=2, channel_base=128,
                         channel_max=16)
    path = native.save(Generator(g3), tmp_path / "plain3.safetensors")
    trainer = Trainer(tiny_config(c_dim=3, cond_aug=True, resume=str(path)), tmp_path / "r", ds, progress_bar=False)
    assert trainer.G.mapping.cond_aug and trainer.G_ema.mapping.cond_aug
    assert "without conditioning augmentation" in capsys.readouterr().err
    stats = trainer.loss.g_main_phase(torch.randn([4, 16]), ds.labels[:4])
    assert stats["loss/ca_kl"] > 0
