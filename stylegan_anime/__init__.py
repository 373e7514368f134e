"""stylegan-anime: a PyTorch StyleGAN2 toolkit for anime character generation.

    import stylegan_anime as sa
    G = sa.load("default")
    img = G(sa.seeds_to_z([0, 1, 2], G.z_dim), psi=0.7)   # [N, 3, H, W] in [-1, 1]
    sa.save_grid(img, "grid.png", cols=3)
    sa.interpolation_video(G, "0,5,9", "walk.gif", frames=60, space="w", grid=(3, 3))
    dirs = sa.load_directions("dirs.npz")                      # from `stylegan-anime directions`
    sa.save_grid(sa.edit_grid(G, [0, 1], dirs, sa.tag_strengths("blonde hair", dirs, 2.0)), "edit.png", cols=5)
"""
from .io import hub
from . import app  # the character studio: sa.app.launch(G, inline=True) (Gradio imported on launch only)
from .editing import (Directions, ProjectionConfig, edit, edit_grid, find_directions, fit_directions, load_directions,
                      load_target, network_label_names, orthogonalize, project, prompt_labels, save_directions,
                      sefa_directions, tag_labels, tag_strengths, held_out_r2)
from .metrics import load_classifier
from .data.build import BuildOptions, build_dataset
from .data.synthetic import PortraitParams, draw_portrait, sample_params, write_synthetic_dataset
from .errors import UserError
from .export.onnx_export import OnnxExportConfig, export_onnx
from .export.web_page import export_web
from .features.generation import generate_images, synthesize
from .features.interpolation import KeyframePath, interpolation_frames, interpolation_video, lerp, make_schedule, slerp
from .latents import parse_seeds, seeds_to_z
from .io.loading import load, load_networks, resolve_device, save
from .networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from .features.mixing import mixing_grid, save_mixing_grid
from .features.render import make_grid, save_grid, save_images, to_pil, to_uint8
from .latents.style_layers import parse_layers
from .training.augment import AdaConfig, AdaptiveP, AugmentConfig, AugmentPipe
from .training.dataset import ImageDataset
from .features.truncation import save_truncation_grid, truncation_grid
from .features.video import write_video

__all__ = ["hub", "UserError", "generate_images", "parse_seeds", "seeds_to_z", "load", "load_networks", "resolve_device",
           "save", "Discriminator", "DiscriminatorConfig", "Generator", "GeneratorConfig", "make_grid",
           "save_grid", "save_images", "to_pil", "to_uint8", "synthesize", "KeyframePath", "interpolation_frames",
           "interpolation_video", "lerp", "make_schedule", "slerp", "mixing_grid", "save_mixing_grid", "parse_layers",
           "save_truncation_grid", "truncation_grid", "write_video", "ProjectionConfig", "load_target", "project"]
__all__ += ["BuildOptions", "build_dataset", "PortraitParams", "draw_portrait", "sample_params",
            "write_synthetic_dataset", "AdaConfig", "AdaptiveP", "AugmentConfig", "AugmentPipe", "ImageDataset"]
__all__ += ["Directions", "edit", "edit_grid", "find_directions", "fit_directions", "load_directions",
            "network_label_names", "orthogonalize", "save_directions", "tag_labels", "tag_strengths", "load_classifier"]
__all__ += ["OnnxExportConfig", "export_onnx", "export_web", "app"]
__all__ += ["prompt_labels", "sefa_directions", "held_out_r2"]
