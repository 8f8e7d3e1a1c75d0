"""A model as a preset folder and back, after keras-hub's `from_preset` / `save_to_preset`.

The folder format (config, weights, card, checksums) is `preset_format`'s; this module adds
the model: it rebuilds one from a folder's config, loads the verified weights and compiles it
with the card's recipe, and writes a trained model's config and weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from vae_zoo.core import preset_format
from vae_zoo.core.errors import InvalidArgumentError, first_line
from vae_zoo.data import shapes
from vae_zoo.model.recipes import Recipe, make_optimizer


def load_preset(cls: type, name_or_path: str | os.PathLike, pretrained: bool = True,
                compile: bool = True) -> keras.Model:
    """Loads a preset by name or from a preset folder as an instance of `cls` (see `VAE.from_preset`).

    Raises:
        UnknownPresetError: an unknown name (lists the available ones).
        PresetError: a missing config or weights file, weights whose sha256 differs from the
            card's, or a config that describes another class.
    """
    folder = preset_format.preset_path(name_or_path)
    config = preset_format.read_config(folder)
    card = preset_format.read_card(folder)
    weights = preset_format.verified(folder, preset_format.WEIGHTS) if pretrained else None
    try:  # Keras' safe mode refuses code (e.g. a lambda) in a config; anything else unbuildable too
        model = keras.saving.deserialize_keras_object(config)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise preset_format.PresetError(f"{folder / preset_format.CONFIG} does not describe a model vae-zoo can "
                                        f"build ({first_line(err)}). Replace the folder with a preset saved by "
                                        "vae-zoo (VAE.save_to_preset).") from None
    if not isinstance(model, cls):
        raise preset_format.PresetError(f"{folder / preset_format.CONFIG} describes a "
                                        f"{type(model).__name__}, not a {cls.__name__}.")
    if weights is not None:
        model.load_weights(weights)
        # What `save_to_preset` carries over to a preset made from this one.
        model.source_preset = {"preset": str(name_or_path), "weights_sha256": card.get("weights_sha256"),
                               **{k: card[k] for k in ("name", "data", "recipe", "metrics") if k in card}}
    model.image_shape = shapes.image_shape(folder, model.input_dim)
    if compile:
        recipe = Recipe.from_dict(card["recipe"]) if "recipe" in card else Recipe()
        rate = recipe.final_learning_rate if pretrained else recipe.learning_rate
        model.compile(make_optimizer(Recipe(optimizer=recipe.optimizer, learning_rate=rate), 1))
    return model


def save_preset(model: keras.Model, path: str | os.PathLike, card: dict | None = None,
                overwrite: bool = False) -> Path:
    """Writes `model` as a preset folder (see `VAE.save_to_preset`); returns the folder's path.

    Raises:
        InvalidArgumentError: non-finite weights (a broken model is never written).
        OutputExistsError: `path` exists and `overwrite` is False.
    """
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise InvalidArgumentError(f"Refusing to save {path}: the model's weights contain NaN or inf "
                                   "(training diverged?). Nothing was written.")
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # the card's recipe says how to compile
    card = {**derived_card(model), **(card or {})}  # the caller's fields win

    def write_weights(file: Path) -> None:
        # A compiled model's save_weights also stores the optimizer's state,
        # which would triple the file: save from an uncompiled twin.
        bare = keras.saving.deserialize_keras_object(config)
        bare.set_weights(model.get_weights())
        bare.save_weights(file)

    return preset_format.write_preset(path, config, write_weights, card, overwrite)


def derived_card(model: keras.Model) -> dict:
    """The card fields a model knows of itself: its architecture, its image shape, and for a
    model loaded from a preset that preset (name, weights' sha256, its data protocol, recipe and
    metrics, recorded as the source's: they describe the weights as loaded, not as saved)."""
    card = {"description": f"A {model.input_dim}-{'-'.join(map(str, model.hidden_units))}-{model.latent_dim} VAE "
                           f"({model.likelihood} decoder)"}
    source = getattr(model, "source_preset", None)
    if source:
        card["description"] += f" derived from the preset {source['preset']} (see `source`)"
        card["source"] = source
    if getattr(model, "image_shape", None):
        card["data"] = {"image_shape": list(model.image_shape)}
    return card
