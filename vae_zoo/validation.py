"""Checks of user-supplied data, with errors that name the problem and the fix."""

from __future__ import annotations

import numpy as np


def check_data(x, input_dim: int, binary: bool, name: str = "x") -> np.ndarray:
    """Validates a batch of data and returns it as a float32 array.

    Args:
        x: array-like of shape (batch, input_dim).
        input_dim: the model's number of features D.
        binary: whether the model is Bernoulli (values must lie in [0, 1]).
        name: the argument's name, for messages.

    Raises:
        ValueError: on a wrong shape, an empty batch, NaN or inf values, or
            values outside [0, 1] for a Bernoulli model.
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be a numeric array. Received: {type(x).__name__}") from err
    if arr.ndim != 2 or arr.shape[1] != input_dim:
        hint = ""
        if arr.ndim >= 2 and int(np.prod(arr.shape[1:])) == input_dim:
            hint = f" Flatten the images first: {name}.reshape(len({name}), {input_dim})."
        raise ValueError(
            f"`{name}` must have shape (batch, {input_dim}).{hint} Received: shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is an empty batch: it needs at least one row. Received: shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - finite.sum())
        raise ValueError(
            f"`{name}` contains {bad} NaN or inf values; clean or impute them first. "
            f"First bad row: {int(np.argwhere(~finite)[0][0])}"
        )
    if binary and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"A Bernoulli model needs `{name}` in [0, 1] (scale pixels by 1/255). "
            f"Received: values in [{arr.min():g}, {arr.max():g}]"
        )
    return arr
