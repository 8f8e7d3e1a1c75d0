"""vae-zoo: the Variational Auto-Encoder of Kingma & Welling (arXiv 1312.6114) for Keras 3.

The public names are imported lazily, so `import vae_zoo.cli` stays light
until a command needs TensorFlow. No submodule bears a public name, so
importing one never shadows a function of the package.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# TensorFlow's C++ start-up lines (CUDA probing, oneDNN notices) are muted unless the user asked for
# TensorFlow's info logs (TF_CPP_MIN_LOG_LEVEL=0): they bypass the level, so even a user who set 3
# would see them. TensorFlow reads the variable when it is first imported, so this comes before that.
_QUIET = _os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() != "0"
_DEVICES_READY = False  # initialised, quietly, by the first public name that needs TensorFlow
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_LAZY = {
    "VAE": "vae_zoo.model.vae",
    "list_models": "vae_zoo.zoo.registry",
    "load": "vae_zoo.zoo.registry",
    "save_preset": "vae_zoo.zoo.registry",
    "export": "vae_zoo.deploy.exporters",
    "verify": "vae_zoo.deploy.exporters",
    "VaeZooError": "vae_zoo.core.errors",
    "UnknownPresetError": "vae_zoo.core.errors",
    "PresetError": "vae_zoo.core.errors",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        if _QUIET and not _DEVICES_READY and _LAZY[name] != "vae_zoo.core.errors":
            _import_tensorflow_quietly()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vae_zoo' has no attribute {name!r}")


def _import_tensorflow_quietly(initialize: bool = True, probability: bool = True) -> None:
    """Imports TensorFlow (and TensorFlow Probability, with `probability`) with file descriptor 2
    muted: its C++ start-up logs (CUDA probing, CPU features) bypass TF_CPP_MIN_LOG_LEVEL and would
    bury the user's own output. Without `initialize` the devices are left alone (a worker of a
    cluster configures them when it joins)."""
    if _QuietFirstImport in _sys.meta_path:
        _sys.meta_path.remove(_QuietFirstImport)
    saved, devnull = _os.dup(2), _os.open(_os.devnull, _os.O_WRONLY)
    _os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        if probability:
            import tensorflow_probability  # noqa: F401
        tf.get_logger().setLevel("ERROR")  # TensorFlow's advice to developers (retracing, eager collectives)
        if initialize:
            tf.constant(0.0) + 1.0  # initialises the devices, which logs too
            global _DEVICES_READY
            _DEVICES_READY = True
    finally:
        _os.dup2(saved, 2)
        _os.close(devnull)
        _os.close(saved)


class _QuietFirstImport:
    """A meta path finder for the first `import tensorflow` made after `import vae_zoo` (by a
    submodule such as `vae_zoo.training.train`, imported before any public name): TensorFlow is
    imported quietly, its devices left for the user to configure."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "tensorflow":
            return None
        import importlib.util

        _import_tensorflow_quietly(initialize=False, probability=False)  # it may be importing Keras
        return importlib.util.spec_from_loader(name, _QuietFirstImport)

    @staticmethod
    def create_module(spec):
        return _sys.modules[spec.name]  # imported above

    @staticmethod
    def exec_module(module):
        pass


if _QUIET and "tensorflow" not in _sys.modules:
    _sys.meta_path.insert(0, _QuietFirstImport)


def __dir__():
    return sorted([*globals(), *_LAZY])
