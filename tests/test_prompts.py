"""Free-text prompts → label vectors (issue 21 item 3): vocabulary matching, negation, unknown words, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.data.attributes import encode, label_names
from stylegan_anime.editing.prompts import parse_prompt, prompt_labels
from stylegan_anime.editing.tags import tag_labels, with_label_names
from stylegan_anime.errors import UserError
from stylegan_anime.networks import Generator

from conftest import randomize_buffers, small_g_config

NAMES = label_names()  # the synthetic set's label entries
ISSUE_PROMPT = "a girl with long blonde hair in twintails, blue eyes, glasses, smiling, no hat"


def test_issue_prompt_gives_the_encoder_vector_of_the_described_character():
    got = sa.prompt_labels(ISSUE_PROMPT, NAMES, seeds=[7])
    want = encode({"hair_color": "blonde", "eye_color": "blue", "hair_style": "twintails", "mouth": "smile",
                   "bangs": False, "blush": False, "ribbon": False, "glasses": True, "hat": False})
    assert got.labels[0].tolist() == [float(v) for v in want]
    assert got.unknown == ()
    assert set(got.tags) == {"blonde hair", "twintails", "blue eyes", "glasses", "smile", "no hat"}


def test_prompt_and_equivalent_tag_list_give_the_same_labels():
    seeds = list(range(6))
    a = prompt_labels("a silver-haired girl with a hair bow and twin tails, without glasses", NAMES, seeds).labels
    b = tag_labels("silver hair, hair ribbon, twintails, no glasses", NAMES, seeds)
    assert torch.equal(a, b)
    # Unmentioned groups are drawn per seed exactly as for --tags: eye colour varies across seeds.
    eyes = a[:, NAMES.index("eye_color=blue"):NAMES.index("eye_color=yellow") + 1]
    assert torch.equal(eyes.sum(1), torch.ones(6)) and len({tuple(r.tolist()) for r in eyes}) > 1


def test_negation_reaches_or_joined_tags_only():
    p = parse_prompt("no hat or glasses, blush", NAMES)
    assert p.chosen == {NAMES.index("hat"): 0.0, NAMES.index("glasses"): 0.0, NAMES.index("blush"): 1.0}
    p = parse_prompt("no hat and glasses", NAMES)
    assert p.chosen == {NAMES.index("hat"): 0.0, NAMES.index("glasses"): 1.0}


def test_words_not_understood_are_returned_in_order_and_fillers_are_not():
    p = parse_prompt("a cute girl with freckles, red eyes, short hair", NAMES)
    assert p.unknown == ("cute", "freckles")
    assert set(p.tags) == {"red eyes", "short hair"}


@pytest.mark.parametrize("prompt, message", [
    ("blonde and black hair", "sets hair_color twice: 'blonde hair' and 'black hair'"),
    ("short hair in twintails", "sets hair_style twice"),
    ("glasses, no glasses", "sets glasses twice"),
    ("teal hair", "'teal hair' names no value; did you mean"),
    ("black eyes", "did you mean 'blue eyes'"),
    ("a girl with glases", "'glases' is not a tag; did you mean 'glasses'"),
    ("no blonde hair", "only on/off attributes can be negated"),
    ("   ", "the prompt is empty"),
])
def test_bad_prompts_are_one_line_user_errors(prompt, message):
    with pytest.raises(UserError, match=message) as e:
        parse_prompt(prompt, NAMES)
    assert "\n" not in str(e.value)


def test_generate_prompt_on_a_conditional_network(tmp_path, capsys):
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config(c_dim=len(NAMES), extra=with_label_names({}, NAMES)))).eval()
    net = sa.save(G, tmp_path / "c.safetensors")
    assert main(["generate", "--network", str(net), "--seeds", "3-4", "--prompt", ISSUE_PROMPT + ", freckles",
                 "--grid", "2x1", "-o", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "not understood (ignored): freckles" in out and "no hat" in out
    want = sa.generate_images(G, [3, 4], c=prompt_labels(ISSUE_PROMPT, NAMES, [3, 4]).labels)
    from PIL import Image
    got = torch.from_numpy(np.array(Image.open(tmp_path / "p.png"))).permute(2, 0, 1).float() / 127.5 - 1
    assert (got[:, :, 32:] - want[1].clamp(-1, 1)).abs().max() < 2 / 127.5 + 1e-4
    # The labels matter: another prompt draws another image from the same seed.
    other = sa.generate_images(G, [4], c=prompt_labels("black hair, short hair, hat", NAMES, [4]).labels)
    assert (other[0] - want[1]).abs().mean() > 1e-3
    # --tags keeps working beside it; both at once, or a bad prompt, is one line and exit 2.
    assert main(["generate", "--network", str(net), "--seeds", "0", "--tags", "blonde hair",
                 "-o", str(tmp_path / "t")]) == 0
    capsys.readouterr()
    for extra in (["--prompt", "blonde and black hair"], ["--prompt", "glasses", "--tags", "hat"]):
        assert main(["generate", "--network", str(net), "--seeds", "0", *extra, "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("stylegan-anime generate: error:") and "\n" not in err


def test_generate_prompt_on_an_unconditional_network_is_exit_2(tmp_path, small_G, capsys):
    net = sa.save(small_G, tmp_path / "g.safetensors")
    assert main(["generate", "--network", str(net), "--seeds", "0", "--prompt", "glasses",
                 "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--prompt needs a conditional network" in err and "\n" not in err
    assert not (tmp_path / "x").exists()
