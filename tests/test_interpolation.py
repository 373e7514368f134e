"""Latent paths: slerp/lerp properties, schedules, keyframes hit exactly, loops close, grid cells."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.errors import UserError
from stylegan_anime.features.generation import generate_images
from stylegan_anime.features.interpolation import (CELL_SEED_STRIDE, FrameSchedule, KeyframePath, cell_keyframes, ease,
                                                   interpolation_frames, lerp, make_schedule, slerp)
from stylegan_anime.latents.keyframes import parse_keyframe_groups, parse_keyframes
from stylegan_anime.latents.files import Latent, save_latent


def test_slerp_keeps_unit_norm_and_hits_both_ends_exactly():
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(16, 512, generator=gen), dim=1)
    b = torch.nn.functional.normalize(torch.randn(16, 512, generator=gen), dim=1)
    for t in torch.linspace(0, 1, 11):
        out = slerp(a, b, t)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(16), atol=1e-6, rtol=0)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    t = torch.tensor([0.0, 1.0] * 8)
    assert torch.equal(slerp(a, b, t)[0::2], a[0::2]) and torch.equal(slerp(a, b, t)[1::2], b[1::2])


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    for t in (0.25, 0.5, 0.9):
        angle = t * math.pi / 2
        torch.testing.assert_close(slerp(a, b, t), torch.tensor([[math.cos(angle), math.sin(angle), 0.0]]))
    # Unequal norms: the length goes linearly from |a| to |b|, the direction as for unit vectors.
    torch.testing.assert_close(slerp(2 * a, 4 * b, 0.5), 3 * torch.tensor([[0.5 ** 0.5, 0.5 ** 0.5, 0.0]]))
    # Nearly parallel vectors do not divide by ~0.
    assert torch.isfinite(slerp(a, a + 1e-9, 0.5)).all()


def test_slerp_keeps_gaussian_norm_where_lerp_shrinks_it():
    z = sa.seeds_to_z([1, 2], 512)
    mid_slerp, mid_lerp = slerp(z[:1], z[1:], 0.5), lerp(z[:1], z[1:], 0.5)
    assert abs(mid_slerp.norm() - z.norm(dim=1).mean()) < 1.0
    assert mid_lerp.norm() < 0.8 * z.norm(dim=1).min()


def test_lerp_known_values_and_exact_ends():
    a, b = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    torch.testing.assert_close(lerp(a, b, 0.25), 0.75 * a + 0.25 * b)
    assert torch.equal(lerp(a, b, torch.tensor([0.0, 1.0, 1.0]))[1:], b[1:])


def test_ease_in_out_is_monotone_symmetric_and_flat_at_keyframes():
    t = np.linspace(0, 1, 101)
    e = ease(t, "ease-in-out")
    assert e[0] == 0 and e[-1] == 1 and np.all(np.diff(e) > 0)
    np.testing.assert_allclose(e + e[::-1], 1, atol=1e-12)
    assert e[1] - e[0] < 0.1 * (t[1] - t[0]) * 10 and e[51] - e[50] > t[51] - t[50]


def test_open_schedule_hits_every_keyframe():
    s = make_schedule(4, frames_per_transition=10)
    assert s.frames == 31
    k, t = s.segments(0, s.frames)
    u = k + t
    np.testing.assert_array_equal(u[[0, 10, 20, 30]], [0, 1, 2, 3])
    assert make_schedule(4, frames=7).raw_positions(0, 7)[-1] == 3
    assert make_schedule(3, duration=2.0, fps=15).frames == 30


def test_loop_schedule_ends_one_step_before_returning_to_the_start():
    s = make_schedule(3, frames_per_transition=8, loop=True)
    assert s.frames == 24 and s.transitions == 3
    u = s.raw_positions(0, s.frames + 1)
    steps = np.diff(u)
    np.testing.assert_allclose(steps, steps[0])  # the wrap from the last frame to the first is a normal step
    assert u[-1] == s.transitions                 # the frame after the last is the end of the loop...
    k, t = s.segments(s.frames, s.frames + 1)
    assert (k[0] + 1) % s.num_keys == 0 and t[0] == 1  # ...which is keyframe 0 again


@pytest.mark.parametrize("space", ["w", "z", "slerp"])
def test_path_hits_keyframes_exactly_and_a_loop_returns_to_its_first(small_G, space):
    path = KeyframePath(small_G, [3, 7, 11], space=space, psi=0.6)
    expected = small_G.mapping(sa.seeds_to_z([3, 7, 11], small_G.z_dim), None, psi=0.6)
    s = FrameSchedule(3, 13, loop=True)
    at_keys = path.ws(np.array([0, 1, 2]), np.array([0.0, 0.0, 0.0]))
    torch.testing.assert_close(at_keys, expected, atol=1e-6, rtol=0)  # batch size may move the last bit
    start_and_end = path.ws(np.array([0, 2]), np.array([0.0, 1.0]))  # u = 0 and u = 3, the end of the loop
    assert torch.equal(start_and_end[0], start_and_end[1])
    k, t = s.segments(0, s.frames)
    first_and_last = path.ws(k[[0, -1]], t[[0, -1]])
    assert torch.equal(first_and_last[0], start_and_end[0]) and not torch.equal(first_and_last[1], first_and_last[0])


def test_w_space_is_linear_in_truncated_w(small_G):
    path = KeyframePath(small_G, [1, 2], space="w", psi=0.5)
    wa, wb = (small_G.mapping(sa.seeds_to_z([s], small_G.z_dim), None, psi=0.5) for s in (1, 2))
    torch.testing.assert_close(path.ws(np.array([0]), np.array([0.3])), 0.7 * wa + 0.3 * wb)


def test_saved_latents_as_keyframes(small_G, tmp_path):
    z5 = sa.seeds_to_z([5], small_G.z_dim)[0]
    z_file = save_latent(Latent(z=z5), tmp_path / "z5.npz")
    w = torch.randn(small_G.num_ws, small_G.w_dim)
    w_file = save_latent(Latent(w=w), tmp_path / "proj.npz")
    keys = parse_keyframes(f"0,{z_file}")
    by_file = KeyframePath(small_G, keys, "slerp").ws(np.array([0, 0]), np.array([0.4, 1.0]))
    by_seed = KeyframePath(small_G, [0, 5], "slerp").ws(np.array([0, 0]), np.array([0.4, 1.0]))
    assert torch.equal(by_file, by_seed)
    w_path = KeyframePath(small_G, parse_keyframes(f"{w_file},2"), "w")
    assert torch.equal(w_path.ws(np.array([0]), np.array([0.0]))[0], w)
    with pytest.raises(UserError, match="only w"):
        KeyframePath(small_G, parse_keyframes(f"{w_file},2"), "slerp")


def test_grid_cells_walk_their_own_paths():
    groups = parse_keyframe_groups("0,5,9")
    cells = cell_keyframes(groups, 4)
    assert cells[0] == [0, 5, 9] and cells[3] == [3 * CELL_SEED_STRIDE, 5 + 3 * CELL_SEED_STRIDE,
                                                   9 + 3 * CELL_SEED_STRIDE]
    assert cell_keyframes(parse_keyframe_groups(["0,1", "2,3"]), 2) == [[0, 1], [2, 3]]
    with pytest.raises(UserError, match="groups"):
        cell_keyframes(parse_keyframe_groups(["0,1", "2,3", "4,5"]), 2)
    with pytest.raises(UserError, match="same number"):
        cell_keyframes(parse_keyframe_groups(["0,1", "2,3,4"]), 2)


def test_grid_frames_show_each_cells_keyframes(small_G):
    paths = [KeyframePath(small_G, keys, "slerp", psi=0.7) for keys in ([0, 1], [2, 3], [4, 5], [6, 7])]
    schedule = FrameSchedule(2, 5)
    frames = list(interpolation_frames(small_G, paths, schedule, cols=2, batch_size=3))
    R = small_G.img_resolution
    assert len(frames) == 5 and frames[0].shape == (2 * R, 2 * R, 3)
    first = sa.to_uint8(generate_images(small_G, [0, 2, 4, 6], psi=0.7)).numpy()
    last = sa.to_uint8(generate_images(small_G, [1, 3, 5, 7], psi=0.7)).numpy()
    for frame, cells in ((frames[0], first), (frames[-1], last)):  # (batching may move a value by 1/255)
        assert np.abs(frame[:R, R:].astype(int) - cells[1]).max() <= 1
        assert np.abs(frame[R:, :R].astype(int) - cells[2]).max() <= 1
        assert np.abs(frame[:R, :R].astype(int) - cells[2]).max() > 10  # cells differ from each other
    assert not np.array_equal(frames[2], frames[0])


def test_bad_paths_are_user_errors(small_G):
    with pytest.raises(UserError, match="at least 2 keyframes"):
        make_schedule(1, frames=10)
    with pytest.raises(UserError, match="exactly one"):
        make_schedule(3, frames=10, duration=2)
    with pytest.raises(UserError, match="space"):
        KeyframePath(small_G, [0, 1], space="x")
    with pytest.raises(UserError, match="easing"):
        FrameSchedule(2, 10, easing="bounce")
    with pytest.raises(UserError, match="no such latent"):
        parse_keyframes("0,missing.npz")
