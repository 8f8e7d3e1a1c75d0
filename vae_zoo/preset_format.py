"""The preset folder format, after keras-hub's `preset_utils`: where presets are, how a
name finds its folder, and how a folder is read, verified and written. Knows no model class.

A preset folder holds

- `config.json`: the model's Keras config (`keras.saving.serialize_keras_object`);
- `model.weights.h5`: its weights (no optimizer state);
- `card.json`: the model card: data, recipe, training log, measured metrics, and
  the weights' sha256, which `verified_weights` checks before any weight is read.

The zoo's own presets are in `saved_models/` at the repository root, installed inside
the package as `vae_zoo/saved_models/`; `$VAE_ZOO_PRESETS` points to another folder.
A preset name always means the zoo's preset; a local folder of the same name is read
as `./NAME` (any path with a separator).
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from vae_zoo.errors import PresetError, UnknownPresetError
from vae_zoo.io import atomic_write_text, file_sha256, staged_dir

CONFIG, WEIGHTS, CARD = "config.json", "model.weights.h5", "card.json"
PRESETS_ENV = "VAE_ZOO_PRESETS"


def presets_dir() -> Path:
    """Where the zoo's trained presets are: $VAE_ZOO_PRESETS, the installed
    package's `saved_models/`, or the source checkout's `saved_models/`."""
    if os.environ.get(PRESETS_ENV):
        return Path(os.environ[PRESETS_ENV])
    here = Path(__file__).resolve().parent
    for candidate in (here / "saved_models", here.parent / "saved_models"):
        if candidate.is_dir():
            return candidate
    return here / "saved_models"


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def shipped_presets() -> list[str]:
    """Names of the presets in `presets_dir()` that have a model card (mnist-z2, mnist-z3, ...)."""
    folder = presets_dir()
    names = [p.name for p in folder.iterdir() if (p / CARD).is_file()] if folder.is_dir() else []
    return sorted(names, key=lambda n: (not n.startswith("mnist"), _natural(n)))


def unknown_preset(name: str, available: list[str] | None = None) -> UnknownPresetError:
    """The error for an unknown preset name: lists the presets and the closest ones."""
    available = shipped_presets() if available is None else available
    close = difflib.get_close_matches(name, available, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UnknownPresetError(
        f"Unknown preset {name!r}. Available: {', '.join(available)}.{hint} "
        f"(A path to a preset folder also works, e.g. ./{name}.) Received: name={name!r}"
    )


def preset_path(name_or_path: str | os.PathLike) -> Path:
    """The folder of a preset name (see `shipped_presets`) or of a preset folder path.

    Raises:
        UnknownPresetError: neither a preset name nor an existing folder or path.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and (presets_dir() / text / CARD).is_file() and os.sep not in text:
        return presets_dir() / text
    path = Path(text)
    if path.is_dir() or os.sep in text or text.startswith("."):
        return path
    raise unknown_preset(text)


def read_card(name_or_path: str | os.PathLike) -> dict:
    """The model card of a preset.

    Raises:
        PresetError: the folder has no card.
    """
    path = preset_path(name_or_path) / CARD
    if not path.is_file():
        raise PresetError(f"No model card {path}. Train it first: vae-zoo train NAME.")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise PresetError(f"{path} is not valid JSON ({err}). Restore it (reinstall vae-zoo or `git checkout` it).")


def read_config(folder: Path) -> dict:
    """The model config of a preset folder.

    Raises:
        PresetError: the folder has no readable config.json.
    """
    path = folder / CONFIG
    if not path.is_file():
        raise PresetError(
            f"Preset folder {folder} has no {CONFIG}. Train it (vae-zoo train NAME) "
            "or pass a folder written by save_to_preset()."
        )
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise PresetError(f"{path} is not valid JSON ({err}). Restore it (reinstall vae-zoo or `git checkout` it).")


def verified_weights(folder: Path, card: dict) -> Path:
    """The weights file of a preset folder, after checking its sha256 against the card.

    Raises:
        PresetError: the file is missing, the card has no checksum, or the file
            differs from it (truncated or changed); never random weights.
    """
    path = folder / WEIGHTS
    if not path.is_file():
        raise PresetError(f"Preset folder {folder} has no weights file {path}; refusing random weights.")
    expected = card.get("weights_sha256")
    if expected is None:
        raise PresetError(f"{folder / CARD} gives no weights_sha256, so {path} cannot be verified.")
    actual = file_sha256(path)
    if actual != expected:
        raise PresetError(
            f"Weights file {path} is corrupt or was changed: sha256 {actual}, expected {expected} "
            "(from card.json). Restore the file (e.g. reinstall vae-zoo or `git checkout` it)."
        )
    return path


def write_preset(path: str | os.PathLike, config: dict, write_weights: Callable[[Path], None],
                 card: dict | None = None, overwrite: bool = False) -> Path:
    """Writes a preset folder: assembled beside `path` and renamed into place,
    so it is complete or absent.

    Args:
        path: the preset folder to create.
        config: the model's serialized Keras config.
        write_weights: writes the weights file to the path it is given.
        card: model-card fields (recipe, metrics, ...); the weights' sha256,
            the package version and the date are added.
        overwrite: replace an existing folder.

    Returns:
        The folder's path.

    Raises:
        OutputExistsError: `path` exists and is not empty, and not `overwrite`.
    """
    from vae_zoo import __version__

    path = Path(path)
    with staged_dir(path, overwrite) as tmp:
        atomic_write_text(tmp / CONFIG, json.dumps(config, indent=1))
        write_weights(tmp / WEIGHTS)
        card = {
            **(card or {}),
            "weights_sha256": file_sha256(tmp / WEIGHTS),
            "package_version": __version__,
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(tmp / CARD, json.dumps(card, indent=1))
    return path


def update_card(name_or_path: str | os.PathLike, **fields) -> dict:
    """Merges `fields` into a preset's card.json (atomically)."""
    card = read_card(name_or_path)
    card.update(fields)
    atomic_write_text(preset_path(name_or_path) / CARD, json.dumps(card, indent=1))
    return card
