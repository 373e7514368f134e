"""noise_mode="tf-seed": the images the official TF run_generator.py made for a seed."""
from __future__ import annotations

import pickle

import numpy as np
import torch
from PIL import Image

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.features.generation import generate_images

import format_fixtures as ff
from test_formats import make_nets


def run_generator_emulation(G_ema, G, D, seed: int, psi: float, tmp_path):
    """What run_generator.py does, done on a TF pickle: rnd = RandomState(seed); z = rnd.randn(1, z_dim);
    then set every synthesis variable whose name starts with 'noise', in the stored variable order, to
    rnd.randn(*shape); then run Gs with randomize_noise=False (our const noise)."""
    nets = (ff.tf_generator_networks(G, "G", ""), ff.tf_discriminator_network(D, ""),
            ff.tf_generator_networks(G_ema, "Gs", ""))
    rnd = np.random.RandomState(seed)
    z = rnd.randn(1, G_ema.z_dim)
    syn = nets[2]._state["components"]["synthesis"]._state
    syn["variables"] = [(k, rnd.randn(*v.shape).astype(np.float32) if k.startswith("noise") else v)
                        for k, v in syn["variables"]]
    path = tmp_path / f"seed{seed}.pkl"
    with ff.fake_modules(**{"dnnlib.tflib.network": {"Network": ff.Network}}):
        path.write_bytes(pickle.dumps(nets, protocol=4))
    Gs = sa.load(path)
    return Gs(torch.from_numpy(z).float(), psi=psi, noise_mode="const")


def test_tf_seed_equals_setting_the_noise_variables_like_run_generator(tmp_path):
    G_ema, G, D = make_nets()
    ours = generate_images(G_ema, [3, 11], psi=0.6, noise_mode="tf-seed", batch_size=2)
    for i, seed in enumerate([3, 11]):
        ref = run_generator_emulation(G_ema, G, D, seed, 0.6, tmp_path)
        torch.testing.assert_close(ours[i:i + 1], ref, rtol=1e-5, atol=1e-5)
    # ...and differs from the stored noise, so the noise really was drawn from the seed.
    assert not torch.allclose(ours, generate_images(G_ema, [3, 11], psi=0.6, noise_mode="const"), atol=1e-3)


def test_tf_seed_z_is_the_nvlabs_z_and_batches_do_not_matter(small_G):
    a = generate_images(small_G, "4-6", noise_mode="tf-seed", batch_size=1)
    b = generate_images(small_G, "4-6", noise_mode="tf-seed", batch_size=3)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    z, noise = sa.latents.seeds_to_tf_inputs([5], small_G.z_dim, [4, 8])
    torch.testing.assert_close(z, sa.seeds_to_z([5], small_G.z_dim))
    rnd = np.random.RandomState(5)
    rnd.randn(small_G.z_dim)
    np.testing.assert_allclose(noise[0][0, 0].numpy(), rnd.randn(4, 4), rtol=1e-6)
    np.testing.assert_allclose(noise[1][0, 0].numpy(), rnd.randn(8, 8), rtol=1e-6)


def test_cli_noise_mode_tf_seed(small_G, tmp_path):
    path = sa.save(small_G, tmp_path / "g.safetensors")
    assert main(["generate", "--network", str(path), "--seeds", "2", "--noise-mode", "tf-seed", "-o",
                 str(tmp_path / "out"), "--device", "cpu"]) == 0
    expected = sa.to_uint8(generate_images(small_G, [2], noise_mode="tf-seed"))[0].numpy()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "seed0002.png")), expected)
