"""Latents: seeds → z (NVlabs-compatible), label vectors, keyframes and paths, latent files, style layers.

The seed and label helpers are re-exported here: ``latents.seeds_to_z``, ``latents.parse_seeds``."""
from .seeds import class_labels, label_vector, parse_seeds, seed_to_z, seeds_to_tf_inputs, seeds_to_z, tf_seed_inputs

__all__ = ["class_labels", "label_vector", "parse_seeds", "seed_to_z", "seeds_to_tf_inputs", "seeds_to_z",
           "tf_seed_inputs"]
