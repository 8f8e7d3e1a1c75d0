"""The (height, width) of a model's images, and the check that refuses images of another shape."""

from __future__ import annotations

import os

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.preset_format import read_card
from vae_zoo.data.datasets import DATASETS


def image_shape(name_or_path: str | os.PathLike | None, input_dim: int) -> tuple[int, int] | None:
    """(height, width) of a model's images: its card's (a model of the user's data), else the zoo
    data set's with `input_dim` pixels, else None (unknown: only the pixel count can be checked)."""
    shape = read_card(name_or_path).get("data", {}).get("image_shape") if name_or_path is not None else None
    if shape:
        return tuple(shape)
    return next((info.image_shape for info in DATASETS.values() if info.input_dim == input_dim), None)


def check_image_shape(source: str, shape: tuple[int, int] | None, expected: tuple[int, int] | None,
                      model: str) -> None:
    """Refuses images whose (height, width) differ from the model's, even when the pixel count
    matches (transposed or reshaped images would feed scrambled pixels). Unknown shapes pass.

    Raises:
        InvalidArgumentError: naming both shapes and the fix.
    """
    if shape is None or expected is None or tuple(shape) == tuple(expected):
        return
    turned = " (the same images turned by 90 degrees?)" if tuple(shape) == tuple(expected)[::-1] else ""
    if shape[0] * shape[1] == expected[0] * expected[1]:
        why = ("The pixel counts match, but the pixels would be fed in the wrong places: rotate or resize the "
               "images to the model's shape.")
    else:
        why = (f"That is {shape[0] * shape[1]:,} pixels per image where the model takes "
               f"{expected[0] * expected[1]:,}: resize the images to the model's shape.")
    raise InvalidArgumentError(
        f"{source}: images {shape[0]} high x {shape[1]} wide; {model} takes {expected[0]} high x "
        f"{expected[1]} wide{turned}. {why}")
