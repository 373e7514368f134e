"""The studio's actions against the API underneath: roll = generate_images, merge = per-group mixing,
morph keeps z and moves labels, animate walks through the favourites' ws."""
import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import stylegan_anime as sa
from stylegan_anime.app import FavouritesStore, Studio
from stylegan_anime.data.attributes import label_names
from stylegan_anime.editing.tags import with_label_names
from stylegan_anime.errors import UserError
from stylegan_anime.features.render import to_uint8
from stylegan_anime.latents.style_layers import named_layers


def _G(c_dim=0):
    torch.manual_seed(0)
    extra = with_label_names({}, label_names()) if c_dim else {}
    cfg = sa.GeneratorConfig(z_dim=16, w_dim=16, img_resolution=64, mapping_layers=2, channel_base=256,
                             channel_max=16, c_dim=c_dim, extra=extra)
    return sa.Generator(cfg).eval()


@pytest.fixture
def cond(tmp_path):
    return Studio(_G(len(label_names())), FavouritesStore(tmp_path / "f.sqlite"))


@pytest.fixture
def uncond(tmp_path):
    return Studio(_G(), FavouritesStore(tmp_path / "f.sqlite"))


def test_roll_is_generate_images_with_the_prompt_labels(cond):
    seeds = [3, 7, 11]
    rolled = cond.roll(seeds, psi=0.6, prompt="blonde hair, glasses")
    c = sa.prompt_labels("blonde hair, glasses", cond.label_names, seeds).labels  # what generate --prompt uses
    ref = sa.generate_images(cond.G, seeds, psi=0.6, c=c)
    torch.testing.assert_close(torch.stack([r.image for r in rolled]), ref, atol=1e-5, rtol=0)
    assert all("hair_color=blonde" in r.caption and "glasses" in r.caption and f"seed {s}" in r.caption
               for r, s in zip(rolled, seeds))
    with pytest.raises(UserError, match="not understood: 'hairr'"):
        cond.roll([1], prompt="green hairr")
    free = cond.roll(seeds, prompt="a girl with long blonde hair and glasses, no hat")  # free text, negation
    assert all({"hair_color=blonde", "hair_style=long", "glasses"} <= set(r.caption.split(" · ")[1].split(", "))
               and "hat" not in r.caption.split(", ") for r in free)
    with pytest.raises(UserError, match="sets hair_color twice"):
        cond.roll([1], prompt="blonde and black hair")
    plain = cond.roll(seeds)  # no prompt: the characters `generate --seeds` draws
    torch.testing.assert_close(torch.stack([r.image for r in plain]), sa.generate_images(cond.G, seeds, psi=0.7),
                               atol=1e-5, rtol=0)


def test_keep_then_draw_again_gives_the_same_image(uncond):
    [ch] = uncond.roll([5], psi=0.7)
    fid = uncond.keep(ch, "Eve")
    fav = Studio(uncond.G, FavouritesStore(uncond.store.path)).favourite(fid)  # after a restart
    assert fav.name == "Eve" and fav.seed == 5
    torch.testing.assert_close(uncond.character(fav).image, ch.image, atol=1e-5, rtol=0)
    thumb = Image.open(io.BytesIO(fav.thumbnail))
    assert thumb.size == (128, 128)
    with pytest.raises(UserError, match="unconditional"):
        uncond.roll([1], prompt="blonde hair")


def test_morph_keeps_z_and_ends_at_the_new_labels(cond):
    [ch] = cond.roll([4], psi=0.7, prompt="black hair, smile")
    fid = cond.keep(ch)
    strip = cond.morph(fid, "pink hair", steps=4)
    torch.testing.assert_close(strip[0].image, ch.image, atol=1e-5, rtol=0)
    want = ch.labels.clone()
    names = cond.label_names
    want[names.index("hair_color=black")], want[names.index("hair_color=pink")] = 0.0, 1.0
    torch.testing.assert_close(strip[-1].labels, want)  # mouth=smile and the rest kept
    ref = sa.generate_images(cond.G, [4], psi=0.7, c=want[None])
    torch.testing.assert_close(strip[-1].image, ref[0], atol=1e-5, rtol=0)
    diffs = [(strip[i + 1].image - strip[i].image).abs().mean().item() for i in range(3)]
    assert all(d > 1e-4 for d in diffs)


def test_morph_unconditional_moves_w_along_a_direction(uncond):
    fid = uncond.keep(uncond.roll([2])[0])
    d = torch.zeros(16)
    d[0] = 1.0
    uncond.directions = sa.Directions(["smile"], d[None], torch.tensor([2.0]))
    strip = uncond.morph(fid, strengths={"smile": 1.5}, steps=3)
    w0 = torch.from_numpy(uncond.favourite(fid).w)
    torch.testing.assert_close(strip[-1].w - w0, torch.zeros_like(w0).index_fill_(1, torch.tensor([0]), 3.0))
    torch.testing.assert_close(strip[1].w - w0, (strip[-1].w - w0) / 2)


def test_merge_takes_each_group_from_a_to_b(uncond):
    a, b = (uncond.keep(c) for c in uncond.roll([1, 2]))
    wa, wb = (torch.from_numpy(uncond.favourite(i).w) for i in (a, b))
    torch.testing.assert_close(uncond.merge(a, b, {"coarse": 0, "middle": 0, "fine": 0}).w, wa)
    torch.testing.assert_close(uncond.merge(a, b, {"coarse": 1, "middle": 1, "fine": 1}).w, wb)
    half = uncond.merge(a, b, {"coarse": 1, "middle": 0.5})
    coarse, middle, fine = (named_layers(uncond.G.synthesis, g) for g in ("coarse", "middle", "fine"))
    torch.testing.assert_close(half.w[coarse], wb[coarse])
    torch.testing.assert_close(half.w[middle], (wa[middle] + wb[middle]) / 2)
    torch.testing.assert_close(half.w[fine], wa[fine])
    ref = sa.synthesize(uncond.G, half.w[None])[0]
    torch.testing.assert_close(half.image, ref, atol=1e-5, rtol=0)
    with pytest.raises(UserError, match="between 0"):
        uncond.merge(a, b, {"fine": 2})


def test_animate_walks_through_the_favourites(uncond, tmp_path):
    chars = uncond.roll([1, 2])
    ids = [uncond.keep(c) for c in chars]
    out = uncond.animate(ids, tmp_path / "walk.gif", frames_per_transition=3, loop=True)
    with Image.open(out) as gif:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 6 and frames[0].shape == (64, 64, 3)
    want = [to_uint8(c.image[None])[0].numpy().astype(int) for c in chars]
    for frame, own, other in ((frames[0], 0, 1), (frames[3], 1, 0)):  # the keyframes, up to GIF palette error
        near, far = (np.abs(frame.astype(int) - want[i]).mean() for i in (own, other))
        assert near < far / 3, (near, far)
    with pytest.raises(UserError, match="at least two"):
        uncond.animate(ids[:1], tmp_path / "one.gif")


def test_export_then_import_gives_the_same_characters(uncond, tmp_path):
    ids = [uncond.keep(c, n) for c, n in zip(uncond.roll([8, 9]), ("Ann", "Bo"))]
    out = uncond.store.export_zip(uncond.network, tmp_path / "f.zip")
    new = uncond.import_zip(out)
    assert len(new) == 2 and [uncond.favourite(i).name for i in new] == ["Ann", "Bo"]
    for old, imported in zip(ids, new):
        np.testing.assert_array_equal(uncond.favourite(old).w, uncond.favourite(imported).w)


def test_project_finds_a_character_nearer_the_picture(uncond, tmp_path):
    [ch] = uncond.roll([21], psi=0.7)
    sa.to_pil(ch.image[None])[0].save(tmp_path / "target.png")
    cfg = sa.ProjectionConfig(steps=40, optimize_noise=False, w_avg_samples=500, perceptual_weight=0.0)
    found = uncond.project(tmp_path / "target.png", cfg=cfg)
    w_avg = uncond.G.mapping.w_avg[None, None].expand(1, uncond.G.num_ws, -1)
    start = sa.synthesize(uncond.G, w_avg)[0]
    err = lambda img: (img - ch.image).pow(2).mean().item()
    assert err(found.image) < err(start) / 2, (err(found.image), err(start))
    torch.testing.assert_close(found.image, sa.synthesize(uncond.G, found.w[None])[0])  # the w alone redraws it


def test_app_command_bad_directions_is_one_line(tmp_path, capsys):
    from stylegan_anime.cli import main
    assert main(["app", "--directions", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylegan-anime app: error:") and "missing.npz" in err[0]


def test_sa_app_is_the_studio_without_importing_gradio():
    import subprocess
    import sys
    code = "import sys, stylegan_anime as sa; assert callable(sa.app.launch); print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
