"""Checks of user-supplied arguments and data, with Keras-style errors.

Every message says what is wrong, what is accepted and what was received,
e.g. "Unknown estimator 'C'. Available: A, B. Received: estimator='C'".
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable

import numpy as np

from vae_zoo.core.errors import InvalidArgumentError

# Marks the messages of in-graph checks, to tell them from TensorFlow's own errors.
GRAPH_CHECK_MARK = "[vae_zoo check] "


def check_positive_int(name: str, value) -> int:
    """Returns `value` as an int if it is an integer >= 1 (any integer type, not bool).

    Raises:
        InvalidArgumentError: naming `name`.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InvalidArgumentError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


MAX_SEED = 2**31 - 1  # Keras' seed generators and TensorFlow's stateless seeds hold it


def check_seed(name: str, value, allow_none: bool = True) -> int | None:
    """Returns a seed as an int in [0, MAX_SEED]: any integer type (Python, numpy), not bool;
    None if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= MAX_SEED:
        accepted = f"an int from 0 to {MAX_SEED}" + (" or None" if allow_none else "")
        raise InvalidArgumentError(f"`{name}` must be {accepted}. Received: {name}={value!r}")
    return int(value)


def check_positive_float(name: str, value, allow_zero: bool = False) -> float:
    """Returns `value` as a float if it is a finite number > 0 (a rate, a scale), or >= 0 if
    `allow_zero` (a threshold)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not (value >= 0 if allow_zero else value > 0) or not value < float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgumentError(f"`{name}` must be a finite number {bound}. Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value, allowed: Iterable, what: str | None = None):
    """Returns `value` if it is one of the strings `allowed`.

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
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InvalidArgumentError(
        f"Unknown {what or name} {value!r}. Available: {', '.join(map(str, allowed))}.{hint} "
        f"Received: {name}={value!r}"
    )


def check_choices(name: str, values, allowed: Iterable, what: str | None = None) -> tuple:
    """Returns `values` (one value or a sequence of them) as a non-empty tuple of accepted values."""
    try:
        values = (values,) if isinstance(values, str) else tuple(values)
    except TypeError:
        values = (values,)  # one non-string value: refused below with the usual message
    if not values:
        raise InvalidArgumentError(f"`{name}` needs at least one of: {', '.join(map(str, allowed))}. "
                                   f"Received: {name}={values!r}")
    for value in values:
        check_choice(name, value, allowed, what)
    return values


# What each likelihood's data must look like, for the messages of out-of-range data.
DATA_RANGE_HINTS = {
    "bernoulli": "A Bernoulli model needs `{name}` in [0, 1]: binary pixels or probabilities (scale pixels by 1/255)",
    "gaussian": "A Gaussian model of this zoo needs `{name}` in [0, 1] (Frey Face pixels / 256)",
}


def out_of_range_message(name: str, likelihood: str) -> str:
    """The first sentence of the error for data outside [0, 1]."""
    return DATA_RANGE_HINTS[likelihood].format(name=name) + "."


def non_finite_message(name: str) -> str:
    return f"`{name}` contains NaN or inf values; clean or impute them first."


def as_float_array(x, name: str) -> np.ndarray:
    """`x` (numpy, list, tensor, pandas, anything with `__array__`) as a float32 array."""
    if isinstance(x, (str, bytes, dict)) or x is None:
        raise InvalidArgumentError(f"`{name}` must be a numeric array. Received: {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"`{name}` must be a numeric array. Received: {type(x).__name__}") from err
    return arr


def check_data(x, input_dim: int | None, likelihood: str, name: str = "x") -> np.ndarray:
    """Validates a batch of data and returns it as a float32 array.

    Args:
        x: array-like of shape (batch, input_dim): numpy, list, tensor,
            pandas, or anything with `__array__`.
        input_dim: the model's number of features D (None: any D >= 1).
        likelihood: "bernoulli" or "gaussian": both take values in [0, 1].
        name: the argument's name, for messages.

    Raises:
        InvalidArgumentError: on a non-numeric container, a wrong shape, an
            empty batch, NaN or inf values, or values outside [0, 1].
    """
    arr = as_float_array(x, name)
    width = "D" if input_dim is None else input_dim
    if arr.ndim != 2 or arr.shape[1] != (input_dim or max(arr.shape[1], 1)):
        hint = ""
        if arr.ndim >= 2 and int(np.prod(arr.shape[1:])) == input_dim:
            hint = f" Flatten the images first: {name}.reshape(len({name}), {input_dim})."
        raise InvalidArgumentError(
            f"`{name}` must have shape (batch, {width}).{hint} Received: shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise InvalidArgumentError(
            f"`{name}` is an empty batch: it needs at least one row. Received: shape {arr.shape}"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - finite.sum())
        raise InvalidArgumentError(
            f"{non_finite_message(name)} Received: {bad} such values, the first in row "
            f"{int(np.argwhere(~finite)[0][0])}"
        )
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise InvalidArgumentError(
            f"{out_of_range_message(name, likelihood)} Received: values in [{arr.min():g}, {arr.max():g}]"
        )
    return arr


def check_latent(z, latent_dim: int, name: str = "z") -> np.ndarray:
    """Validates latent vectors of shape (..., latent_dim): finite, non-empty; returns float32."""
    arr = as_float_array(z, name)
    if arr.ndim < 1 or arr.shape[-1] != latent_dim or arr.size == 0:
        raise InvalidArgumentError(f"`{name}` must have shape (..., {latent_dim}) with at least one vector. "
                                   f"Received: shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidArgumentError(f"{non_finite_message(name)} Received: shape {arr.shape}")
    return arr


def check_dataset(ds, input_dim: int, likelihood: str, name: str = "x"):
    """A `tf.data.Dataset` whose elements (x, (x,), (x, y) or (x, y, w)) are checked in the
    graph as `check_data` checks arrays: a bad batch fails the step with the same message.

    A static shape that cannot fit is refused at once.
    """
    import tensorflow as tf

    spec = ds.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    shape = getattr(x_spec, "shape", None)
    if shape is None or (shape.rank is not None and (shape.rank != 2 or shape[-1] not in (None, input_dim))):
        raise InvalidArgumentError(
            f"`{name}` must yield batches of shape (batch, {input_dim}). Received: a dataset of "
            f"{getattr(x_spec, 'shape', x_spec)}" + (" (batch it first: ds.batch(100))" if shape is not None
                                                      and shape.rank == 1 else "")
        )
    mark = GRAPH_CHECK_MARK

    def check(x):
        x = tf.cast(x, tf.float32)
        shape_ok = tf.debugging.assert_equal(
            tf.shape(x)[-1], input_dim, message=f"{mark}`{name}` must have shape (batch, {input_dim}).")
        with tf.control_dependencies([shape_ok]):
            finite = tf.debugging.assert_equal(tf.reduce_all(tf.math.is_finite(x)), True,
                                               message=mark + non_finite_message(name))
        with tf.control_dependencies([finite]):
            in_range = tf.debugging.assert_equal(
                tf.logical_and(tf.reduce_min(x) >= 0.0, tf.reduce_max(x) <= 1.0), True,
                message=mark + out_of_range_message(name, likelihood))
        with tf.control_dependencies([in_range]):
            return tf.identity(x)

    if isinstance(spec, tuple):
        return ds.map(lambda *element: (check(element[0]), *element[1:]))
    return ds.map(check)


def graph_check_error(err: Exception) -> InvalidArgumentError | None:
    """Our error for a TensorFlow error raised by a `check_dataset` assertion, else None."""
    text = str(getattr(err, "message", err))
    if GRAPH_CHECK_MARK not in text:
        return None
    message = text.split(GRAPH_CHECK_MARK, 1)[1].split("\n", 1)[0]
    for cut in (" Condition x == y", " [Condition"):
        message = message.split(cut, 1)[0]
    return InvalidArgumentError(message.strip().rstrip("]").strip() + " Received: a batch of the dataset")


def worker_batch_size(batch_size: int, worker: tuple[int, int]) -> int:
    """One worker's share of a global batch: batch_size / workers (which must divide it)."""
    index, count = worker
    if not (isinstance(count, int) and count >= 1 and isinstance(index, int) and 0 <= index < count):
        raise InvalidArgumentError(f"`worker` must be (index, count) with 0 <= index < count. Received: {worker}")
    if batch_size % count:
        raise InvalidArgumentError(
            f"The batch size {batch_size} does not split evenly across {count} workers: choose a --batch-size "
            f"that is a multiple of {count}, e.g. {batch_size - batch_size % count or count}.")
    return batch_size // count
