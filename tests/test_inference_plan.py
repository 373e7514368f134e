"""Inference plans: each layer's algorithm chosen once, a plan's images equal the reference layers'
(whole batches and passes of a few samples, on the plan's own buffers), and a weight change after
planning is caught."""
from __future__ import annotations

import math

import pytest
import torch

from stylegan_anime.features.generation import generate_images, synthesize
from stylegan_anime.inference import StalePlanError
from stylegan_anime.networks import Generator, GeneratorConfig, fast_modconv
from stylegan_anime.networks.winograd import use_winograd
from stylegan_anime.ops import winograd_op

from conftest import randomize_buffers, small_g_config


@pytest.mark.parametrize("batch", [1, 4])
def test_plan_on_a_256_config_f_network_takes_the_kept_filter_algorithms_and_equals_the_reference(batch):
    """Config F at 256² (512 channels down to 128): the plan, built from shapes alone, takes the
    algorithms that need filters kept between forwards (fused with toRGB, stride-2 Winograd, F(4×4, 3×3)
    on kept filters) where the native op is built, and its images equal the reference layers'."""
    torch.manual_seed(0)
    G = randomize_buffers(Generator(GeneratorConfig(img_resolution=256))).eval().requires_grad_(False)
    z = torch.randn(batch, G.z_dim)
    plan = G.plan("cpu", batch)
    taken = [lp.algorithm + ("+rgb" if lp.to_rgb_fused else "") for lp in plan.layers]
    assert len(plan.layers) == len(G.synthesis.noise_layers()) == 13
    if winograd_op.native_available(z):  # the kept-filter rules fire on this network
        assert {"fused+rgb", "up_winograd", "f43"} <= set(taken)
    for lp in plan.layers:  # a module's own forward never takes them: it derives its filters every call
        chosen = (fast_modconv.same_conv_algorithm if lp.up == 1 else
                  lambda x, shape, pad, kept: fast_modconv.up_conv_algorithm(x, shape, True, lp.up, kept))
        x = torch.zeros(()).expand(batch, lp.in_channels, lp.resolution // lp.up, lp.resolution // lp.up)
        assert chosen(x, (lp.out_channels, lp.in_channels, 3, 3), 1, False) not in ("fused", "up_fused", "up_winograd")
    expected = _reference(G, z)
    images = plan.generate(z)
    torch.testing.assert_close(images, expected, rtol=1e-5, atol=2e-5 * expected.abs().max().item())


def _reference(G: Generator, z: torch.Tensor, **kw) -> torch.Tensor:
    """The reference layers: parameters requiring grad under grad mode take them."""
    G.requires_grad_(True)
    try:
        return G(z, **kw).detach()
    finally:
        G.requires_grad_(False)


@pytest.mark.parametrize("mode", ["auto", "always"])
@pytest.mark.parametrize("overrides, noise_mode", [
    ({}, "const"), ({"architecture": "resnet"}, "const"), ({"conv_clamp": 0.5}, "none"),
    ({"img_resolution": 64, "channel_base": 2048, "channel_max": 64}, "const"),
])
def test_plan_images_equal_the_reference_layers(mode, overrides, noise_mode):
    """"always" sends every layer through the Winograd algorithms (fused, stride-2, toRGB in the conv)."""
    torch.manual_seed(1)
    G = randomize_buffers(Generator(small_g_config(**overrides))).eval().requires_grad_(False)
    z = torch.randn(3, G.z_dim)
    with use_winograd(mode):
        plan = G.plan(batch_size=3)
        images = plan.generate(z, psi=0.7, noise_mode=noise_mode)
        ref = _reference(G, z, psi=0.7, noise_mode=noise_mode)
    if mode == "always" and winograd_op.native_available(z):
        assert {lp.algorithm for lp in plan.layers} == {"fused", "up_fused"}
    torch.testing.assert_close(images, ref, rtol=1e-5, atol=2e-5 * ref.abs().max().item())


def test_plan_takes_explicit_noise_and_checks_the_batch():
    torch.manual_seed(2)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(2, G.z_dim)
    noise = [torch.randn(2, 1, layer.resolution, layer.resolution) for layer in G.synthesis.noise_layers()]
    plan = G.plan(batch_size=2)
    ref = _reference(G, z, noise=noise)
    torch.testing.assert_close(plan.generate(z, noise=noise), ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    with pytest.raises(ValueError, match=r"\[2, "):
        plan.generate(torch.randn(3, G.z_dim))
    with pytest.raises(ValueError, match="move it first"):
        G.plan("cuda", 2)


def test_a_weight_change_after_planning_makes_the_plan_stale():
    torch.manual_seed(3)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(2, G.z_dim)
    plan = G.plan(batch_size=2)
    before = plan.generate(z)
    layer = G.synthesis.noise_layers()[-1]
    with torch.no_grad():
        # In place, as optimiser steps and load_state_dict do (bumps the version counter); half the
        # input channels, since demodulation cancels scaling all of them.
        layer.weight[:, : layer.weight.shape[1] // 2].mul_(3)
    assert "b32.conv1.weight" in plan.stale_reason()
    with pytest.raises(StalePlanError, match="stale inference plan"):
        plan.generate(z)
    with pytest.raises(StalePlanError):
        plan.for_batch(1)
    fresh = plan.refreshed()
    assert fresh is not plan and fresh.stale_reason() is None and fresh.refreshed() is fresh
    after = fresh.generate(z)
    assert not torch.allclose(after, before, atol=1e-3)
    ref = _reference(G, z)
    torch.testing.assert_close(after, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    G.synthesis.b16.conv0.weight.data = G.synthesis.b16.conv0.weight.data.clone()  # new storage
    assert "b16.conv0.weight" in fresh.stale_reason()
    G.load_state_dict(G.state_dict())
    assert G.plan(batch_size=2).stale_reason() is None


def test_a_generator_keeps_its_plan_until_its_weights_or_settings_change():
    """G.plan returns the plan it built before (the API's calls pay no filter transforms after the first),
    one for another batch size sharing its filters and buffers, and a new one after a weight change
    (equal to the reference layers) or under another Winograd mode, dropping stale ones; copies and
    pickles keep none."""
    import copy
    import pickle
    torch.manual_seed(5)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(2, G.z_dim)
    plan = G.plan(batch_size=2)
    assert G.plan("cpu", 2) is plan
    one = G.plan(batch_size=1)
    assert one is G.plan(batch_size=1) and one.store is plan.store and one.buffers is plan.buffers
    plan.generate(z)
    with torch.no_grad():
        G.synthesis.b16.conv1.weight[:, :4].mul_(2)
    fresh = G.plan(batch_size=2)
    assert fresh is not plan and fresh.stale_reason() is None and fresh.buffers is plan.buffers
    assert fresh.store is not plan.store and G.plan(batch_size=1) is not one
    ref = _reference(G, z)
    torch.testing.assert_close(fresh.generate(z), ref, rtol=1e-5, atol=2e-5 * ref.abs().max().item())
    with use_winograd("always"):
        always = G.plan(batch_size=2)
        assert always is not fresh and always is G.plan(batch_size=2)
        if winograd_op.native_available(z):
            taken = {lp.algorithm for lp in always.layers}
            assert taken == {"fused", "up_fused"} != {lp.algorithm for lp in fresh.layers}
    assert G.plan(batch_size=2) is fresh
    with torch.no_grad():
        G.synthesis.b16.conv1.weight.mul_(1.5)  # both kept plans go stale; building one drops the other
    with use_winograd("always"):
        assert G.plan(batch_size=2) is not always and len(G._plans) == 1
    fresh = G.plan(batch_size=2)
    assert len(G._plans) == 2
    twin = copy.deepcopy(G)
    assert twin._plans == {} and pickle.loads(pickle.dumps(G))._plans == {}
    twin_plan = twin.plan(batch_size=2)
    assert twin_plan is not fresh and twin_plan.generator is twin
    G.release_plans()
    assert G.plan(batch_size=2) is not fresh


def test_generation_api_runs_plans_batch_by_batch():
    """5 seeds in batches of 2: the last batch's plan shares the first's filters; every image equals
    the reference layers' for its seed alone."""
    torch.manual_seed(4)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    with use_winograd("always"):
        images = generate_images(G, [0, 1, 2, 3, 4], psi=0.8, batch_size=2)
        from stylegan_anime.latents import seeds_to_z
        ref = _reference(G, seeds_to_z([0, 1, 2, 3, 4], G.z_dim), psi=0.8)
        torch.testing.assert_close(images, ref, rtol=1e-5, atol=2e-5 * ref.abs().max().item())
        ws = G.mapping(seeds_to_z([5, 6, 7], G.z_dim), None)
        torch.testing.assert_close(synthesize(G, ws, batch_size=2), _reference(G.synthesis, ws),
                                   rtol=1e-5, atol=2e-5 * ref.abs().max().item())
    plan = G.plan(batch_size=2)
    other = plan.for_batch(1)
    assert other.batch_size == 1 and other.store is plan.store
    assert all(a.square_sums is b.square_sums for a, b in zip(plan.layers, other.layers))


def test_doctor_prints_the_plan_it_runs(capsys):
    """`doctor --plan` lists each layer with the algorithm the plan (the one forwards run) chose."""
    from stylegan_anime.cli import main
    assert main(["doctor", "--plan", "--resolution", "64", "--batch", "8"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("b")]
    plan = Generator(GeneratorConfig(img_resolution=64)).plan("cpu", 8)
    assert [(r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in rows] == [
        (lp.name, lp.resolution, f"{lp.in_channels}>{lp.out_channels}", plan.stages[lp.stage].samples, lp.algorithm)
        for lp in plan.layers]
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--plan", "--batch", "0"])
    assert exc.value.code == 2 and "--batch must be at least 1" in capsys.readouterr().err


def test_video_frames_follow_a_weight_change_between_batches():
    """The video path keeps its plan across yields and rebuilds it when the caller's code changed the
    weights in between: frames after the change are what a fresh run with the new weights draws."""
    import numpy as np

    from stylegan_anime.features.interpolation import KeyframePath, interpolation_frames, make_schedule
    torch.manual_seed(5)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    path, schedule = KeyframePath(G, [1, 2], space="w"), make_schedule(2, frames=4)
    old = list(interpolation_frames(G, [path], schedule, batch_size=2))
    frames = interpolation_frames(G, [path], schedule, batch_size=2)
    first = [next(frames), next(frames)]  # the first batch
    layer = G.synthesis.noise_layers()[-1]
    with torch.no_grad():
        layer.weight[:, : layer.weight.shape[1] // 2].mul_(3)
    rest = list(frames)
    new = list(interpolation_frames(G, [path], schedule, batch_size=2))
    assert all(np.array_equal(a, b) for a, b in zip(first, old[:2]))
    assert all(np.array_equal(a, b) for a, b in zip(rest, new[2:]))
    assert not np.array_equal(rest[0], old[2])


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_passes_of_a_few_samples_give_the_images_of_the_whole_batch(monkeypatch, mode):
    """With a small pass budget the high-resolution blocks run one or two samples a pass, depth first:
    the images (with per-sample noise overrides, sliced pass by pass) equal the reference layers'."""
    from stylegan_anime.inference import policy
    torch.manual_seed(4)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(5, G.z_dim)
    noise = [torch.randn(5, 1, layer.resolution, layer.resolution) for layer in G.synthesis.noise_layers()]
    ref = _reference(G, z, noise=noise)
    per_sample = [max(layer.weight.shape[0] * (layer.resolution + layer.up - 1) ** 2 * 4 for layer in b.layers())
                  for b in G.synthesis.blocks()]
    monkeypatch.setattr(policy, "PASS_BYTES", 2 * per_sample[-2])  # two samples a pass, then one
    with use_winograd(mode):
        plan = G.plan(batch_size=5)
        assert [s.samples for s in plan.stages][-2:] == [2, 1] and plan.stages[0].samples == 5
        images = plan.generate(z, noise=noise)
    torch.testing.assert_close(images, ref, rtol=1e-5, atol=2e-5 * ref.abs().max().item())


def test_a_plan_allocates_its_buffers_once_and_shares_them_across_batch_sizes():
    """The second forward reuses the first one's buffers (no slot reallocated) and gives the same
    images; a plan for a smaller batch of the same weights runs on the same buffers."""
    torch.manual_seed(5)
    G = randomize_buffers(Generator(GeneratorConfig(img_resolution=64, channel_base=4096, channel_max=256)))
    G = G.eval().requires_grad_(False)
    z = torch.randn(3, G.z_dim)
    plan = G.plan("cpu", 3)
    first = plan.generate(z)
    slots = {slot: t.data_ptr() for slot, t in plan.buffers._bytes.items()}
    assert slots and plan.buffers.nbytes >= sum(plan.buffer_bytes.values())
    second = plan.generate(z)
    assert torch.equal(first, second) and first.data_ptr() != second.data_ptr()
    assert {slot: t.data_ptr() for slot, t in plan.buffers._bytes.items()} == slots
    small = plan.for_batch(2)
    assert small.buffers is plan.buffers
    torch.testing.assert_close(small.generate(z[:2]), first[:2], rtol=1e-5, atol=1e-6)


def test_native_outputs_go_where_asked_and_may_not_overlap_the_input():
    """The fused convs and the unfused transforms write into a given tensor exactly what they return
    otherwise; an output overlapping the input is refused."""
    x, scale, _, u, up = _native_conv_inputs(6, 12, 12)
    cases = [(lambda out: winograd_op.conv3x3_fused(x, u, scale, out=out), (2, 8, 12, 12)),
             (lambda out: winograd_op.conv_transpose3x3_s2_fused(x, up, scale, out=out), (2, 8, 25, 25)),
             (lambda out: winograd_op.conv3x3_transformed(x, u, True, scale, scratch=_scratch, out=out), (2, 8, 12, 12)),
             (lambda out: winograd_op.conv_transpose3x3_s2_transformed(x, up, True, scale, scratch=_scratch, out=out),
              (2, 8, 25, 25))]
    for run, shape in cases:
        expected = run(None)
        out = torch.full(shape, float("nan"))
        assert run(out) is not None and torch.equal(out, expected)
    with pytest.raises(RuntimeError, match="overlap"):
        winograd_op.conv3x3_fused(x, torch.randn(36, 16, 16), scale, out=x)


@pytest.mark.parametrize("h, w", [(16, 12), (13, 10), (4, 9)])
def test_transforms_a_band_of_rows_at_a_time_give_the_whole_images_conv(h, w):
    """Bands of 1, 2, 3 and all rows of windows (the last band short when they do not divide) fill every
    pixel of the output, the uncovered last rows and columns too, with the unbanded conv's values, which
    equal torch's convolutions; a band outside the image is refused."""
    import torch.nn.functional as F
    x, scale, weight, u, up = _native_conv_inputs(7, h, w, torch.float64)
    xs = x * scale[:, :, None, None]
    refs = {"same": F.conv2d(xs, weight, padding=1), "up": F.conv_transpose2d(xs, weight.transpose(0, 1), stride=2)}
    for rows in (1, 2, 3, None):
        for kind, ref in refs.items():
            out = torch.full_like(ref, float("nan"))
            if kind == "same":
                winograd_op.conv3x3_transformed(x, u, True, scale, scratch=_scratch, out=out, band_rows=rows)
            else:
                winograd_op.conv_transpose3x3_s2_transformed(x, up, True, scale, scratch=_scratch, out=out,
                                                             band_rows=rows)
            torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    native = winograd_op.native_build.load("winograd", "cpu")
    with pytest.raises(RuntimeError, match="does not fit"):
        native.up_input(x, None, None, first_row=(h + 3) // 4, rows=1)
    with pytest.raises(RuntimeError, match="a band's output"):
        native.output(torch.zeros(36, 8, 2 * 3), 2, 16, 12, None, 0, 1)  # 1 of 4 rows, no image to write


def test_fused_convs_on_given_band_buffers_equal_their_own():
    """The fused convs' band buffers, given (NaN-filled, as a plan's reused buffers hold anything), change no
    value; 13 x 11 images leave short panels whose lanes past the last tile must not leak; too small a
    buffer is refused."""
    from stylegan_anime.ops.to_rgb import ToRgb
    x, scale, _, u, up = _native_conv_inputs(8, 13, 11)
    rgb = ToRgb(torch.randn(2, 3, 8), torch.randn(3), None, None, keep_input=True)
    finish = winograd_op.Finish(scale=torch.rand(2, 8) + 0.5, bias=torch.randn(8))
    runs = [lambda sc: winograd_op.conv3x3_fused(x, u, scale, finish=finish, scratch=sc),
            lambda sc: winograd_op.conv_transpose3x3_s2_fused(x, up, scale, scratch=sc),
            lambda sc: torch.cat(winograd_op.conv3x3_fused_rgb(x, u, scale, finish, rgb, scratch=sc), 1)]
    for run in runs:
        expected = run(None)
        assert torch.isfinite(expected).all()
        assert torch.equal(run(_scratch), expected)
    native = winograd_op.native_build.load("winograd", "cpu")
    with pytest.raises(RuntimeError, match="work must be"):
        native.up_conv(x, up.u, scale, 24, None, torch.zeros(10), torch.tensor(winograd_op.UP_FILTER_OF_VALUE))


@pytest.mark.parametrize("batch, channels, mode, convs", [(1, 256, "always", {"fused", "up_fused"}),
                                                          (3, 256, "always", {"fused", "up_fused"}),
                                                          (1, 512, "auto", {"f43", "f43_unkept", "up_winograd"}),
                                                          (5, 512, "auto", {"f43", "up_winograd"})])
def test_the_plan_sizes_its_arena_before_the_first_forward(native_cpu_ops, batch, channels, mode, convs):
    """The arena a plan reserves holds every layer call's raw output, tiles and band buffers (the fused
    convs' and the unfused ones', whole images and slices of the batch): forwards never grow it (the same
    bytes before and after), and the images equal the reference's."""
    from stylegan_anime.inference.buffers import TRANSIENT_ARENA
    torch.manual_seed(batch)
    config = GeneratorConfig(img_resolution=64, channel_base=channels * 64, channel_max=channels)
    G = randomize_buffers(Generator(config)).eval().requires_grad_(False)
    z = torch.randn(batch, G.z_dim)
    with use_winograd(mode):
        plan = G.plan("cpu", batch)
        assert convs <= {lp.algorithm for lp in plan.layers}
        plan.buffers.reserve(plan.buffer_bytes)
        arena = plan.buffers._bytes[TRANSIENT_ARENA]
        images = plan.generate(z)
        assert plan.buffers._bytes[TRANSIENT_ARENA] is arena
        shared = [lp for lp in plan.layers if lp.tiles_over_raw]
        assert bool(shared) == (mode == "auto")  # the fused convs write their raw output as they go
        for lp in shared:  # tiles where the raw output will be: the same images as apart
            lp.tiles_over_raw = False
        assert torch.equal(plan.generate(z), images)
    ref = _reference(G, z)
    torch.testing.assert_close(images, ref, rtol=1e-5, atol=2e-5 * ref.abs().max().item())


@pytest.mark.parametrize("resolution, batch", [(256, 1), (256, 4), (32, 5)])
def test_a_stages_outputs_share_its_slot_and_never_overwrite_an_input_still_read(monkeypatch, resolution, batch):
    """A stage's layers write their outputs into its one "x" slot: a layer that reads its input while it writes
    (stride 1) never gets bytes of that input; an upsampling layer, which has read all of it by then, starts
    at 0; the slot is as large as the furthest output. Config F at 256² batch 1: b128's two outputs side by
    side, then b256.conv0's alone, 32 MiB and 17 cache lines (two alternating slots took 48 MiB)."""
    from stylegan_anime.inference import policy
    if resolution != 256:  # the small network's last block in passes of fewer samples
        monkeypatch.setattr(policy, "PASS_BYTES", 2 * 32 * 33 ** 2 * 4)
    config = GeneratorConfig(img_resolution=resolution) if resolution == 256 else small_g_config()
    plan = Generator(config).eval().requires_grad_(False).plan("cpu", batch)
    assert (len(plan.stages) > 1) == (batch > 1)  # stages of fewer samples a pass have slots of their own
    held, furthest = {}, {}
    for lp in plan.layers:
        if lp.out_slot is None:
            continue
        samples = plan.stages[lp.stage].samples
        end = lp.out_at + samples * lp.out_channels * lp.resolution ** 2 * lp.dtype.itemsize
        before = held.get(lp.stage)  # the output this layer reads, if in its own stage's slot
        if lp.up > 1 or before is None:
            assert lp.out_at == 0
        else:
            assert end <= before[0] or lp.out_at >= before[1], lp.name
        held[lp.stage], furthest[lp.stage] = (lp.out_at, end), max(furthest.get(lp.stage, 0), end)
    assert {(stage, "x"): end for stage, end in furthest.items()} == \
        {slot: n for slot, n in plan.buffer_bytes.items() if slot[1] == "x"}
    if (resolution, batch) == (256, 1):
        assert plan.buffer_bytes[(0, "x")] == 32 * 2 ** 20 + 17 * 64


@pytest.mark.parametrize("algorithm, n, h, w", [("f43", 1, 64, 64), ("f43", 1, 72, 72), ("f43", 16, 16, 16),
                                                ("f43", 17, 16, 16), ("f43", 1, 4, 1200), ("f43", 2, 4, 1200),
                                                ("up_winograd", 1, 64, 64), ("up_winograd", 1, 68, 64),
                                                ("up_winograd", 4, 32, 32), ("up_winograd", 5, 32, 32)])
def test_one_call_says_whether_an_unfused_conv_transforms_its_tiles_once(native_cpu_ops, algorithm, n, h, w):
    """``winograd.one_call`` (which lets a plan put the input tiles where the raw output will be) agrees with
    the conv's slices and bands: the tiles are asked for once exactly when it says one call, never for more
    than ``scratch_requests`` reserves."""
    from stylegan_anime.inference.buffers import ActivationBuffers, LayerScratch
    from stylegan_anime.networks import winograd
    x = torch.randn(n, 2, h, w)
    asked = []
    scratch = LayerScratch(ActivationBuffers(torch.device("cpu")))

    def recording(role, shape, dtype):
        asked.append((role, math.prod(shape) * dtype.itemsize))
        return scratch(role, shape, dtype)
    weight = torch.randn(3, 2, 3, 3)
    if algorithm == "f43":
        winograd.f43_conv3x3(x, winograd_op.weight_transform(weight), scratch=recording)
    else:
        winograd.up_winograd_conv(x, winograd_op.up_filters(weight), scratch=recording)
    tiles_in = [nbytes for role, nbytes in asked if role == "tiles_in"]
    assert (len(tiles_in) == 1) == winograd.one_call(algorithm, n, h, w)
    assert max(tiles_in) == dict(winograd.scratch_requests(algorithm, n, 2, 3, h, w))["tiles_in"]


def test_a_layer_call_lays_its_transient_tensors_end_to_end_apart():
    """Each role keeps its first place in a call (asked again no larger), the places do not overlap, start
    on pages of their own at different cache-line offsets, and a larger request moves the role past the rest;
    an arena of ``arena_bytes`` of a call's requests holds them without growing."""
    from stylegan_anime.inference.buffers import TRANSIENT_ARENA, ActivationBuffers, LayerScratch, arena_bytes
    buffers = ActivationBuffers(torch.device("cpu"))
    buffers.reserve({TRANSIENT_ARENA: 2 ** 20})
    scratch = LayerScratch(buffers)
    raw = scratch("raw", (2, 3, 5), torch.float32)
    tiles_in, tiles_out = scratch("tiles_in", (36, 4, 7), torch.float32), scratch("tiles_out", (36, 2, 7), torch.float32)
    again = scratch("tiles_in", (36, 4, 5), torch.float32)
    assert again.data_ptr() == tiles_in.data_ptr()
    spans = sorted((t.data_ptr(), t.data_ptr() + t.numel() * 4) for t in (raw, tiles_in, tiles_out))
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
    assert len({(t.data_ptr() - raw.data_ptr()) % 4096 for t in (raw, tiles_in, tiles_out)}) == 3
    raw.fill_(1.0)
    moved = scratch("tiles_in", (36, 4, 9), torch.float32)
    assert moved.data_ptr() >= tiles_out.data_ptr() + tiles_out.numel() * 4 and torch.all(raw == 1.0)
    buffers = ActivationBuffers(torch.device("cpu"))
    requests = [("raw", (2, 3, 5)), ("tiles_in", (36, 4, 7)), ("tiles_out", (36, 2, 7))]
    buffers.reserve({TRANSIENT_ARENA: arena_bytes((r, 4 * math.prod(shape)) for r, shape in requests)})
    reserved, scratch = buffers._bytes[TRANSIENT_ARENA], LayerScratch(buffers)
    for role, shape in requests:
        scratch(role, shape, torch.float32)
    assert buffers._bytes[TRANSIENT_ARENA] is reserved
    scratch("tiles_out", (36, 2, 8), torch.float32)  # larger than reserved for: the arena grows
    assert buffers._bytes[TRANSIENT_ARENA] is not reserved


def test_tiles_may_take_the_bytes_of_the_raw_output_placed_just_before():
    """With ``TILES_OVER_RAW`` the input tiles start where the raw output does (the conv writes it only once
    the tiles are dead) and the products lie past both; an arena of ``arena_bytes`` with the same sharing
    holds them, and is smaller. A role placed in between keeps them apart."""
    from stylegan_anime.inference.buffers import (TILES_OVER_RAW, TRANSIENT_ARENA, ActivationBuffers, LayerScratch,
                                                  arena_bytes)
    requests = [("raw", 4 * 3 * 5), ("tiles_in", 4 * 36 * 4 * 7), ("tiles_out", 4 * 36 * 2 * 7)]
    buffers = ActivationBuffers(torch.device("cpu"))
    buffers.reserve({TRANSIENT_ARENA: arena_bytes(requests, TILES_OVER_RAW)})
    reserved, scratch = buffers._bytes[TRANSIENT_ARENA], LayerScratch(buffers, TILES_OVER_RAW)
    raw, tiles_in, tiles_out = (scratch(role, (nbytes // 4,), torch.float32) for role, nbytes in requests)
    assert tiles_in.data_ptr() == raw.data_ptr()
    assert tiles_out.data_ptr() >= tiles_in.data_ptr() + tiles_in.numel() * 4
    assert buffers._bytes[TRANSIENT_ARENA] is reserved
    assert arena_bytes(requests, TILES_OVER_RAW) < arena_bytes(requests)
    apart = LayerScratch(shared=TILES_OVER_RAW)  # offsets only: views past this arena would move it
    first, _ = apart.place("raw", 60), apart.place("tiles_out", 32)
    assert apart.place("tiles_in", 32) >= first + 60


def _native_conv_inputs(seed: int, h: int, w: int, dtype: torch.dtype = torch.float32):
    """x [2, 16, h, w], scale [2, 16] in [0.5, 1.5), a [8, 16, 3, 3] weight and its F(4×4, 3×3) and stride-2
    filter transforms (skips the test where the native op is not built)."""
    torch.manual_seed(seed)
    x, scale = torch.randn(2, 16, h, w, dtype=dtype), torch.rand(2, 16, dtype=dtype) + 0.5
    if not winograd_op.native_available(x):
        pytest.skip("the native winograd op is not built")
    weight = torch.randn(8, 16, 3, 3, dtype=dtype)
    return x, scale, weight, winograd_op.weight_transform(weight), winograd_op.up_filters(weight)


def _scratch(role: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.full(shape, float("nan"), dtype=dtype)


@pytest.mark.parametrize("convs, upsampling", [(("conv_transpose3x3_s2_fused",), True),
                                              (("conv3x3_fused", "conv3x3_fused_rgb"), False),
                                              (("conv_transpose3x3_s2_transformed",), True)])
def test_always_mode_routes_a_plans_convs_to_winograd_and_agrees_with_the_reference(monkeypatch, convs, upsampling):
    """In "always" mode a plan sends every upsampling layer through the fused stride-2 Winograd transposed
    conv (the unfused one where the rule says so), and every stride-1 3×3 layer through the fused
    F(4×4, 3×3) (with its block's toRGB layer in the same pass); a module forward takes none of them, and
    the plan's images equal the reference layers'."""
    from stylegan_anime.networks import winograd
    if not winograd_op.native_available(torch.zeros(1)):
        pytest.skip("the native winograd op is not built")
    if convs == ("conv_transpose3x3_s2_transformed",):
        monkeypatch.setattr(winograd, "up_algorithm", lambda x, shape, kept: "winograd" if kept else None)
    calls = []
    for conv in convs:
        real = getattr(winograd_op, conv)
        monkeypatch.setattr(winograd_op, conv, lambda *a, real=real, conv=conv, **k: calls.append(conv) or real(*a, **k))
    torch.manual_seed(1)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(2, G.z_dim)
    layers = sum(1 for layer in G.synthesis.noise_layers() if (layer.up > 1) == upsampling)
    with use_winograd("always"), torch.no_grad():
        G(z, noise_mode="const")
        assert calls == []
        images = G.plan("cpu", 2).generate(z, noise_mode="const")
        assert len(calls) == layers > 0
        if not upsampling:  # a skip generator: every block's conv1 feeds its toRGB layer
            assert calls.count("conv3x3_fused_rgb") == len(G.synthesis.blocks())
    with use_winograd("off"):
        reference = _reference(G, z, noise_mode="const")
    torch.testing.assert_close(images, reference, rtol=1e-5, atol=2e-5 * reference.abs().max().item())


def _config_f_256():
    """A config-F 256² generator with random buffers and one z; skips without the native winograd op."""
    if not winograd_op.native_available(torch.zeros(1)):
        pytest.skip("needs the native winograd op")
    torch.manual_seed(0)
    G = randomize_buffers(Generator(GeneratorConfig(img_resolution=256))).eval().requires_grad_(False)
    return G, torch.randn(1, G.z_dim)


def test_a_one_image_plan_makes_the_32px_layers_filters_on_the_way_instead_of_keeping_them(monkeypatch):
    """Config F at 256², one image: b32.conv1 (64 tiles) makes its F(4×4, 3×3) filters block by block per
    call, so the plan keeps 36 MiB less (its 512 × 512 filter transform), with the kept plan's images; the
    64² layer (256 tiles) keeps its filters. b16.conv1 (16 tiles, too few to keep filters for) runs the same
    way instead of oneDNN's direct conv, b8.conv1 (4 tiles) does not."""
    from stylegan_anime.inference.plan import build_plan, total_prepared_bytes
    from stylegan_anime.networks import winograd
    G, z = _config_f_256()
    plan = build_plan(G, "cpu", 1)
    taken = {lp.name: lp for lp in plan.layers}
    assert taken["b32.conv1"].algorithm == "f43_unkept" and taken["b32.conv1"].prepared is None
    assert taken["b64.conv1"].algorithm == "f43"
    assert (taken["b16.conv1"].algorithm, taken["b8.conv1"].algorithm) == ("f43_unkept", "direct")
    monkeypatch.setattr(winograd, "filters_unkept", lambda x, shape: False)
    kept = build_plan(G, "cpu", 1)
    assert {lp.name: lp.algorithm for lp in kept.layers}["b16.conv1"] == "direct"
    assert total_prepared_bytes(kept) - total_prepared_bytes(plan) == 36 * 512 * 512 * 4
    expected = kept.generate(z, noise_mode="const")
    torch.testing.assert_close(plan.generate(z, noise_mode="const"), expected, rtol=1e-5,
                               atol=2e-5 * expected.abs().max().item())


def test_a_one_image_plan_makes_the_64px_stride2_filters_in_the_arenas_free_room(monkeypatch):
    """Config F at 256², one image: b64.conv0's stride-2 filter planes (36 MiB) fit in the arena beside that
    call's tiles, as the later layers sized it, so the plan makes them per call there and keeps the taps
    instead (30 MiB less kept), with the same buffers and bit for bit the kept plan's images. b128.conv0 and
    b256.conv0 would grow the arena: they keep theirs. Neither at 8 images, nor where a plan of another
    batch size keeps them already."""
    from stylegan_anime.inference import plan as plans
    from stylegan_anime.inference.plan import build_plan, total_prepared_bytes
    G, z = _config_f_256()
    plan = build_plan(G, "cpu", 1)
    taken = {lp.name: lp.algorithm for lp in plan.layers}
    assert taken["b64.conv0"] == "up_winograd_unkept"
    assert (taken["b128.conv0"], taken["b256.conv0"]) == ("up_winograd", "up_winograd")
    monkeypatch.setattr(plans, "FILTERS_IN_ARENA", False)
    kept = build_plan(G, "cpu", 1)
    assert {lp.name: lp.algorithm for lp in kept.layers}["b64.conv0"] == "up_winograd"
    assert plan.buffer_bytes == kept.buffer_bytes
    assert total_prepared_bytes(kept) - total_prepared_bytes(plan) == 30 * 512 * 512 * 4
    assert torch.equal(plan.generate(z, noise_mode="const"), kept.generate(z, noise_mode="const"))
    monkeypatch.setattr(plans, "FILTERS_IN_ARENA", True)
    eight = build_plan(G, "cpu", 8)
    assert "up_winograd_unkept" not in {lp.algorithm for lp in eight.layers}
    one = eight.for_batch(1)  # shares eight's store, which keeps b64.conv0's planes: they are used
    assert {lp.name: lp.algorithm for lp in one.layers}["b64.conv0"] == "up_winograd"
