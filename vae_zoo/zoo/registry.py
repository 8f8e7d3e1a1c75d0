"""The zoo's catalogue: `list_models` (the trained presets), `load` a preset by name or
folder, and read or update its model card.

Loading is `VAE.from_preset` (one implementation, over the folder format of
`preset_format`); this module adds the names of the grid and the cards.
"""

from __future__ import annotations

import os
from pathlib import Path

from vae_zoo.core.preset_format import presets_dir, read_card, shipped_presets, update_card
from vae_zoo.model.vae import VAE
from vae_zoo.zoo.presets import PRESETS

__all__ = ["list_models", "load", "save_preset", "read_card", "update_card", "presets_dir", "shipped_presets"]


def list_models() -> list[str]:
    """Names of the zoo's trained presets (in the presets folder), the paper's grid first; every
    name of `presets.PRESETS` trains with `vae-zoo train NAME`."""
    shipped = set(shipped_presets())
    return [name for name in PRESETS if name in shipped]


def load(name_or_path: str | os.PathLike, pretrained: bool = True, compile: bool = True) -> VAE:
    """Loads a preset by name (see `list_models`) or from a preset folder: `VAE.from_preset`.

    Args:
        name_or_path: a preset name such as "mnist-z20", or a folder written by
            `save_preset` / `VAE.save_to_preset`.
        pretrained: load the trained weights (verified against their sha256);
            False gives the same architecture freshly initialised.
        compile: compile with the recipe's optimizer, so `fit` continues training.

    Returns:
        A `VAE`.

    Raises:
        UnknownPresetError: unknown preset name (lists the available ones).
        PresetError: missing config or weights, or weights whose sha256 differs
            from the one in the card (truncated or tampered file).
    """
    return VAE.from_preset(name_or_path, pretrained=pretrained, compile=compile)


def save_preset(model: VAE, path: str | os.PathLike, card: dict | None = None, overwrite: bool = False) -> Path:
    """Writes `model` as a preset folder that `load(path)` reads back: `VAE.save_to_preset`."""
    return model.save_to_preset(path, card, overwrite)
