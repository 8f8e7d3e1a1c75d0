"""vae-zoo: the Variational Auto-Encoder of Kingma & Welling (arXiv 1312.6114) for Keras 3.

The public names are imported lazily, so `import vae_zoo.cli` stays light
until a command needs TensorFlow. No submodule bears a public name, so
importing one never shadows a function of the package.
"""

__version__ = "0.1.0"

_LAZY = {
    "VAE": "vae_zoo.model",
    "list_models": "vae_zoo.registry",
    "load": "vae_zoo.registry",
    "save_preset": "vae_zoo.registry",
    "export": "vae_zoo.exporters",
    "verify": "vae_zoo.exporters",
    "VaeZooError": "vae_zoo.errors",
    "UnknownPresetError": "vae_zoo.errors",
    "PresetError": "vae_zoo.errors",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vae_zoo' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
