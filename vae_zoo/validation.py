"""Checks of user-supplied arguments and data, with Keras-style errors.

Every message says what is wrong, what is accepted and what was received,
e.g. "Unknown estimator 'C'. Available: A, B. Received: estimator='C'".
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable

import numpy as np

from vae_zoo.errors import InvalidArgumentError


def check_positive_int(name: str, value) -> int:
    """Returns `value` as an int if it is an integer >= 1 (any integer type, not bool).

    Raises:
        InvalidArgumentError: naming `name`.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InvalidArgumentError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def check_choice(name: str, value, allowed: Iterable, what: str | None = None):
    """Returns `value` if it is one of `allowed`.

    Args:
        name: the argument's name.
        value: what was received.
        allowed: the accepted values.
        what: the kind of thing, for the message (default: `name`).

    Raises:
        InvalidArgumentError: listing the accepted values and the closest one.
    """
    allowed = list(allowed)
    if isinstance(value, str) and value in allowed:
        return value
    if not isinstance(value, str) and any(value == a for a in allowed if not isinstance(a, str)):
        return value
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InvalidArgumentError(
        f"Unknown {what or name} {value!r}. Available: {', '.join(map(str, allowed))}.{hint} "
        f"Received: {name}={value!r}"
    )


def check_choices(name: str, values, allowed: Iterable, what: str | None = None) -> tuple:
    """Returns `values` (one value or a sequence of them) as a non-empty tuple of accepted values."""
    values = (values,) if isinstance(values, str) else tuple(values)
    if not values:
        raise InvalidArgumentError(f"`{name}` needs at least one of: {', '.join(map(str, allowed))}. "
                                   f"Received: {name}={values!r}")
    for value in values:
        check_choice(name, value, allowed, what)
    return values


def check_data(x, input_dim: int, binary: bool, name: str = "x") -> np.ndarray:
    """Validates a batch of data and returns it as a float32 array.

    Args:
        x: array-like of shape (batch, input_dim).
        input_dim: the model's number of features D.
        binary: whether the model is Bernoulli (values must lie in [0, 1]).
        name: the argument's name, for messages.

    Raises:
        InvalidArgumentError: on a wrong shape, an empty batch, NaN or inf
            values, or values outside [0, 1] for a Bernoulli model.
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"`{name}` must be a numeric array. Received: {type(x).__name__}") from err
    if arr.ndim != 2 or arr.shape[1] != input_dim:
        hint = ""
        if arr.ndim >= 2 and int(np.prod(arr.shape[1:])) == input_dim:
            hint = f" Flatten the images first: {name}.reshape(len({name}), {input_dim})."
        raise InvalidArgumentError(
            f"`{name}` must have shape (batch, {input_dim}).{hint} Received: shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise InvalidArgumentError(
            f"`{name}` is an empty batch: it needs at least one row. Received: shape {arr.shape}"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - finite.sum())
        raise InvalidArgumentError(
            f"`{name}` contains {bad} NaN or inf values; clean or impute them first. "
            f"First bad row: {int(np.argwhere(~finite)[0][0])}"
        )
    if binary and (arr.min() < 0.0 or arr.max() > 1.0):
        raise InvalidArgumentError(
            f"A Bernoulli model needs `{name}` in [0, 1] (scale pixels by 1/255). "
            f"Received: values in [{arr.min():g}, {arr.max():g}]"
        )
    return arr
