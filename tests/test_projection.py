"""Projection: recovering the generator's own images, saved latents, the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.editing import Projection, ProjectionConfig, load_target, project
from stylegan_anime.editing.projection import ProjectionLoss, learning_rate, w_noise_std, w_statistics
from stylegan_anime.errors import UserError
from stylegan_anime.io.formats.native import Networks
from stylegan_anime.latents.files import load_latent, save_latent

from conftest import torch_threads


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Hundreds of tiny forward/backward passes: thread hand-offs cost more than they save, and on a
    # loaded machine two spinning OpenMP threads make each pass ~50x slower.
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def quiet_G():
    """The small test generator with noise strengths like a trained network's (0.01-0.06, not 0.1-0.6):
    with the fixture's strong noise the image is mostly noise and no w explains it."""
    from conftest import randomize_buffers, small_g_config
    torch.manual_seed(0)
    G = randomize_buffers(sa.Generator(small_g_config())).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.mul_(0.1)
    return G


def known_image(G, seed: int = 1, psi: float = 0.5):
    """(ws [1, num_ws, w_dim], image [1, 3, R, R] clamped to [-1, 1] as a saved picture would be)."""
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z, psi=psi)
        return ws, G.synthesis(ws).clamp(-1, 1)


# Stated figures: 300 steps on the 32² test generator, target from seed 1 at psi 0.5.
STEPS = 300
MIN_PSNR_WPLUS = 25.0


@pytest.fixture(scope="module")
def projections(quiet_G):
    _, target = known_image(quiet_G)
    return {mode: project(quiet_G, target, ProjectionConfig(steps=STEPS, mode=mode)) for mode in ("w", "w+")}


def test_projection_recovers_the_generators_own_image(projections):
    assert projections["w+"].psnr >= MIN_PSNR_WPLUS
    assert projections["w+"].psnr >= projections["w"].psnr
    # Both start at w_avg, far from the target, and end far closer.
    for r in projections.values():
        assert r.psnrs[-1] > r.psnrs[0] + 10
        assert len(r.losses) == STEPS


def test_saved_latent_reloads_to_the_same_image(projections, quiet_G, tmp_path):
    for mode, r in projections.items():
        latent = load_latent(save_latent(r.latent, tmp_path / f"{mode}.npz"))
        assert latent.w.shape == (quiet_G.num_ws, quiet_G.w_dim)
        with torch.no_grad():
            img = quiet_G.synthesis(latent.ws(quiet_G), noise=latent.noise)
        torch.testing.assert_close(img, r.image, rtol=0, atol=1e-5)
    w = projections["w"].latent.w
    assert torch.equal(w, w[:1].expand_as(w))  # w mode: one w for every layer


def test_without_noise_optimisation_the_w_alone_reproduces_the_projection(quiet_G):
    _, target = known_image(quiet_G)
    r = project(quiet_G, target, ProjectionConfig(steps=20, optimize_noise=False, w_avg_samples=500))
    with torch.no_grad():
        img = quiet_G.synthesis(r.latent.ws(quiet_G), noise_mode="const")
    torch.testing.assert_close(img, r.image, rtol=0, atol=1e-6)
    assert r.psnrs[-1] > r.psnrs[0]


def test_conditional_network_needs_labels():
    from conftest import small_g_config
    torch.manual_seed(0)
    G = sa.Generator(small_g_config(c_dim=3)).eval()
    c = torch.tensor([[0.0, 1.0, 0.0]])
    with torch.no_grad():
        target = G(torch.randn([1, G.z_dim]), c).clamp(-1, 1)
    with pytest.raises(UserError, match="conditional: projection needs labels c of size 3"):
        project(G, target, ProjectionConfig(steps=2, w_avg_samples=100))
    r = project(G, target, ProjectionConfig(steps=40, w_avg_samples=100), c=c)
    assert r.psnr > r.psnrs[0] + 3


def test_projection_is_deterministic_and_seeded(quiet_G):
    _, target = known_image(quiet_G, seed=2)
    cfg = ProjectionConfig(steps=5, mode="w+", w_avg_samples=500)
    a, b = project(quiet_G, target, cfg), project(quiet_G, target, cfg)
    c = project(quiet_G, target, ProjectionConfig(steps=5, mode="w+", w_avg_samples=500, seed=1))
    assert torch.equal(a.latent.w, b.latent.w) and all(torch.equal(x, y) for x, y in zip(a.latent.noise,
                                                                                        b.latent.noise))
    assert not torch.equal(a.latent.w, c.latent.w)


def test_callback_sees_every_step_and_networks_are_left_as_they_were(quiet_G, small_D):
    _, target = known_image(quiet_G)
    flags = [p.requires_grad for p in quiet_G.parameters()]
    seen = []
    r = project(quiet_G, target, ProjectionConfig(steps=4, w_avg_samples=500), D=small_D,
                on_step=lambda s: seen.append((s.step, s.loss, s.psnr, tuple(s.image.shape))))
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert [s[1] for s in seen] == r.losses and [s[2] for s in seen] == r.psnrs
    assert seen[0][3] == (1, 3, 32, 32)
    assert [p.requires_grad for p in quiet_G.parameters()] == flags
    assert all(p.grad is None for p in [*quiet_G.parameters(), *small_D.parameters()])


def test_video_of_the_optimisation(quiet_G, tmp_path):
    _, target = known_image(quiet_G)
    path = tmp_path / "proj.gif"
    images = []
    project(quiet_G, target, ProjectionConfig(steps=8, mode="w+", w_avg_samples=500), video=path, video_fps=10,
            video_every=3, on_step=lambda s: images.append(s.image))
    with Image.open(path) as gif:
        assert (gif.n_frames, gif.size) == (4, (64, 32))  # steps 1, 4, 7 and the last, 8
        gif.seek(3)
        last = np.asarray(gif.convert("RGB")).astype(float)
    # Left: the target; right: step 8's image, not step 1's (up to the GIF's fast 256-colour palette).
    def dist(a, img):
        return np.abs(a - sa.to_uint8(img)[0].numpy()).mean()
    assert dist(last[:, :32], target) < 10
    assert dist(last[:, 32:], images[-1]) < 10 < dist(last[:, 32:], images[0])
    with pytest.raises(UserError, match="use a .gif or .mp4"):
        project(quiet_G, target, ProjectionConfig(steps=1), video=tmp_path / "proj.avi")


def test_tied_wplus_stays_one_w_until_it_is_untied(quiet_G):
    _, target = known_image(quiet_G)
    run = Projection(quiet_G, target, ProjectionConfig(steps=10, mode="w+", tie_until=0.5, w_avg_samples=500))
    steps = run.steps()
    for _ in range(5):
        next(steps)
    w = run.w.detach()
    torch.testing.assert_close(w, w[:, :1].expand_as(w), rtol=0, atol=1e-6)
    for _ in steps:
        pass
    assert (run.w - run.w[:, :1]).abs().max() > 1e-3


def test_loss_terms(quiet_G, small_D):
    ws, target = known_image(quiet_G)
    other = known_image(quiet_G, seed=3)[1]
    base = ProjectionConfig(multiscale_weight=0, discriminator_weight=0)
    with_d = ProjectionConfig(multiscale_weight=0, discriminator_weight=0.5)
    pixel = ProjectionLoss(target, base)(other)
    torch.testing.assert_close(pixel, (other - target).square().mean())
    from stylegan_anime.editing.losses import DiscriminatorFeatures
    feats = DiscriminatorFeatures(small_D)
    expected = pixel + 0.5 * feats.distance(feats.features(other), feats.features(target))
    torch.testing.assert_close(ProjectionLoss(target, with_d, D=small_D)(other), expected)
    assert ProjectionLoss(target, ProjectionConfig(), D=small_D)(target).item() == 0


def test_schedules():
    cfg = ProjectionConfig(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25, w_noise=0.05, w_noise_ramp=0.75)
    assert learning_rate(0.0, cfg) == 0
    assert learning_rate(0.025, cfg) == pytest.approx(0.05)
    assert learning_rate(0.5, cfg) == pytest.approx(0.1)
    assert learning_rate(0.875, cfg) == pytest.approx(0.05)
    assert learning_rate(1.0, cfg) == pytest.approx(0.0)
    assert w_noise_std(0.0, cfg, 2.0) == pytest.approx(0.1)
    assert w_noise_std(0.375, cfg, 2.0) == pytest.approx(0.025)
    assert w_noise_std(0.8, cfg, 2.0) == 0


def test_w_statistics(quiet_G):
    gen = torch.Generator().manual_seed(7)
    w_avg, w_std = w_statistics(quiet_G, 2000, gen=gen)
    assert torch.equal(w_avg, quiet_G.mapping.w_avg)  # a network that tracks w_avg: its own
    z = torch.randn([2000, quiet_G.z_dim], generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ws = quiet_G.mapping(z)[:, 0]
    assert w_std == pytest.approx((ws - w_avg).square().sum(1).mean().sqrt().item(), rel=1e-5)
    saved = quiet_G.mapping.w_avg.clone()
    try:
        quiet_G.mapping.w_avg.zero_()  # a fresh network (or a converted one without w_avg): estimated
        w_avg, _ = w_statistics(quiet_G, 2000, gen=torch.Generator().manual_seed(7))
        torch.testing.assert_close(w_avg, ws.mean(0))
    finally:
        quiet_G.mapping.w_avg.copy_(saved)


def test_bad_arguments(quiet_G):
    _, target = known_image(quiet_G)
    with pytest.raises(UserError, match="mode must be w or w\\+"):
        ProjectionConfig(mode="z")
    with pytest.raises(UserError, match="target must be"):
        project(quiet_G, target[:, :, :16, :16])
    D64 = sa.Discriminator(sa.DiscriminatorConfig(img_resolution=64, channel_base=512, channel_max=32))
    with pytest.raises(UserError, match="discriminator sees 64"):
        project(quiet_G, target, D=D64)


# --------------------------------------------------------------------------- target images


def test_load_target_crops_the_centre_and_flattens_transparency(tmp_path):
    arr = np.zeros([40, 80, 4], np.uint8)
    arr[:, :20] = (255, 0, 0, 255)      # left strip: cropped away
    arr[:, 20:60] = (0, 0, 255, 255)    # centre square: kept
    arr[:, 60:] = (0, 255, 0, 255)      # right strip: cropped away
    arr[:10, 20:60, 3] = 0              # transparent band at the top of the centre: white
    Image.fromarray(arr).save(tmp_path / "t.png")  # [H, W, 4] uint8 is RGBA
    t = load_target(tmp_path / "t.png", 32)
    assert t.shape == (1, 3, 32, 32)
    rgb = sa.to_uint8(t)[0].numpy().astype(int)
    assert (abs(rgb[20:, :] - [0, 0, 255]) <= 1).all()
    assert (abs(rgb[:6, :] - [255, 255, 255]) <= 1).all()
    gray = load_target(tmp_path / "t.png", 32, channels=1)
    assert gray.shape == (1, 1, 32, 32)


@pytest.mark.parametrize("kind,message", [
    ("missing", "no such target image"),
    ("text", "is not an image Pillow can read"),
    ("small", "too small for a 32² network"),
])
def test_load_target_errors(tmp_path, kind, message):
    path = tmp_path / "t.png"
    if kind == "text":
        path.write_text("hello")
    elif kind == "small":
        Image.new("RGB", (15, 40)).save(path)
    with pytest.raises(UserError, match=message):
        load_target(path, 32)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def net_with_d(quiet_G, small_D, tmp_path):
    return sa.save(Networks(G_ema=quiet_G, D=small_D), tmp_path / "net.safetensors")


def test_cli_writes_latent_and_pictures(quiet_G, net_with_d, tmp_path, capsys):
    _, target = known_image(quiet_G)
    sa.save_images(target, [tmp_path / "target.png"])
    out = tmp_path / "proj"
    assert main(["project", "--network", str(net_with_d), "--target", str(tmp_path / "target.png"),
                 "--steps", "20", "--mode", "w+", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["projected.npz", "projected.png", "target_vs_projected.png"]
    latent = load_latent(out / "projected.npz")
    with torch.no_grad():
        img = quiet_G.synthesis(latent.ws(quiet_G), noise=latent.noise)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "projected.png")), sa.to_uint8(img)[0].numpy())
    side = Image.open(out / "target_vs_projected.png")
    assert side.size[0] == 64
    np.testing.assert_array_equal(np.asarray(side)[:32, :32], np.asarray(Image.open(tmp_path / "target.png")))
    assert "PSNR" in capsys.readouterr().out
    video = tmp_path / "proj.mp4"
    assert main(["project", "--network", str(net_with_d), "--target", str(tmp_path / "target.png"), "--steps", "6",
                 "--video", str(video), "--video-every", "2", "--video-size", "128", "-o", str(out),
                 "--force"]) == 0  # the same folder again
    import imageio.v3 as iio
    frames = iio.imread(video)
    assert frames.shape == (4, 64, 128, 3)  # steps 1, 3, 5 and the last, 6


@pytest.mark.parametrize("kind,message", [
    ("missing", "no such target image"),
    ("text", "is not an image Pillow can read"),
    ("small", "too small"),
])
def test_cli_bad_target_exits_2_with_one_line(net_with_d, tmp_path, capsys, kind, message):
    path = tmp_path / "t.png"
    if kind == "text":
        path.write_text("hello")
    elif kind == "small":
        Image.new("RGB", (8, 8)).save(path)
    out = tmp_path / "proj"
    assert main(["project", "--network", str(net_with_d), "--target", str(path), "--steps", "2", "-o",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()
