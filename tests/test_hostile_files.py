"""Fuzz corpus of broken and absurd weights files (issue 20, items 1 and 3).

Each case writes one small file in a real layout (our safetensors, NVlabs TF pickle,
stylegan2-ada-pytorch pickle, rosinality checkpoint) from a tiny network, breaks one thing
in it, and asserts through ``hostile.refused``: a one-line ``UserError``, RSS growth within a
budget far below what the file's declared sizes would cost if they were trusted, and no hang.
The budgets are the point: a config that declares 2**20 pixels or 4096 channels must be
refused from its header and the meta device, before any weight is allocated.
"""
from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import format_fixtures as ff
from conftest import randomize_buffers, small_d_config, small_g_config
from hostile import corpus_counts, refused
from stylegan_anime import cli
from stylegan_anime.io import formats, loading
from stylegan_anime.io.formats import native
from stylegan_anime.networks import Discriminator, Generator, validation

BUDGET = 64  # MiB: the tiny model is < 1 MiB; a trusted absurd config would need GBs
TIMEOUT = 10


@pytest.fixture(scope="module")
def nets() -> tuple[Generator, Generator, Discriminator]:
    torch.manual_seed(0)
    cfg = small_g_config(img_resolution=16, channel_base=256, channel_max=16)
    G_ema = randomize_buffers(Generator(cfg)).eval()
    G = randomize_buffers(Generator(cfg), seed=1).eval()
    D = Discriminator(small_d_config(img_resolution=16, channel_base=256, channel_max=16)).eval()
    return G_ema, G, D


@pytest.fixture(scope="module", autouse=True)
def warm_readers(nets, tmp_path_factory) -> None:
    """Load one valid file of each layout first: lazy imports and allocator warm-up are not
    what the RSS budgets measure."""
    d = tmp_path_factory.mktemp("warm")
    for path in (native.save(nets[0], d / "ok.safetensors"), write_tf(d / "ok.pkl", nets),
                 write_ada(d / "ok_ada.pkl", nets), write_ros(d / "ok.pt", nets, lambda c: None)):
        formats.read(path)


# --- our format ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def native_parts(nets, tmp_path_factory) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and parsed configs of a valid file holding G_ema and D."""
    path = native.save(native.Networks(G_ema=nets[0], D=nets[2]), tmp_path_factory.mktemp("n") / "ok.safetensors")
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        configs = json.loads(f.metadata()["configs"])
    return load_file(str(path)), configs


def write_native(path: Path, tensors: dict, configs_text: str | None, sidecar: str | None = None) -> Path:
    meta = {"format": native.FORMAT} if configs_text is None else {"format": native.FORMAT, "configs": configs_text}
    save_file(tensors, str(path), metadata=meta)
    if sidecar is not None:
        native.sidecar_path(path).write_text(sidecar)
    return path


def g_cfg(**changes) -> Callable[[dict], dict]:
    def edit(configs: dict) -> dict:
        configs = json.loads(json.dumps(configs))
        configs["G_ema"].update(changes)
        return configs
    return edit


NATIVE_CONFIG_CASES: dict[str, tuple[Callable[[dict], object], str]] = {
    "img_resolution 2**20": (g_cfg(img_resolution=2 ** 20), "img_resolution"),
    "img_resolution string": (g_cfg(img_resolution="64"), "img_resolution"),
    "img_resolution float": (g_cfg(img_resolution=64.0), "img_resolution"),
    "img_resolution not a power of two": (g_cfg(img_resolution=48), "power of two"),
    "channel_max 0": (g_cfg(channel_max=0), "channel_max"),
    "negative channel_max": (g_cfg(channel_max=-16), "channel_max"),
    "negative channel_base": (g_cfg(channel_base=-256), "channel_base"),
    "channel_base below the resolution": (g_cfg(channel_base=1), "no channels"),
    "channel_max 4096 on a small file": (g_cfg(channel_max=4096, channel_base=1 << 20), "but the file holds"),
    "mapping_layers 10**6": (g_cfg(mapping_layers=10 ** 6), "mapping_layers"),
    "mapping_layers 1e6 float": (g_cfg(mapping_layers=1e6), "mapping_layers"),
    "z_dim 0": (g_cfg(z_dim=0), "z_dim"),
    "w_dim a bool": (g_cfg(w_dim=True), "w_dim"),
    "img_channels 0": (g_cfg(img_channels=0), "img_channels"),
    "architecture a number": (g_cfg(architecture=5), "architecture"),
    "unknown label_mode": (g_cfg(label_mode="nope"), "label_mode"),
    "w_avg_beta 2": (g_cfg(w_avg_beta=2.0), "w_avg_beta"),
    "num_fp16_res 99": (g_cfg(num_fp16_res=99), "num_fp16_res"),
    "empty resample_filter": (g_cfg(resample_filter=[]), "resample_filter"),
    "zero resample_filter": (g_cfg(resample_filter=[0, 0]), "resample_filter"),
    "resample_filter of strings": (g_cfg(resample_filter=["a", "b"]), "resample_filter"),
    "resample_filter nested": (g_cfg(resample_filter=[[1, 3], [3, 1]]), "resample_filter"),
    "extra not strings": (g_cfg(extra={"a": [1, 2]}), "extra"),
    "unknown field": (g_cfg(bogus=1), "bogus"),
    "kind of a discriminator": (g_cfg(kind="DiscriminatorConfig"), "expected a GeneratorConfig"),
    "parameters beyond the cap": (g_cfg(img_resolution=8192, channel_base=1 << 24, channel_max=8192),
                                  "parameters"),
    "unknown role": (lambda c: {**c, "X": {}}, "unknown network"),
    "no generator": (lambda c: {"D": c["D"]}, "no generator"),
    "role not a dict": (lambda c: {**c, "G_ema": 5}, "JSON object"),
    "configs a list": (lambda c: [1, 2], "JSON object"),
    "configs empty": (lambda c: {}, "JSON object"),
    "configs null": (lambda c: None, "JSON object"),
}


@pytest.mark.parametrize("case", sorted(NATIVE_CONFIG_CASES))
def test_native_absurd_configs_are_refused_from_the_header(native_parts, tmp_path, case):
    tensors, configs = native_parts
    edit, match = NATIVE_CONFIG_CASES[case]
    path = write_native(tmp_path / "bad.safetensors", tensors, json.dumps(edit(configs)))
    refused("native", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, match=match)


NATIVE_TEXT_CASES = {
    "configs malformed JSON": ('{"G_ema": {', "not valid JSON"),
    "configs nested 1e5 deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "conv_clamp NaN": (None, "conv_clamp"),
}


@pytest.mark.parametrize("case", sorted(NATIVE_TEXT_CASES))
def test_native_unparseable_configs_are_refused(native_parts, tmp_path, case):
    tensors, configs = native_parts
    text, match = NATIVE_TEXT_CASES[case]
    if text is None:  # Python's json writes and reads NaN
        text = json.dumps(g_cfg(conv_clamp=float("nan"))(configs))
    path = write_native(tmp_path / "bad.safetensors", tensors, text)
    refused("native", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, match=match)


def _replace(name: str, value: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], dict]:
    return lambda t: {**t, name: value(t[name])}


NATIVE_TENSOR_CASES: dict[str, tuple[Callable[[dict], dict], str]] = {
    "wrong shape": (_replace("G_ema.mapping.fc0.weight", lambda v: torch.zeros(v.shape[0] + 1, v.shape[1])),
                    "mapping.fc0.weight has shape"),
    "integer tensor": (_replace("G_ema.mapping.fc0.bias", lambda v: v.to(torch.int32)), "not floating point"),
    "missing tensor": (lambda t: {k: v for k, v in t.items() if k != "G_ema.synthesis.b4.const"}, "missing"),
    "extra tensor": (lambda t: {**t, "G_ema.payload": torch.zeros(3)}, "unexpected payload"),
    "tensor of no network": (lambda t: {**t, "G.x": torch.zeros(3)}, "belongs to no network"),
    "NaN weight": (_replace("G_ema.synthesis.b8.conv0.weight", lambda v: v.index_fill(0, torch.tensor([1]),
                                                                                       float("nan"))),
                   "G_ema tensor synthesis.b8.conv0.weight holds NaN"),
    "Inf weight": (_replace("D.b4.fc.bias", lambda v: v.index_fill(0, torch.tensor([0]), float("inf"))),
                   "D tensor b4.fc.bias holds NaN or infinite"),
}


@pytest.mark.parametrize("case", sorted(NATIVE_TENSOR_CASES))
def test_native_tensors_that_do_not_fit_are_refused(native_parts, tmp_path, case):
    tensors, configs = native_parts
    edit, match = NATIVE_TENSOR_CASES[case]
    path = write_native(tmp_path / "bad.safetensors", edit(tensors), json.dumps(configs))
    refused("native", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, match=match)


@pytest.mark.parametrize("sidecar,match", [
    ('{"format": "stylegan-anime/1"}', "no \"configs\""),
    ("[1, 2, 3]", "no \"configs\""),
    ('{"configs": ', "not valid JSON"),
    ('{"configs": {"G_ema": []}}', "JSON object"),
    ("[" * 50_000, "nested too deeply"),
])
def test_native_broken_sidecars_are_refused(native_parts, tmp_path, sidecar, match):
    tensors, _ = native_parts
    path = write_native(tmp_path / "bad.safetensors", tensors, None, sidecar)
    refused("native", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, match=match)


def test_native_header_claiming_more_than_the_file_holds(native_parts, tmp_path):
    tensors, configs = native_parts
    path = write_native(tmp_path / "bad.safetensors", tensors, json.dumps(configs))
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    refused("native", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, match="not a readable")


def test_nonfinite_weights_load_with_the_escape_and_the_cli_refuses_them(native_parts, tmp_path, capsys):
    tensors, configs = native_parts
    bad = {**tensors, "G_ema.mapping.fc1.bias": torch.full_like(tensors["G_ema.mapping.fc1.bias"], float("nan"))}
    path = write_native(tmp_path / "nan.safetensors", bad, json.dumps(configs))
    G = loading.load(path, allow_nonfinite=True)
    assert torch.isnan(G.mapping.fc1.bias).all() and not torch.isnan(G.mapping.fc0.bias).any()
    out = tmp_path / "out"
    code = cli.main(["generate", "--network", str(path), "--seeds", "1", "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not list(tmp_path.rglob("*.png"))
    assert err.startswith("stylegan-anime generate: error:") and "mapping.fc1.bias" in err and "\n" not in err


@pytest.mark.parametrize("kind,changes", [
    ("G", {}), ("G", dict(img_resolution=4)), ("G", dict(img_resolution=64, channel_base=64, channel_max=64)),
    ("G", dict(architecture="resnet", c_dim=5, z_dim=8)),
    ("G", dict(architecture="orig", label_mode="concat", c_dim=3)),
    ("G", dict(mapping_layers=1, w_dim=64)), ("D", {}), ("D", dict(architecture="skip", c_dim=4, cmap_dim=8)),
    ("D", dict(architecture="orig", c_dim=3, label_mode="output", mbstd_num_channels=4)),
    ("D", dict(img_resolution=128, channel_base=2048, channel_max=64)),
])
def test_the_size_estimate_is_a_close_lower_bound(kind, changes):
    """The gate before building compares the config's estimated weights with what the file
    holds: it must never exceed a real network's count (no valid file refused) and must be
    close (a hostile config cannot hide most of its size)."""
    cfg = (small_g_config if kind == "G" else small_d_config)(**changes)
    net = (Generator if kind == "G" else Discriminator)(cfg)
    actual = sum(v.numel() for v in net.state_dict().values())
    assert 0.8 * actual <= validation.estimate_parameters(cfg) <= actual


# --- NVlabs TensorFlow pickles ------------------------------------------------------------------

def write_tf(path: Path, nets, edit: Callable[[tuple], None] | None = None, kwargs: dict | None = None) -> Path:
    """Like ``format_fixtures.write_tf_pickle``, with ``edit`` applied to the three Networks first."""
    G_ema, G, D = nets
    src = ff.hostile_source(path.parent / ff.MARKER_NAME)
    tf = (ff.tf_generator_networks(G, "G", src), ff.tf_discriminator_network(D, src),
          ff.tf_generator_networks(G_ema, "Gs", src))
    for n in (tf[0], tf[2]):
        n._state["static_kwargs"].update(kwargs or {})
    if edit is not None:
        edit(tf)
    with ff.fake_modules(**{"dnnlib.tflib.network": {"Network": ff.Network}}):
        path.write_bytes(pickle.dumps(tf, protocol=4))
    return path


TF_KWARG_CASES: dict[str, tuple[dict, str]] = {
    "resolution 2**20": ({"resolution": 2 ** 20}, "img_resolution"),
    "resolution string": ({"resolution": "64"}, "resolution"),
    "resolution float": ({"resolution": 64.0}, "resolution"),
    "fmap_max negative": ({"fmap_max": -1}, "channel_max"),
    "fmap_base zero": ({"fmap_base": 0}, "channel_base"),
    "fmap_max huge": ({"fmap_max": 1 << 20, "fmap_base": 1 << 30}, "channel"),
    "mapping_layers 10**6": ({"mapping_layers": 10 ** 6}, "mapping_layers"),
    "latent_size 0": ({"latent_size": 0}, "z_dim"),
    "resample_kernel empty": ({"resample_kernel": []}, "resample_filter"),
    "resample_kernel a string": ({"resample_kernel": "1331"}, "resample_kernel"),
    "num_channels float": ({"num_channels": 1.5}, "num_channels"),
    "architecture a number": ({"architecture": 7}, "architecture"),
    "mapping_lrmul NaN": ({"mapping_lrmul": float("nan")}, "mapping_lr_multiplier"),
    "fixed setting a nested list": ({"nonlinearity": [[1] * 10] * 10}, "nonlinearity"),
}


@pytest.mark.parametrize("case", sorted(TF_KWARG_CASES))
def test_tf_absurd_static_kwargs_are_refused(nets, tmp_path, case):
    kwargs, match = TF_KWARG_CASES[case]
    path = write_tf(tmp_path / "bad.pkl", nets, kwargs=kwargs)
    marker = tmp_path / ff.MARKER_NAME
    refused("tf", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, marker=marker, match=match)


def _tf_var(net, name: str, value) -> None:
    net._state["variables"] = [(k, value if k == name else v) for k, v in net._state["variables"]]


def _nest(tf) -> None:
    inner = ff.Network(dict(version=4, name="x", static_kwargs={}, variables=[], components={}))
    for _ in range(20):
        inner = ff.Network(dict(version=4, name="x", static_kwargs={}, variables=[], components={"c": inner}))
    tf[2]._state["components"]["mapping"]._state["components"] = {"deep": inner}


TF_STRUCTURE_CASES: dict[str, tuple[Callable[[tuple], None], str]] = {
    "dlatent_avg of 1M elements": (lambda tf: _tf_var(tf[2], "dlatent_avg", np.zeros(1 << 20, np.float32)),
                                   "dlatent_avg has shape"),
    "conv weight of two dimensions": (
        lambda tf: _tf_var(tf[2]._state["components"]["synthesis"], "8x8/Conv1/weight",
                           np.zeros((3, 3), np.float32)), "8x8/Conv1/weight has shape"),
    "integer variable": (lambda tf: _tf_var(tf[2], "dlatent_avg", np.zeros(32, np.int64)), "floating-point"),
    "variable a string": (lambda tf: _tf_var(tf[2], "dlatent_avg", "x" * 100), "floating-point"),
    "variables not a list": (lambda tf: tf[2]._state.update(variables=5), "no list of variables"),
    "static_kwargs a list": (lambda tf: tf[2]._state.update(static_kwargs=[1, 2]), "not a mapping"),
    "components nested 20 deep": (_nest, "nested deeper"),
    "discriminator conv of 2 dims": (lambda tf: _tf_var(tf[1], "4x4/Conv/weight", np.zeros((4, 4), np.float32)),
                                     "4x4/Conv/weight"),
}


@pytest.mark.parametrize("case", sorted(TF_STRUCTURE_CASES))
def test_tf_broken_variables_are_refused_before_conversion(nets, tmp_path, case):
    edit, match = TF_STRUCTURE_CASES[case]
    path = write_tf(tmp_path / "bad.pkl", nets, edit)
    marker = tmp_path / ff.MARKER_NAME
    refused("tf", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, marker=marker, match=match)


# --- stylegan2-ada-pytorch pickles --------------------------------------------------------------

def write_ada(path: Path, nets, g_kwargs: dict | None = None, edit: Callable[[dict], None] | None = None) -> Path:
    """Like ``format_fixtures.write_ada_pickle``, with ``edit`` applied to the snapshot dict first."""
    G_ema, G, D = nets
    src = ff.hostile_source(path.parent / ff.MARKER_NAME)
    kw = ff.ada_g_kwargs(G_ema)
    for k, v in (g_kwargs or {}).items():
        if isinstance(v, dict) and isinstance(kw.get(k), dict):
            kw[k] = ff.EasyDict({**kw[k], **v})
        else:
            kw[k] = v
    data = dict(G=ff._persistent_tree(G, src, ff.ada_g_kwargs(G)), D=ff._persistent_tree(D, src, ff.ada_d_kwargs(D)),
                G_ema=ff._persistent_tree(G_ema, src, kw), augment_pipe=None)
    if edit is not None:
        edit(data)
    with ff.fake_modules(**{"torch_utils.persistence": {"_reconstruct_persistent_obj": ff._reconstruct_persistent_obj},
                            "dnnlib.util": {"EasyDict": ff.EasyDict}}):
        path.write_bytes(pickle.dumps(data, protocol=2))
    return path


def _deep_dict(depth: int) -> dict:
    d: dict = {"x": 1}
    for _ in range(depth):
        d = {"k": d}
    return d


ADA_KWARG_CASES: dict[str, tuple[dict, str]] = {
    "img_resolution 2**20": ({"img_resolution": 2 ** 20}, "img_resolution"),
    "img_resolution string": ({"img_resolution": "64"}, "img_resolution"),
    "img_resolution float": ({"img_resolution": 64.0}, "img_resolution"),
    "negative channels": ({"synthesis_kwargs": {"channel_max": -1}}, "channel_max"),
    "huge channels": ({"synthesis_kwargs": {"channel_max": 1 << 20, "channel_base": 1 << 30}}, "channel"),
    "mapping layers 10**6": ({"mapping_kwargs": {"num_layers": 10 ** 6}}, "mapping_layers"),
    "z_dim 0": ({"z_dim": 0}, "z_dim"),
    "empty resample_filter": ({"synthesis_kwargs": {"resample_filter": []}}, "resample_filter"),
    "kwargs nested 50 deep": ({"fork_kwargs": _deep_dict(50)}, "nested deeper"),
    "conv_clamp a list": ({"synthesis_kwargs": {"conv_clamp": [1] * 1000}}, "conv_clamp"),
}


@pytest.mark.parametrize("case", sorted(ADA_KWARG_CASES))
def test_ada_absurd_init_kwargs_are_refused(nets, tmp_path, case):
    g_kwargs, match = ADA_KWARG_CASES[case]
    path = write_ada(tmp_path / "bad.pkl", nets, g_kwargs)
    marker = tmp_path / ff.MARKER_NAME
    refused("ada", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, marker=marker, match=match)


def _ada_param(data: dict, module: str, name: str, value) -> None:
    tree = data["G_ema"]
    for part in module.split("."):
        tree = tree.meta["state"]["_modules"][part]
    tree.meta["state"]["_parameters"][name] = value


ADA_STATE_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "expanded weight": (lambda d: _ada_param(d, "mapping.fc0", "weight", torch.zeros(1).expand(32, 32)),
                        "expanded"),
    "wrong shape": (lambda d: _ada_param(d, "mapping.fc0", "weight", torch.zeros(33, 32)), "has shape"),
    "integer weight": (lambda d: _ada_param(d, "mapping.fc0", "weight", torch.zeros(32, 32, dtype=torch.int32)),
                       "not floating point"),
    "weight a string": (lambda d: _ada_param(d, "mapping.fc0", "weight", "w"), "not a tensor"),
    "parameters a list": (lambda d: d["G_ema"].meta["state"]["_modules"]["mapping"].meta["state"].update(
        _parameters=[1]), "not a mapping"),
    "submodule a string": (lambda d: d["G_ema"].meta["state"]["_modules"].update(mapping="m"), "submodule mapping"),
    "NaN weight": (lambda d: _ada_param(d, "mapping.fc1", "bias", torch.full([32], float("nan"))),
                   "mapping.fc1.bias holds NaN"),
}


@pytest.mark.parametrize("case", sorted(ADA_STATE_CASES))
def test_ada_broken_tensors_are_refused(nets, tmp_path, case):
    edit, match = ADA_STATE_CASES[case]
    path = write_ada(tmp_path / "bad.pkl", nets, edit=edit)
    marker = tmp_path / ff.MARKER_NAME
    refused("ada", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, marker=marker, match=match)


# --- rosinality checkpoints ---------------------------------------------------------------------

def write_ros(path: Path, nets, edit: Callable[[dict], None]) -> Path:
    G_ema, G, D = nets
    ckpt = {"g_ema": OrderedDict(ff.rosinality_g_state(G_ema)), "d": ff.rosinality_d_state(D),
            "latent_avg": G_ema.mapping.w_avg.clone()}
    edit(ckpt)
    torch.save(ckpt, path)
    return path


def _g(name: str, value) -> Callable[[dict], None]:
    return lambda c: c["g_ema"].__setitem__(name, value(c["g_ema"][name]) if callable(value) else value)


ROS_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "expanded 8192x8192 style weight": (_g("style.1.weight", torch.zeros(1).expand(8192, 8192)), "expanded"),
    "zero channels": (_g("input.input", torch.zeros(1, 0, 4, 4)), "channel"),
    "input of one dimension": (_g("input.input", torch.zeros(16)), "fewer dimensions"),
    "integer tensor": (_g("style.1.bias", lambda v: v.to(torch.int64)), "not floating-point"),
    "entry an int": (_g("style.1.bias", 5), "not floating-point"),
    "noise weight of many elements": (_g("conv1.noise.weight", torch.zeros(7)), "noise_strength"),
    "missing tensor": (lambda c: c["g_ema"].pop("style.2.bias"), "lacks style.2.bias"),
    "unused tensor": (_g("payload", torch.zeros(3)), "payload"),
    "13 to_rgbs layers": (lambda c: c["g_ema"].update({f"to_rgbs.{j}.bias": torch.zeros(3) for j in range(13)}),
                          "resolution"),
    "latent_avg wrong size": (lambda c: c.update(latent_avg=torch.zeros(5)), "latent_avg"),
    "lr_mlp a string": (lambda c: c.update(args=__import__("argparse").Namespace(lr_mlp="x")),
                        "mapping_lr_multiplier"),
    "g_ema a list": (lambda c: c.update(g_ema=[1, 2]), "expected a rosinality"),
    "d without blocks": (lambda c: c.update(d={"final_conv.0.weight": torch.zeros(1)}), "down-sampling blocks"),
    "d expanded": (lambda c: c["d"].__setitem__("final_linear.0.weight", torch.zeros(1).expand(4096, 4096)),
                   "expanded"),
    "NaN latent_avg": (lambda c: c.update(latent_avg=torch.full([32], float("nan"))), "mapping.w_avg"),
}


@pytest.mark.parametrize("case", sorted(ROS_CASES))
def test_rosinality_broken_state_dicts_are_refused(nets, tmp_path, case):
    edit, match = ROS_CASES[case]
    path = write_ros(tmp_path / "bad.pt", nets, edit)
    refused("rosinality", lambda: loading.load(path), rss_budget_mib=BUDGET, timeout_s=TIMEOUT, match=match)


def test_the_corpus_is_large_and_valid_files_still_load(nets, native_parts, tmp_path):
    """The unbroken files of every layout load after the checks (the corpus breaks one thing each)."""
    n = (len(NATIVE_CONFIG_CASES) + len(NATIVE_TEXT_CASES) + len(NATIVE_TENSOR_CASES) + 5 + 1 + len(TF_KWARG_CASES)
         + len(TF_STRUCTURE_CASES) + len(ADA_KWARG_CASES) + len(ADA_STATE_CASES) + len(ROS_CASES))
    assert n >= 50
    G_ema = nets[0]
    for path in (write_tf(tmp_path / "ok.pkl", nets), write_ada(tmp_path / "ok_ada.pkl", nets),
                 write_ros(tmp_path / "ok.pt", nets, lambda c: None)):
        got = formats.read(path).G_ema
        torch.testing.assert_close(got.mapping.fc0.weight, G_ema.mapping.fc0.weight)
        torch.testing.assert_close(got.mapping.w_avg, G_ema.mapping.w_avg)
    print(corpus_counts())
