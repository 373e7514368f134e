"""The label guide: a frozen attribute classifier's cross-entropy on G's images joins G's loss."""
from __future__ import annotations

import json

import pytest
import torch

from stylegan_anime import cli
from stylegan_anime.errors import UserError
from stylegan_anime.networks import Generator, GeneratorConfig
from stylegan_anime.metrics.classifier import AttributeClassifier, ClassifierConfig, save_classifier
from stylegan_anime.training.label_guide import LabelGuide
from stylegan_anime.training.loop import Trainer, train
from stylegan_anime.training.loss import StyleGAN2Loss

from test_text_methods import NAMES, LabelLinearD, random_labels, tiny_conditional_G
from training_utils import BlobDataset, tiny_config, write_folder_dataset


def tiny_classifier(names=NAMES, seed: int = 0, feature_dim: int = 8) -> AttributeClassifier:
    torch.manual_seed(seed)
    return AttributeClassifier(ClassifierConfig(label_names=list(names), resolution=8, channel_base=8,
                                                channel_max=8, feature_dim=feature_dim))


class LabelledBlobs(BlobDataset):
    """Blob images with valid labels of the synthetic vocabulary and its names."""

    def __init__(self, n: int = 8, res: int = 16):
        super().__init__(n=n, res=res)
        self.labels = random_labels(n, torch.Generator().manual_seed(1))
        self.c_dim, self.label_names = len(NAMES), list(NAMES)


def test_shifted_images_are_a_translation_with_replicated_edges():
    guide = LabelGuide(tiny_classifier(), max_shift=2)
    img = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = guide.shifted(img)
        # Recover the shift from one pixel well inside, then check every interior pixel agrees.
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(out[..., 2:6, 2:6], img[..., 2 + dy:6 + dy, 2 + dx:6 + dx])]
        assert len(matches) == 1
        seen.add(matches[0])
        dy, dx = matches[0]
        assert torch.equal(out[..., 0, 0], img[..., max(dy, 0), max(dx, 0)])  # the corner is replicated
    assert len(seen) > 10  # shifts vary from call to call
    assert torch.equal(LabelGuide(tiny_classifier(), max_shift=0).shifted(img), img)


def test_guide_loss_is_the_weighted_cross_entropy_of_the_classifier():
    model = tiny_classifier()
    img = torch.rand([6, 3, 8, 8]) * 2 - 1
    c = random_labels(6, torch.Generator().manual_seed(2))
    expected = model.loss(model(img), c)
    assert torch.allclose(LabelGuide(model, weight=0.3, max_shift=0).loss(img, c), 0.3 * expected)


def test_g_step_adds_the_guide_term_and_leaves_the_classifier_alone():
    G, D = tiny_conditional_G(len(NAMES)), LabelLinearD(len(NAMES))
    guide = LabelGuide(tiny_classifier(), weight=2.0)
    before = {k: v.clone() for k, v in guide.classifier.state_dict().items()}
    loss = StyleGAN2Loss(G, D, style_mixing=0.0, label_guide=guide)
    gen = torch.Generator().manual_seed(3)
    stats = loss.g_main_phase(torch.randn([4, 8], generator=gen), random_labels(4, gen))
    assert stats["loss/G_label"] > 0
    assert all(p.grad is None for p in guide.classifier.parameters())
    assert all(torch.equal(v, before[k]) for k, v in guide.classifier.state_dict().items())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.synthesis.parameters())


def test_training_g_on_the_guide_alone_teaches_it_the_labels():
    """The gradient points the right way: G optimised only through the guide makes the classifier
    read the labels it was asked for (an untrained classifier is still a fixed function; its small
    logits bound how low the loss can go, from ~1.10 to ~0.69 here)."""
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=8, z_dim=8, w_dim=8, c_dim=len(NAMES), mapping_layers=1,
                                  channel_base=32, channel_max=8))
    guide = LabelGuide(tiny_classifier(seed=4, feature_dim=32), max_shift=1)
    gen = torch.Generator().manual_seed(5)
    z, c = torch.randn([16, 8], generator=gen), random_labels(16, gen)
    opt = torch.optim.Adam(G.parameters(), lr=0.01)

    def guide_loss():
        return guide.classifier.loss(guide.classifier(G(z, c, noise_mode="const")), c)

    first = guide_loss().item()
    for _ in range(150):
        opt.zero_grad()
        guide.loss(G(z, c, noise_mode="const"), c).backward()
        opt.step()
    assert guide_loss().item() < 0.75 * first


def test_a_run_with_a_guide_logs_its_term_and_continues_with_it(tmp_path):
    path = save_classifier(tiny_classifier(), tmp_path / "guide.safetensors")
    cfg = tiny_config(c_dim=len(NAMES), label_guide=str(path), label_guide_weight=0.5)
    trainer = train(cfg, tmp_path / "r", dataset=LabelledBlobs(), progress_bar=False)
    assert trainer.loss.label_guide is not None and trainer.loss.label_guide.weight == 0.5
    again = train(None, tmp_path / "r", dataset=LabelledBlobs(), resume_run=True, kimg=0.024, progress_bar=False)
    assert again.loss.label_guide is not None and again.loss.label_guide.weight == 0.5
    logged = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[-1])
    assert logged["loss/G_label"] > 0
    saved = json.loads((tmp_path / "r" / "training.json").read_text())
    assert (saved["label_guide"], saved["label_guide_weight"]) == (str(path), 0.5)


def test_a_guide_of_another_label_layout_or_an_unconditional_run_is_a_user_error(tmp_path):
    other = save_classifier(tiny_classifier(names=NAMES[:-1] + ["cat_ears"]), tmp_path / "other.safetensors")
    with pytest.raises(UserError, match="are not the network's"):
        Trainer(tiny_config(c_dim=len(NAMES), label_guide=str(other)), tmp_path / "r", LabelledBlobs(),
                progress_bar=False)
    with pytest.raises(UserError, match="needs a conditional model"):
        Trainer(tiny_config(label_guide=str(other)), tmp_path / "s", BlobDataset(n=4), progress_bar=False)
    with pytest.raises(UserError, match="--label-guide-weight"):
        tiny_config(label_guide_weight=-1)


def test_cli_label_guide_option_reaches_the_run_and_a_missing_file_is_one_line(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", BlobDataset(n=4, c_dim=2))
    tiny = ["--cbase", "128", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map", "2", "--batch", "4",
            "--quiet", "--augment", "off", "--kimg", "0.004"]
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--label-guide",
                     str(tmp_path / "nope.safetensors"), *tiny]) == 2
    err = capsys.readouterr().err
    assert "nope.safetensors" in err and len(err.strip().splitlines()) == 1
