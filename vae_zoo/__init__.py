"""vae-zoo: the Variational Auto-Encoder of Kingma & Welling (arXiv 1312.6114) for Keras 3."""

from vae_zoo.model import VAE

__version__ = "0.1.0"
__all__ = ["VAE", "__version__"]
