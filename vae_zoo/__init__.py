"""vae-zoo: the Variational Auto-Encoder of Kingma & Welling (arXiv 1312.6114) for Keras 3."""

__version__ = "0.1.0"

from vae_zoo.model import VAE  # noqa: E402
from vae_zoo.registry import list_models, load, save_preset  # noqa: E402

__all__ = ["VAE", "list_models", "load", "save_preset", "__version__"]
