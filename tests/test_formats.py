"""Other people's weights files: each public layout loads to the same networks, converts
bit-exactly, and no file makes the loader run its code."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stylegan_anime as sa
from stylegan_anime.ops import kernels
from stylegan_anime.cli import main
from stylegan_anime.errors import UserError
from stylegan_anime.networks import Discriminator, Generator

from conftest import randomize_buffers, small_d_config, small_g_config
import format_fixtures as ff


def make_nets(c_dim: int = 0, arch: str = "skip", d_label_mode: str = "project", g_label_mode: str = "embed",
              seed: int = 0):
    torch.manual_seed(seed)
    G_ema = randomize_buffers(Generator(small_g_config(c_dim=c_dim, architecture=arch, label_mode=g_label_mode,
                                                       img_resolution=16)), seed)
    G = randomize_buffers(Generator(small_g_config(c_dim=c_dim, architecture=arch, label_mode=g_label_mode,
                                                   img_resolution=16)), seed + 1)
    D = Discriminator(small_d_config(c_dim=c_dim, img_resolution=16, label_mode=d_label_mode,
                                     cmap_dim=16 if c_dim and d_label_mode == "project" else None))
    with torch.no_grad():
        for p in D.parameters():
            p.add_(torch.randn(p.shape) * 0.1)
    return G_ema.eval(), G.eval(), D.eval()


def inputs(G: Generator, n: int = 2):
    gen = torch.Generator().manual_seed(5)
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.nn.functional.one_hot(torch.arange(n) % G.c_dim, G.c_dim).float() if G.c_dim else None
    return z, c


def assert_same_generator(A: Generator, B: Generator, psi: float = 0.7):
    z, c = inputs(A)
    torch.testing.assert_close(B(z, c, psi=psi), A(z, c, psi=psi), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(B(z, c, noise_mode="const"), A(z, c, noise_mode="const"), rtol=1e-5, atol=1e-5)


def assert_same_discriminator(A: Discriminator, B: Discriminator):
    gen = torch.Generator().manual_seed(7)
    img = torch.randn([4, 3, A.img_resolution, A.img_resolution], generator=gen)
    c = torch.nn.functional.one_hot(torch.arange(4) % A.c_dim, A.c_dim).float() if A.c_dim else None
    torch.testing.assert_close(B(img, c), A(img, c), rtol=1e-5, atol=1e-5)


def assert_bit_exact(a: torch.nn.Module, b: torch.nn.Module):
    sa_, sb = a.state_dict(), b.state_dict()
    assert sa_.keys() == sb.keys()
    for k in sa_:
        assert torch.equal(sa_[k], sb[k]), k


def assert_converts_bit_exactly(src, tmp_path, nets):
    """convert IN OUT, then convert our own file again: both equal the loaded networks bit for bit."""
    out1, out2 = tmp_path / "c1.safetensors", tmp_path / "c2.safetensors"
    assert main(["convert", str(src), str(out1)]) == 0
    assert main(["convert", str(out1), str(out2)]) == 0
    for path in (out1, out2):
        back = sa.load_networks(path)
        for role in ("G_ema", "G", "D"):
            if getattr(nets, role) is None:
                assert getattr(back, role) is None
            else:
                assert_bit_exact(getattr(nets, role), getattr(back, role))
                assert getattr(back, role).cfg == getattr(nets, role).cfg
    # The header's key order is the safetensors library's choice; its content and every tensor byte agree.
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(out1), "pt") as a, safe_open(str(out2), "pt") as b:
        assert a.metadata() == b.metadata()
    t1, t2 = load_file(str(out1)), load_file(str(out2))
    assert t1.keys() == t2.keys() and all(torch.equal(t1[k], t2[k]) for k in t1)


# --- NVlabs TensorFlow pickles --------------------------------------------------------------

@pytest.mark.parametrize("c_dim,arch,g_mode,d_mode", [
    (0, "skip", "embed", "project"),     # the anime portrait models: unconditional config F
    (3, "skip", "embed", "project"),     # stylegan2-ada TF: LabelEmbed, D label mapping
    (3, "skip", "concat", "output"),     # original stylegan2 TF: LabelConcat, per-label D output
    (0, "resnet", "embed", "project"),   # config E-style resnet G (Skip convs)
])
def test_tf_pickle_loads_the_same_networks(tmp_path, c_dim, arch, g_mode, d_mode):
    G_ema, G, D = make_nets(c_dim, arch, d_mode, g_mode)
    marker = tmp_path / ff.MARKER_NAME
    path = ff.write_tf_pickle(tmp_path / "net.pkl", G_ema, G, D, marker, label_mode=g_mode)
    nets = sa.load_networks(path)
    assert not marker.exists()
    assert nets.G_ema.cfg.label_mode == g_mode and nets.D.cfg.label_mode == d_mode
    assert_same_generator(G_ema, nets.G_ema)
    assert_same_generator(G, nets.G)
    assert_same_discriminator(D, nets.D)
    assert nets.meta["source_format"] == "nvlabs-tf-pickle"
    assert_converts_bit_exactly(path, tmp_path, nets)


def test_a_lone_tf_gs_pickle_loads(tmp_path):
    import pickle
    G_ema, _, _ = make_nets(c_dim=2)
    with ff.fake_modules(**{"dnnlib.tflib.network": {"Network": ff.Network}}):
        (tmp_path / "gs.pkl").write_bytes(pickle.dumps(ff.tf_generator_networks(G_ema, "Gs", ""), protocol=4))
    nets = sa.load_networks(tmp_path / "gs.pkl")
    assert nets.G is None and nets.D is None
    assert_same_generator(G_ema, nets.G_ema)


def test_tf_pickle_from_python2_era_numpy_names_loads(tmp_path):
    """Pickles written under numpy 1.x name numpy.core.multiarray (and protocol 2 spells bytes with
    _codecs.encode); both are read."""
    G_ema, G, D = make_nets()
    # The TF training loop passed the data set's shape as numpy integers.
    shape = {"resolution": np.int64(16), "num_channels": np.int64(3), "label_size": np.int64(0)}
    path = ff.write_tf_pickle(tmp_path / "old.pkl", G_ema, G, D, tmp_path / "m", protocol=2, extra_kwargs=shape)
    data = path.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in data and b"_codecs\nencode" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert_same_generator(G_ema, sa.load(path))


def _tf_params(G: Generator, tmp_path):
    """The Gs variables as stored in a TF pickle, keyed 'mapping/Dense0/weight' etc."""
    from stylegan_anime.io.formats import tf_pickle
    from stylegan_anime.io.formats.python_pickle import read_pickle
    path = ff.write_tf_pickle(tmp_path / "p.pkl", G, G, make_nets()[2], tmp_path / ff.MARKER_NAME)
    return tf_pickle.collect_params(read_pickle(path)[2])


def test_tf_variables_follow_the_published_formulas(tmp_path):
    """Independent of our transforms: evaluate layers from the TF variables with the formulas of the
    TF code (dense x @ W * lrmul/sqrt(in); modulation + 1; upsample_2d then conv2d with W [k,k,in,out]
    as a correlation) and compare with our network loaded from the same pickle."""
    G_ema, _, _ = make_nets()
    p = _tf_params(G_ema, tmp_path)
    G = sa.load(ff.write_tf_pickle(tmp_path / "q.pkl", G_ema, G_ema, make_nets()[2], tmp_path / "m"))
    gen = torch.Generator().manual_seed(3)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    # Mapping Dense0: lrelu((x @ W) * lrmul / sqrt(in) + b * lrmul) * sqrt(2).
    x = torch.randn([2, 32], generator=gen)
    W, b, lrmul = t(p["mapping/Dense0/weight"]), t(p["mapping/Dense0/bias"]), G.cfg.mapping_lr_multiplier
    ref = F.leaky_relu(x @ W * (lrmul / math.sqrt(32)) + b * lrmul, 0.2) * math.sqrt(2)
    torch.testing.assert_close(G.mapping.fc0(x), ref, rtol=1e-5, atol=1e-5)
    # 8x8/Conv0_up: modulated, demodulated, upsampled conv + noise + bias + lrelu.
    w = torch.randn([2, G.w_dim], generator=gen)
    xin = torch.randn([2, G.synthesis.b8.conv0.in_channels, 4, 4], generator=gen)
    name = "synthesis/8x8/Conv0_up"
    s = w @ t(p[f"{name}/mod_weight"]) / math.sqrt(G.w_dim) + t(p[f"{name}/mod_bias"]) + 1   # [N, I]
    Wt = t(p[f"{name}/weight"])                                                               # [k, k, I, O]
    ww = Wt[None] / math.sqrt(Wt.shape[0] * Wt.shape[1] * Wt.shape[2]) * s[:, None, None, :, None]
    ww = ww * torch.rsqrt(ww.square().sum(dim=[1, 2, 3]) + 1e-8)[:, None, None, None, :]
    f = kernels.setup_filter([1, 3, 3, 1])
    outs = []
    for i in range(2):
        # upsample_conv_2d: conv2d_transpose (stride 2, VALID) of the kernel flipped as TF's code flips it,
        # then the FIR filter (gain 4) padded (1, 1). (In the interior this is upsample_2d then conv2d.)
        k = ww[i].flip([0, 1]).permute(2, 3, 0, 1)                                          # [I, O, k, k]
        y = F.conv_transpose2d(xin[i:i + 1], k, stride=2)
        outs.append(kernels.upfirdn2d_ref(y, f, padding=[1, 1, 1, 1], gain=4))
    y = torch.cat(outs) + t(p["synthesis/noise1"]) * float(p[f"{name}/noise_strength"])
    ref = F.leaky_relu(y + t(p[f"{name}/bias"]).reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(G.synthesis.b8.conv0(xin, w), ref, rtol=1e-4, atol=1e-5)


def test_tf_unknown_kwargs_go_to_extra_with_one_warning(tmp_path):
    G_ema, G, D = make_nets()
    path = ff.write_tf_pickle(tmp_path / "f.pkl", G_ema, G, D, tmp_path / "m",
                              extra_kwargs={"my_fork_option": 7, "fused_modconv": False})
    with pytest.warns(UserWarning, match="my_fork_option") as rec:
        G2 = sa.load(path)
    assert len([r for r in rec if "extra" in str(r.message)]) == 1
    assert G2.cfg.extra == {"my_fork_option": "7"}
    assert_same_generator(G_ema, G2)


@pytest.mark.parametrize("kwarg,value", [("fmap_decay", 0.5), ("mapping_fmaps", 64), ("nonlinearity", "relu")])
def test_tf_architecture_changing_kwargs_are_refused_by_name(tmp_path, kwarg, value):
    G_ema, G, D = make_nets()
    path = ff.write_tf_pickle(tmp_path / "f.pkl", G_ema, G, D, tmp_path / "m", extra_kwargs={kwarg: value})
    with pytest.raises(UserError, match=kwarg):
        sa.load(path)


# --- stylegan2-ada-pytorch pickles ----------------------------------------------------------

@pytest.mark.parametrize("c_dim,arch", [(0, "skip"), (4, "skip"), (0, "resnet")])
def test_ada_pickle_loads_the_same_networks(tmp_path, c_dim, arch):
    G_ema, G, D = make_nets(c_dim, arch)
    marker = tmp_path / ff.MARKER_NAME
    path = ff.write_ada_pickle(tmp_path / "network-snapshot-000100.pkl", G_ema, G, D, marker)
    nets = sa.load_networks(path)
    assert not marker.exists()
    assert_same_generator(G_ema, nets.G_ema)
    assert_same_generator(G, nets.G)
    assert_same_discriminator(D, nets.D)
    assert_bit_exact(G_ema, nets.G_ema)
    assert_converts_bit_exactly(path, tmp_path, nets)


def test_ada_fork_kwargs_kept_in_extra_and_architecture_kwargs_refused(tmp_path):
    G_ema, G, D = make_nets()
    path = ff.write_ada_pickle(tmp_path / "a.pkl", G_ema, G, D, tmp_path / "m",
                               extra_g_kwargs={"fork_flag": True})
    with pytest.warns(UserWarning, match="fork_flag"):
        assert sa.load(path).cfg.extra == {"fork_flag": "True"}
    bad = ff.write_ada_pickle(tmp_path / "b.pkl", G_ema, G, D, tmp_path / "m",
                              extra_g_kwargs={"synthesis_kwargs": ff.EasyDict(use_noise=False, channel_base=512,
                                                                              channel_max=32)})
    with pytest.raises(UserError, match="use_noise"):
        sa.load(bad)


# --- rosinality checkpoints -----------------------------------------------------------------

def test_rosinality_checkpoint_loads_the_same_networks(tmp_path):
    G_ema, G, D = make_nets(arch="skip")
    D = Discriminator(small_d_config(img_resolution=16, mbstd_group_size=4))
    path = ff.write_rosinality(tmp_path / "550000.pt", G_ema, G, D)
    nets = sa.load_networks(path)
    assert_same_generator(G_ema, nets.G_ema)
    assert_same_discriminator(D, nets.D)
    z, _ = inputs(G)
    torch.testing.assert_close(nets.G(z), G(z), rtol=1e-5, atol=1e-5)
    assert_converts_bit_exactly(path, tmp_path, nets)


def test_rosinality_discriminator_stddev_features_come_from_the_weights(tmp_path):
    """Forks change rosinality's stddev_feat (TADNE's run used 4): final_conv's input width tells."""
    G_ema, _, _ = make_nets()
    torch.manual_seed(3)
    # (the group size is not in the weights: rosinality's code fixes it at 4, as the reader assumes)
    D = Discriminator(small_d_config(img_resolution=16, mbstd_num_channels=4, mbstd_group_size=4)).eval()
    nets = sa.load_networks(ff.write_rosinality(tmp_path / "d4.pt", G_ema, D=D))
    assert nets.D.cfg.mbstd_num_channels == 4
    assert_same_discriminator(D, nets.D)


def test_rosinality_without_latent_avg_estimates_it(tmp_path):
    G_ema, _, _ = make_nets()
    nets = sa.load_networks(ff.write_rosinality(tmp_path / "g.pt", G_ema, latent_avg=False))
    z = torch.randn([4096, G_ema.z_dim], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(nets.G_ema.mapping.w_avg, G_ema.mapping(z)[:, 0].mean(0), rtol=1e-5, atol=1e-5)
    assert "mean of 4096" in nets.meta["w_avg"]


def test_rosinality_up_conv_matches_conv_transpose_then_blur(tmp_path):
    """Independent of our resample code: rosinality's up layer is conv_transpose2d(stride 2) of the
    stored weight, then a [1,3,3,1] blur (gain 4) padded (1, 1)."""
    G_ema, _, _ = make_nets()
    sd = ff.rosinality_g_state(G_ema)
    G = sa.load(ff.write_rosinality(tmp_path / "g.pt", G_ema))
    gen = torch.Generator().manual_seed(1)
    w = torch.randn([2, G.w_dim], generator=gen)
    x = torch.randn([2, G.synthesis.b8.conv0.in_channels, 4, 4], generator=gen)
    s = F.linear(w, sd["convs.0.conv.modulation.weight"] / math.sqrt(G.w_dim), sd["convs.0.conv.modulation.bias"])
    weight = sd["convs.0.conv.weight"][0]
    scale = 1 / math.sqrt(weight[0].numel())
    outs = []
    for i in range(2):
        wi = scale * weight * s[i].reshape(1, -1, 1, 1)
        wi = wi * torch.rsqrt(wi.square().sum(dim=[1, 2, 3]) + 1e-8).reshape(-1, 1, 1, 1)
        y = F.conv_transpose2d(x[i:i + 1], wi.transpose(0, 1), stride=2)
        outs.append(kernels.upfirdn2d_ref(y, kernels.setup_filter([1, 3, 3, 1]), padding=[1, 1, 1, 1], gain=4))
    y = torch.cat(outs) + sd["noises.noise_1"] * sd["convs.0.noise.weight"]
    ref = F.leaky_relu(y + sd["convs.0.activate.bias"].reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(G.synthesis.b8.conv0(x, w), ref, rtol=1e-4, atol=1e-5)


# --- errors ---------------------------------------------------------------------------------

def _fixture_files(tmp_path):
    G_ema, G, D = make_nets()
    return {"tf": ff.write_tf_pickle(tmp_path / "tf.pkl", G_ema, G, D, tmp_path / "m"),
            "ada": ff.write_ada_pickle(tmp_path / "ada.pkl", G_ema, G, D, tmp_path / "m"),
            "ros": ff.write_rosinality(tmp_path / "ros.pt", G_ema, G, D)}


@pytest.mark.parametrize("kind", ["tf", "ada", "ros"])
@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_files_give_one_line(tmp_path, kind, cut):
    path = _fixture_files(tmp_path)[kind]
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(UserError, match="truncated or corrupt") as e:
        sa.load(path)
    assert "\n" not in str(e.value) and path.name in str(e.value)


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, r"\(an image\) is not a weights file"),
    (b"<html><body>404</body></html>", "HTML"),
    (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x07\x85\x94.", "Python pickle of a tuple of 1 items"),
    (b"\x80\x04\xff\xfe garbage", "truncated or corrupt"),
])
def test_empty_foreign_and_corrupt_files_give_one_line(tmp_path, content, match):
    path = tmp_path / "x.pkl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match) as e:
        sa.load(path)
    assert "\n" not in str(e.value)


def test_other_architectures_are_named(tmp_path):
    import pickle
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "classifier.pt")
    with pytest.raises(UserError, match="torch checkpoint holding a dict with keys model; expected a rosinality"):
        sa.load(tmp_path / "classifier.pt")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"G_ema": 3, "weights": [1.0]}))
    with pytest.raises(UserError, match="Python pickle of a dict with keys G_ema, weights"):
        sa.load(tmp_path / "dict.pkl")
    # A TF pickle of StyleGAN1 (no modulated convs).
    G_ema, G, D = make_nets()
    nets = (ff.tf_generator_networks(G, "G", "", "embed"), ff.tf_discriminator_network(D, ""),
            ff.tf_generator_networks(G_ema, "Gs", "", "embed"))
    for n in (nets[0], nets[2]):
        syn = n._state["components"]["synthesis"]._state
        syn["variables"] = [(k.replace("mod_weight", "StyleMod/weight"), v) for k, v in syn["variables"]]
    with ff.fake_modules(**{"dnnlib.tflib.network": {"Network": ff.Network}}):
        (tmp_path / "sg1.pkl").write_bytes(pickle.dumps(nets, protocol=4))
    with pytest.raises(UserError, match="not a StyleGAN2 generator"):
        sa.load(tmp_path / "sg1.pkl")
    # An ada-style pickle whose G_ema has other tensors (e.g. StyleGAN3).
    path = ff.write_ada_pickle(tmp_path / "sg3.pkl", G_ema, G, D, tmp_path / "m")
    data = path.read_bytes().replace(b"noise_const", b"noise_konst")
    path.write_bytes(data)
    with pytest.raises(UserError, match="do not fit a StyleGAN2 generator"):
        sa.load(path)


def test_format_comes_from_the_content_not_the_name(tmp_path):
    from stylegan_anime.io import formats
    files = _fixture_files(tmp_path)
    expected = {"tf": "NVlabs TensorFlow pickle", "ada": "stylegan2-ada-pytorch pickle",
                "ros": "rosinality torch checkpoint"}
    G_ema = sa.load(files["tf"])
    for kind, path in files.items():
        misnamed = path.rename(tmp_path / f"{kind}_weights.safetensors")
        assert formats.detect(misnamed).name == expected[kind]
        torch.testing.assert_close(sa.load(misnamed).synthesis.b4.const, G_ema.synthesis.b4.const)


def test_tf_label_concat_mapping_follows_the_published_formula(tmp_path):
    """Original TF StyleGAN2 labels: x = normalize(concat(z, c @ W)) with W used unscaled, then the
    Dense layers (lrmul / sqrt(in) weight gain, lrmul bias gain, lrelu * sqrt 2)."""
    G_ema, G, D = make_nets(c_dim=3, g_label_mode="concat", d_label_mode="output")
    from stylegan_anime.io.formats import tf_pickle
    from stylegan_anime.io.formats.python_pickle import read_pickle
    path = ff.write_tf_pickle(tmp_path / "c.pkl", G_ema, G, D, tmp_path / "m", label_mode="concat")
    p = {k: torch.from_numpy(np.array(v)) for k, v in tf_pickle.collect_params(read_pickle(path)[2]).items()}
    loaded = sa.load(path)
    z, c = inputs(G_ema, 3)
    x = torch.cat([z, c @ p["mapping/LabelConcat/weight"]], dim=1)
    x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
    lrmul = 0.01
    for i in range(2):
        W, b = p[f"mapping/Dense{i}/weight"], p[f"mapping/Dense{i}/bias"]
        x = F.leaky_relu(x @ W * (lrmul / math.sqrt(W.shape[0])) + b * lrmul, 0.2) * math.sqrt(2)
    torch.testing.assert_close(loaded.mapping(z, c)[:, 0], x, rtol=1e-5, atol=1e-5)
