"""Latent-space editing: projection of images into w / w+ (and, later, attribute directions)."""
from .losses import load_perceptual
from .projection import (Projection, ProjectionConfig, ProjectionResult, ProjectionStep, load_target, project,
                         side_by_side)

__all__ = ["Projection", "ProjectionConfig", "ProjectionResult", "ProjectionStep", "load_perceptual",
           "load_target", "project", "side_by_side"]
