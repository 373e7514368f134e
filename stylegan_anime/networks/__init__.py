"""StyleGAN2 networks: configs, layers, mapping, synthesis, generator, discriminator."""
from .config import DiscriminatorConfig, GeneratorConfig
from .discriminator import Discriminator
from .generator import Generator
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork

__all__ = ["DiscriminatorConfig", "GeneratorConfig", "Discriminator", "Generator", "MappingNetwork",
           "SynthesisNetwork"]
