"""MLP bodies of the encoder and decoder (paper section 5: one tanh hidden layer)."""

from __future__ import annotations

from collections.abc import Sequence

import keras


def hidden_sizes(hidden_units: int | Sequence[int]) -> tuple[int, ...]:
    """Normalises `hidden_units` (an int or a sequence of ints) to a tuple.

    Raises:
        ValueError: if any size is not a positive integer.
    """
    sizes = (hidden_units,) if isinstance(hidden_units, int) else tuple(hidden_units)
    if any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in sizes):
        raise ValueError(
            "`hidden_units` must be a positive int or a sequence of positive ints. "
            f"Received: hidden_units={hidden_units!r}"
        )
    return sizes


def mlp(
    hidden_units: int | Sequence[int],
    activation: str = "tanh",
    kernel_initializer: str | dict | keras.initializers.Initializer = "glorot_uniform",
    name: str | None = None,
    dtype=None,
) -> keras.Sequential:
    """Builds a stack of dense layers, one per entry of `hidden_units`.

    Args:
        hidden_units: width of each hidden layer; an int means one layer.
        activation: activation of every hidden layer (the paper uses tanh).
        kernel_initializer: initializer of the kernels (biases start at zero).
        name: name of the returned model.
        dtype: dtype policy of the layers (default: Keras' global policy).

    Returns:
        A `keras.Sequential` mapping (batch, d_in) to (batch, hidden_units[-1]).
    """
    return keras.Sequential(
        [
            keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=keras.initializers.get(kernel_initializer),
                name=f"dense_{i}",
                dtype=dtype,
            )
            for i, units in enumerate(hidden_sizes(hidden_units))
        ],
        name=name,
    )
