"""The input contract, generated: every public entry takes what it documents, in any container,
and rejects everything else with an error of the package's family that names the argument.

For each generated input the call either returns a finite result of the right shape, or raises
`VaeZooError` (here always `InvalidArgumentError`) naming the argument: never another exception
type, never a non-finite result from valid input, never a weight changed by a rejected call.
"""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import vae_zoo
from vae_zoo.core.errors import InvalidArgumentError, VaeZooError

D, Z = 12, 2
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


class ArrayLike:
    """Any object with __array__, as the contract promises to accept."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.array, dtype=dtype)


CONTAINERS = {
    "numpy": lambda a: a,
    "list": lambda a: a.tolist(),
    "tensor": lambda a: tf.constant(a),
    "pandas": lambda a: pd.DataFrame(a) if a.ndim == 2 else a,
    "array_like": ArrayLike,
}

VALUES = st.one_of(
    st.floats(0, 1, width=32),
    st.sampled_from([0.0, 1.0]),
    st.floats(-1e6, 1e6, width=32),
    st.sampled_from([np.nan, np.inf, -np.inf, 255.0, -0.5]),
)


@st.composite
def data_arrays(draw):
    """Arrays of plausible and implausible shapes, dtypes and values."""
    shape = draw(st.one_of(
        st.tuples(st.integers(0, 5), st.just(D)),  # right width, maybe empty
        st.tuples(st.integers(1, 4), st.integers(1, 2 * D)),  # any width
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),  # any rank
    ))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int64, np.bool_]))
    elements = VALUES if np.issubdtype(dtype, np.floating) else None
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(st.sampled_from(sorted(CONTAINERS))), array


def valid(array) -> bool:
    a = np.asarray(array, dtype=np.float64)
    return (a.ndim == 2 and a.shape[1] == D and len(a) > 0 and np.isfinite(a).all()
            and a.min() >= 0 and a.max() <= 1)


@pytest.fixture(scope="module")
def model():
    model = vae_zoo.VAE(input_dim=D, latent_dim=Z, hidden_units=8, seed=0)
    model.compile("adam")
    return model


def weights_of(model):
    return [w.numpy().copy() for w in model.weights]


ENTRIES = {
    "encode": lambda m, x: m.encode(x).mean(),
    "elbo": lambda m, x: m.elbo(x, seed=0),
    "log_likelihood": lambda m, x: m.log_likelihood(x, num_samples=3),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "call": lambda m, x: m(x)["x_mean"],
    "predict": lambda m, x: m.predict(x, verbose=0)["x_mean"],
    "evaluate": lambda m, x: np.array([m.evaluate(x, verbose=0, return_dict=True)["elbo"]]),
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@SETTINGS
@given(case=data_arrays())
def test_data_entries_accept_valid_data_and_reject_the_rest(model, entry, case):
    container, array = case
    before = weights_of(model)
    try:
        result = np.asarray(ENTRIES[entry](model, CONTAINERS[container](array)))
    except InvalidArgumentError as err:
        assert not valid(array), f"{entry} rejected valid data: {err}"
        assert "`x`" in str(err) and "Received" in str(err), str(err)
    else:
        assert valid(array), f"{entry} accepted {container} of shape {np.shape(array)}"
        assert np.isfinite(result).all() and len(result) in (1, len(array))
    for a, b in zip(before, weights_of(model)):
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(case=data_arrays())
def test_fit_never_changes_a_weight_when_it_rejects_data(model, case):
    container, array = case
    before = weights_of(model)
    try:
        model.fit(CONTAINERS[container](array), batch_size=2, epochs=1, verbose=0)
    except InvalidArgumentError as err:
        assert not valid(array) and "`x`" in str(err)
        for a, b in zip(before, weights_of(model)):
            np.testing.assert_array_equal(a, b)
    else:
        assert valid(array)
        assert all(np.isfinite(w).all() for w in weights_of(model))


@SETTINGS
@given(case=data_arrays(), batched=st.booleans())
def test_datasets_are_checked_in_the_graph(model, case, batched):
    _, array = case
    if array.ndim == 0:
        return
    ds = tf.data.Dataset.from_tensor_slices(array.astype(np.float32))
    ds = ds.batch(3) if batched else ds
    before = weights_of(model)
    try:
        model.fit(ds, epochs=1, verbose=0)
    except InvalidArgumentError as err:
        assert "`x`" in str(err), str(err)
        for a, b in zip(before, weights_of(model)):
            np.testing.assert_array_equal(a, b)
    else:
        assert batched and valid(array)


@SETTINGS
@given(z=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=VALUES))
def test_decode_takes_finite_latents_of_the_right_width(model, z):
    try:
        mean = model.decode(z).mean().numpy()
    except InvalidArgumentError as err:
        assert "`z`" in str(err)
        assert z.shape[-1] != Z or not np.isfinite(z).all()
    else:
        assert z.shape[-1] == Z and np.isfinite(z).all() and mean.shape == z.shape[:-1] + (D,)


INTEGERS = st.one_of(
    st.integers(-3, 6),
    st.integers(-3, 6).map(np.int64),
    st.integers(0, 6).map(np.uint8),
    st.sampled_from([True, False, 2.0, 2.5, "3", None, float("nan")]),
)

COUNTS = {
    "sample(n)": (lambda m, v: m.sample(v, seed=0), "n", False),
    "elbo(num_samples)": (lambda m, v: m.elbo(np.zeros((2, D), np.float32), num_samples=v, seed=0), "num_samples",
                          True),
    "log_likelihood(num_samples)": (lambda m, v: m.log_likelihood(np.zeros((2, D), np.float32), num_samples=v),
                                    "num_samples", False),
    "log_likelihood(batch_size)": (lambda m, v: m.log_likelihood(np.zeros((2, D), np.float32), num_samples=2,
                                                                 batch_size=v), "batch_size", False),
    "elbo(seed)": (lambda m, v: m.elbo(np.zeros((2, D), np.float32), seed=v), "seed", True),
    "sample(seed)": (lambda m, v: m.sample(2, seed=v), "seed", True),
    "fit(batch_size)": (lambda m, v: m.fit(np.zeros((4, D), np.float32), batch_size=v, epochs=1, verbose=0),
                        "batch_size", True),
}


@pytest.mark.parametrize("entry", sorted(COUNTS))
@SETTINGS
@given(value=INTEGERS)
def test_counts_and_seeds_take_any_integer_type_in_range(model, entry, value):
    call, name, none_ok = COUNTS[entry]
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    ok = (is_int and (value >= 0 if name == "seed" else value > 0)) or (value is None and none_ok)
    try:
        call(model, value)
    except VaeZooError as err:
        assert not ok, f"{entry} rejected {value!r}: {err}"
        assert f"`{name}`" in str(err) and "Received" in str(err)
    else:
        assert ok, f"{entry} accepted {value!r}"


def test_no_call_reseeds_the_users_generators():
    import random

    from vae_zoo.model.recipes import RECIPES
    from vae_zoo.training import train as training

    random.seed(1)
    np.random.seed(1)
    tf.random.set_seed(1)
    expected = (random.random(), np.random.random(), float(tf.random.uniform([])))
    random.seed(1)
    np.random.seed(1)
    tf.random.set_seed(1)
    vae_zoo.load("mnist-z2", pretrained=False)
    vae_zoo.load("frey-z2")
    training.build_model(dict(input_dim=D, latent_dim=Z, hidden_units=4), RECIPES["paper"], 100)
    assert (random.random(), np.random.random(), float(tf.random.uniform([]))) == expected
