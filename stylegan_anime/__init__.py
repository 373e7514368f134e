"""stylegan-anime: a PyTorch StyleGAN2 toolkit for anime character generation.

    import stylegan_anime as sa
    G = sa.load("default")
    img = G(sa.seeds_to_z([0, 1, 2], G.z_dim), psi=0.7)   # [N, 3, H, W] in [-1, 1]
    sa.save_grid(img, "grid.png", cols=3)
    sa.interpolation_video(G, "0,5,9", "walk.gif", frames=60, space="w", grid=(3, 3))
    dirs = sa.load_directions("dirs.npz")                      # from `stylegan-anime directions`
    sa.save_grid(sa.edit_grid(G, [0, 1], dirs, sa.tag_strengths("blonde hair", dirs, 2.0)), "edit.png", cols=5)
"""
import lazy_loader

# Each name is imported on first use, from the submodule __init__.pyi names: a process that only generates
# does not load the training, export, app or download modules (nor Pillow or requests until it needs them).
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
