# What `import stylegan_anime as sa` offers: read by type checkers and IDEs, and by __init__.py, which
# imports each name on first use (lazy_loader.attach_stub).
from .io import hub
from . import app, latents  # sa.app.launch(G, inline=True): the character studio (Gradio on launch)
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
