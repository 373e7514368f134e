"""Latent-space editing: projection of images into w / w+, tag prompts, attribute directions in w."""
from .directions import (Directions, drop_weak, edit, edit_grid, find_directions, fit_directions, held_out_r2,
                         load_directions, orthogonalize, sample_labelled_w, save_directions, tag_strengths)
from .sefa import sefa_directions
from .losses import load_perceptual
from .tags import network_label_names, parse_tags, tag_labels
from .prompts import ParsedPrompt, PromptLabels, parse_prompt, prompt_labels
from .projection import (Projection, ProjectionConfig, ProjectionResult, ProjectionStep, load_target, project,
                         side_by_side)

__all__ = ["Projection", "ProjectionConfig", "ProjectionResult", "ProjectionStep", "load_perceptual",
           "load_target", "project", "side_by_side",
           "Directions", "edit", "edit_grid", "find_directions", "fit_directions", "load_directions", "orthogonalize",
           "sample_labelled_w", "save_directions", "tag_strengths", "network_label_names", "parse_tags", "tag_labels",
           "ParsedPrompt", "PromptLabels", "parse_prompt", "prompt_labels",
           "drop_weak", "held_out_r2", "sefa_directions"]
