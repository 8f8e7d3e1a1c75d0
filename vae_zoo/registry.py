"""Named presets: `list_models`, `load`, and the preset folder format.

A preset folder holds `config.json` (the VAE's config), `model.weights.h5` and
`card.json` (data, recipe, measured metrics, the weights' sha256). The zoo's
own presets live in `saved_models/` at the repository root and are installed
inside the package as `vae_zoo/saved_models/`, so `load(name)` works offline
from any install. `$VAE_ZOO_PRESETS` points to another folder of presets.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import shutil
from pathlib import Path

import keras

from vae_zoo.io import atomic_write_text, file_sha256, temp_dir_beside
from vae_zoo.model import VAE
from vae_zoo.presets import PRESETS
from vae_zoo.training import Recipe, build_model, compile_model

CONFIG, WEIGHTS, CARD = "config.json", "model.weights.h5", "card.json"
PRESETS_ENV = "VAE_ZOO_PRESETS"


class PresetError(ValueError):
    """A preset folder is missing a file, or its weights fail their checksum."""


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


def list_models() -> list[str]:
    """Names of all presets, in the order of the paper's grid."""
    return list(PRESETS)


def unknown_preset(name: str) -> KeyError:
    """The KeyError for an unknown preset name: lists the presets and the closest ones."""
    close = difflib.get_close_matches(name, PRESETS, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return KeyError(
        f"Unknown preset {name!r}. Available: {', '.join(PRESETS)}.{hint} "
        f"(A path to a preset folder also works.) Received: name={name!r}"
    )


def preset_path(name_or_path: str | os.PathLike) -> Path:
    """The folder of a preset name or a preset folder path."""
    text = str(name_or_path)
    if text in PRESETS:
        return presets_dir() / text
    path = Path(text)
    if path.is_dir() or os.sep in text or text.startswith("."):
        return path
    raise unknown_preset(text)


def read_card(name_or_path: str | os.PathLike) -> dict:
    path = preset_path(name_or_path) / CARD
    if not path.is_file():
        raise PresetError(f"No model card {path}. Train it first: vae-zoo train NAME.")
    return json.loads(path.read_text())


def load(name_or_path: str | os.PathLike, pretrained: bool = True, compile: bool = True) -> VAE:
    """Loads a preset by name (see `list_models`) or from a preset folder.

    Args:
        name_or_path: a preset name such as "mnist-z20", or a folder written by
            `save_preset`.
        pretrained: load the trained weights (verified against their sha256);
            False gives the same architecture freshly initialised.
        compile: compile with the recipe's optimizer, so `fit` continues
            training right away: at the schedule's final learning rate for
            trained weights (fine-tuning), at its initial one for fresh weights.

    Returns:
        A `VAE`.

    Raises:
        KeyError: unknown preset name (lists the available ones).
        PresetError: missing config or weights, or weights whose sha256 differs
            from the one in the card (truncated or tampered file).
    """
    text = str(name_or_path)
    folder = preset_path(name_or_path)
    recipe = None
    if text in PRESETS and not pretrained:
        spec = PRESETS[text]
        model = build_model(spec.architecture, spec.recipe, _train_size(spec.dataset))
        recipe = spec.recipe
    else:
        model, recipe = _load_folder(folder, pretrained)
    if compile:
        recipe = recipe or Recipe()
        rate = recipe.lr_drops[-1][1] if pretrained and recipe.lr_drops else recipe.learning_rate
        compile_model(model, recipe.replace(learning_rate=rate, lr_drops=()), steps_per_epoch=1)
    return model


def _train_size(dataset: str) -> int:
    from vae_zoo.data import FREY_TEST_SIZE

    return 60_000 if dataset == "mnist" else 1965 - FREY_TEST_SIZE


def _load_folder(folder: Path, pretrained: bool) -> tuple[VAE, Recipe | None]:
    config_path, weights_path = folder / CONFIG, folder / WEIGHTS
    if not config_path.is_file():
        raise PresetError(
            f"Preset folder {folder} has no {CONFIG}. Train it (vae-zoo train NAME) "
            "or pass a folder written by save_preset()."
        )
    model = keras.saving.deserialize_keras_object(json.loads(config_path.read_text()))
    card = json.loads((folder / CARD).read_text()) if (folder / CARD).is_file() else {}
    recipe = Recipe.from_dict(card["recipe"]) if "recipe" in card else None
    if not pretrained:
        return model, recipe
    if not weights_path.is_file():
        raise PresetError(f"Preset folder {folder} has no weights file {weights_path}; refusing random weights.")
    expected = card.get("weights_sha256")
    actual = file_sha256(weights_path)
    if expected is None:
        raise PresetError(f"{folder / CARD} gives no weights_sha256, so {weights_path} cannot be verified.")
    if actual != expected:
        raise PresetError(
            f"Weights file {weights_path} is corrupt or was changed: sha256 {actual}, expected {expected} "
            "(from card.json). Restore the file (e.g. reinstall vae-zoo or `git checkout` it)."
        )
    model.load_weights(weights_path)
    return model, recipe


def save_preset(model: VAE, path: str | os.PathLike, card: dict | None = None, overwrite: bool = False) -> Path:
    """Writes `model` as a preset folder that `load(path)` reads back.

    The folder is assembled in a temp folder beside `path` and renamed into
    place, so it is complete or absent.

    Args:
        model: the model to save.
        path: the preset folder to create.
        card: model-card fields to record (recipe, metrics, ...); the weights'
            sha256, package version and date are added.
        overwrite: replace an existing folder.

    Returns:
        The folder's path.
    """
    from vae_zoo import __version__

    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty. Pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(path)
    try:
        config = keras.saving.serialize_keras_object(model)
        config.pop("compile_config", None)  # the card's recipe says how to compile
        atomic_write_text(tmp / CONFIG, json.dumps(config, indent=1))
        # Weights only: a compiled model's save_weights also stores the
        # optimizer's state, which would triple the file.
        bare = keras.saving.deserialize_keras_object(config)
        bare.set_weights(model.get_weights())
        bare.save_weights(tmp / WEIGHTS)
        card = {
            **(card or {}),
            "weights_sha256": file_sha256(tmp / WEIGHTS),
            "package_version": __version__,
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(tmp / CARD, json.dumps(card, indent=1))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def update_card(path: str | os.PathLike, **fields) -> dict:
    """Merges `fields` into a preset's card.json (atomically)."""
    card_path = preset_path(path) / CARD
    card = json.loads(card_path.read_text())
    card.update(fields)
    atomic_write_text(card_path, json.dumps(card, indent=1))
    return card
