"""The VAE model: shapes, estimators in expectation, exact log p(x) by quadrature,
training, saving, and bad input."""

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

import vae_zoo
from vae_zoo import data
from vae_zoo.estimators import exact as exact_lib
from vae_zoo.model import recipes
from vae_zoo.training import train as training


def small_vae(**kwargs):
    args = dict(input_dim=784, latent_dim=5, hidden_units=64, seed=0)
    args.update(kwargs)
    return vae_zoo.VAE(**args)


def binary(x, seed=0):
    return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_shapes_of_distributions_and_outputs(likelihood, mnist_subset):
    x = mnist_subset[0][:7]
    model = small_vae(likelihood=likelihood, hidden_units=[32, 16])
    q = model.encode(x)
    assert q.batch_shape == (7,) and q.event_shape == (5,)
    p = model.decode(tf.zeros((3, 7, 5)))
    assert p.batch_shape == (3, 7) and p.event_shape == (784,)
    out = model.predict(x, verbose=0)
    expected = {"z_mean", "z_log_var", "x_mean"} | ({"x_log_var"} if likelihood == "gaussian" else set())
    assert set(out) == expected
    assert out["x_mean"].shape == (7, 784) and out["z_mean"].shape == (7, 5)
    assert np.all((out["x_mean"] >= 0) & (out["x_mean"] <= 1))
    assert model.sample(4, seed=1).shape == (4, 784)
    np.testing.assert_array_equal(model.sample(4, seed=1), model.sample(4, seed=1))
    assert model.reconstruct(x).shape == (7, 784)
    for estimator in ("A", "B"):
        assert model.elbo(x, estimator, num_samples=3).shape == (7,)
    assert model.log_likelihood(x, num_samples=10).shape == (7,)


def test_estimators_agree_in_expectation_on_an_mlp_vae(mnist_subset):
    x = binary(mnist_subset[0][:20])
    model = small_vae()
    a = model.elbo(x, "A", num_samples=4000, seed=1).numpy()
    b = model.elbo(x, "B", num_samples=4000, seed=2).numpy()
    # Per-datapoint standard errors from the sample variance of single-sample estimates.
    sd_a = np.std([model.elbo(x, "A", seed=s).numpy() for s in range(200)], axis=0)
    sd_b = np.std([model.elbo(x, "B", seed=s).numpy() for s in range(200)], axis=0)
    se = np.sqrt((sd_a**2 + sd_b**2) / 4000)
    assert np.all(np.abs(a - b) < 4.5 * se + 1e-3)


def test_log_likelihood_matches_quadrature_for_a_2d_latent():
    """With z in 2-D, log p(x) = log integral p(x|z) p(z) dz is computed on a grid."""
    keras.utils.set_random_seed(0)
    model = vae_zoo.VAE(input_dim=12, latent_dim=2, hidden_units=16, seed=0)
    for w in model.decoder.weights:  # a decoder sharp enough that k matters
        w.assign(w * 3.0)
    x = (np.random.default_rng(0).random((5, 12)) < 0.5).astype(np.float32)
    grid = np.linspace(-7, 7, 401, dtype=np.float32)
    z1, z2 = np.meshgrid(grid, grid)
    z = np.stack([z1.ravel(), z2.ravel()], axis=1)
    log_joint = model.decode(z[:, None, :]).log_prob(x).numpy() + model.prior().log_prob(z[:, None, :]).numpy()
    exact = scipy.special.logsumexp(log_joint, axis=0) + 2 * np.log(grid[1] - grid[0])
    gap_1 = exact - model.log_likelihood(x, num_samples=1, seed=0)
    gap_k = exact - model.log_likelihood(x, num_samples=20_000, seed=0)
    assert np.all(np.abs(gap_k) < 0.05), gap_k
    assert np.mean(gap_1) > 10 * np.mean(np.abs(gap_k))
    # Chunking does not change the estimate's distribution: same seed, other chunk size.
    small_chunks = model.log_likelihood(x, num_samples=20_000, seed=0, batch_size=1)
    assert np.all(np.abs(small_chunks - exact) < 0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe",
    [
        recipes.RECIPES["adam"].replace(estimator="A", epochs=3),
        recipes.RECIPES["adam"].replace(estimator="B", epochs=3),
        # The author's Adagrad only accumulates for its first 101 updates: minibatches of 20 give it 300.
        recipes.RECIPES["paper"].replace(epochs=3, learning_rate=0.05, batch_size=20),
    ],
    ids=["adam-A", "adam-B", "paper-adagrad-weight-decay"],
)
def test_fit_raises_the_elbo(recipe, mnist_subset):
    x, _, x_test, _ = mnist_subset
    x_test = binary(x_test)
    model = training.build_model(dict(input_dim=784, latent_dim=10, hidden_units=200), recipe, len(x))
    recipes.compile_model(model, recipe, len(x) // recipe.batch_size)
    before = model.evaluate(x_test, batch_size=100, verbose=0, return_dict=True)
    history = model.fit(data.train_dataset(x, recipe.batch_size, seed=0, epochs=recipe.epochs), epochs=recipe.epochs,
                        steps_per_epoch=len(x) // recipe.batch_size, verbose=0)
    after = model.evaluate(x_test, batch_size=100, verbose=0, return_dict=True)
    assert set(history.history) >= {"elbo", "reconstruction", "kl", "loss"}
    assert after["elbo"] > before["elbo"] + 50
    assert np.isclose(after["elbo"], after["reconstruction"] - after["kl"], atol=1e-3)
    if recipe.parameter_prior:
        assert model.parameter_prior_scale == pytest.approx(1 / len(x))
        assert history.history["loss"][-1] > -history.history["elbo"][-1]  # the prior's penalty is in the loss


def test_paper_recipe_initialises_weights_from_n_0_001():
    model = training.build_model(dict(input_dim=784, latent_dim=20, hidden_units=500),
                                 recipes.RECIPES["paper"], 60_000)
    kernel = model.encoder.body.layers[0].kernel.numpy()
    assert abs(kernel.std() - 0.01) < 0.0005


def test_keras_round_trip_gives_identical_outputs(tmp_path, mnist_subset):
    x = mnist_subset[0][:16]
    model = small_vae(likelihood="gaussian", estimator="A", num_samples=2)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, vae_zoo.VAE)
    assert loaded.get_config() == model.get_config()
    for key, value in model.predict(x, verbose=0).items():
        np.testing.assert_array_equal(loaded.predict(x, verbose=0)[key], value)
    np.testing.assert_array_equal(loaded.elbo(x, "A", 3, seed=5), model.elbo(x, "A", 3, seed=5))
    np.testing.assert_array_equal(loaded.sample(3, seed=2), model.sample(3, seed=2))


def test_estimator_switch_recompiles(mnist_subset):
    x = binary(mnist_subset[0][:200])
    model = small_vae()
    model.compile("adam")
    b = model.evaluate(x, verbose=0, return_dict=True)
    model.estimator = "A"
    a = model.evaluate(x, verbose=0, return_dict=True)
    # A's KL is a Monte Carlo estimate, B's the closed form: they differ per run.
    assert a["kl"] != b["kl"]
    with pytest.raises(ValueError, match="Unknown estimator 'C'"):
        model.estimator = "C"


BAD_INPUTS = [
    (np.zeros((4, 783), np.float32), "shape \\(batch, 784\\)"),
    (np.zeros((4, 28, 28), np.float32), "Flatten the images"),
    (np.zeros((0, 784), np.float32), "empty batch"),
    (np.full((2, 784), np.nan, np.float32), "NaN or inf"),
    (np.full((2, 784), np.inf, np.float32), "NaN or inf"),
    (np.full((2, 784), 255.0, np.float32), "in \\[0, 1\\]"),
    (np.full((2, 784), -0.5, np.float32), "in \\[0, 1\\]"),
]


@pytest.mark.parametrize("x, message", BAD_INPUTS)
def test_bad_input_raises_a_clear_value_error(x, message):
    model = small_vae()
    model.compile("adam")
    for call in (model.encode, model.elbo, model.log_likelihood, model.reconstruct,
                 lambda v: model.fit(v, verbose=0), lambda v: model.evaluate(v, verbose=0),
                 lambda v: model.predict(v, verbose=0)):
        with pytest.raises(ValueError, match=message):
            call(x)


def test_gaussian_model_takes_pixels_in_the_unit_interval_only():
    model = small_vae(likelihood="gaussian")
    assert np.all(np.isfinite(model.elbo(np.full((2, 784), 0.5, np.float32))))
    with pytest.raises(ValueError, match=r"Gaussian model .* in \[0, 1\] \(Frey Face pixels / 256\)"):
        model.elbo(np.full((2, 784), 1.5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.elbo(np.full((2, 784), np.nan, np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(likelihood="poisson"), "Unknown likelihood 'poisson'"),
        (dict(latent_dim=0), "`latent_dim` must be a positive int"),
        (dict(hidden_units=[10, -1]), "`hidden_units` must be"),
        (dict(estimator="C"), "Unknown estimator"),
        (dict(num_samples=0), "`num_samples` must be a positive int"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_vae(**kwargs)


def test_bad_latent_input_to_decode():
    model = small_vae()
    with pytest.raises(ValueError, match=r"\(\.\.\., 5\)"):
        model.decode(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.decode(np.full((2, 5), np.nan, np.float32))


@pytest.mark.slow
def test_compile_defaults_to_the_fast_path_and_fits_steps_per_execution_to_the_epoch(mnist_subset):
    x = binary(mnist_subset[0][:620])
    model = small_vae()
    model.compile("adam")
    assert model.jit_compile is True and model.steps_per_execution == 50
    model.fit(x, batch_size=100, epochs=1, verbose=0)  # 7 steps, the last one short
    assert int(model.optimizer.iterations) == 7
    # A repeating dataset with 6 steps per epoch: calls of 50 steps would run past each epoch.
    ds = data.train_dataset(x, 100, seed=0, epochs=2)
    history = model.fit(ds, epochs=2, steps_per_epoch=6, verbose=0)
    assert model.steps_per_execution == 6 and int(model.optimizer.iterations) == 7 + 12
    assert len(history.history["elbo"]) == 2
    model.compile("adam", steps_per_execution=4)  # a user's choice is kept
    model.fit(ds.take(8), epochs=1, steps_per_epoch=8, verbose=0)
    assert model.steps_per_execution == 4


@pytest.mark.slow
def test_progress_counts_the_steps_of_numpy_inputs(mnist_subset, capsys):
    x = binary(mnist_subset[0][:100])
    model = small_vae()
    model.compile("adam")
    capsys.readouterr()
    model.fit(x, batch_size=10, epochs=1, verbose=1)  # 10 steps, not a call of 50
    ten = model.train_function
    out = capsys.readouterr().out
    assert model.steps_per_execution == 10 and int(model.optimizer.iterations) == 10
    assert "10/10" in out and "50/10" not in out
    model.evaluate(x, batch_size=25, verbose=1)  # 4 steps
    assert model.steps_per_execution == 4 and "4/4" in capsys.readouterr().out
    # Each number of steps per call keeps its compiled function: back to 10 steps, no new compile.
    model.fit(x, batch_size=25, epochs=1, verbose=0)
    assert model.train_function is not ten
    model.fit(x, batch_size=10, epochs=1, verbose=0)
    assert model.train_function is ten and int(model.optimizer.iterations) == 24
    model.compile("adam")  # a new compile drops them all
    assert model.train_function is None and not model._functions_by_steps


@pytest.mark.parametrize("kwargs", [dict(run_eagerly=True), dict(jit_compile=False)])
def test_slow_paths_still_work(kwargs, mnist_subset):
    x = binary(mnist_subset[0][:200])
    model = small_vae()
    model.compile(keras.optimizers.Adam(1e-3), **kwargs)
    assert model.jit_compile is False
    before = model.evaluate(x, verbose=0, return_dict=True)["elbo"]
    model.fit(x, batch_size=50, epochs=3, verbose=0)
    assert model.evaluate(x, verbose=0, return_dict=True)["elbo"] > before


def test_elbo_defaults_to_the_models_estimator_and_samples(mnist_subset):
    x = binary(mnist_subset[0][:10])
    model = small_vae(estimator="A", num_samples=3)
    np.testing.assert_array_equal(model.elbo(x, seed=4), model.elbo(x, "A", 3, seed=4))
    model.estimator = "B"
    np.testing.assert_array_equal(model.elbo(x, seed=4), model.elbo(x, "B", 3, seed=4))


def test_from_preset_is_load(mnist_subset):
    x = binary(mnist_subset[2][:20])
    a, b = vae_zoo.VAE.from_preset("mnist-z2"), vae_zoo.load("mnist-z2")
    assert a.get_config() == b.get_config() and a.jit_compile and a.optimizer.__class__ is b.optimizer.__class__
    np.testing.assert_array_equal(a.elbo(x, seed=0), b.elbo(x, seed=0))


@pytest.mark.slow
def test_app_d_estimate_matches_quadrature_on_a_trained_2d_model():
    """mnist-z2 has a 2-D latent space, so log p(x) is computed exactly on a grid."""
    model = vae_zoo.load("mnist-z2", compile=False)
    x = data.test_set("mnist", binary=True)[:20]
    # The grid over [-6, 6]^2 decoded once (test_exact checks it against the plain midpoint sum).
    exact = exact_lib.quadrature(model, x, half_width=6.0, points=601)
    hmc, acceptance, _ = model.log_likelihood_hmc(x, num_samples=400, num_burnin=300, seed=0, num_chains=1)
    assert abs(acceptance - 0.9) < 0.1
    # Mean error small; a single chain may miss a mode of its image's posterior (the benchmark
    # shows misses of up to 14 nats on single images), so per image: nearly all within 1 nat.
    assert np.mean(np.abs(hmc - exact) < 1.0) >= 0.9 and abs(np.mean(hmc - exact)) < 0.15, hmc - exact
    np.testing.assert_array_equal(hmc, model.log_likelihood_hmc(x, num_samples=400, num_burnin=300, seed=0,
                                                                num_chains=1)[0])


@pytest.mark.parametrize("policy", ["mixed_float16", "float16", "bfloat16"])
def test_a_global_keras_dtype_policy_leaves_the_model_in_float32(policy, mnist_subset):
    x = mnist_subset[0][:8]
    reference = vae_zoo.load("mnist-z2").elbo(x, seed=3)
    keras.config.set_dtype_policy(policy)
    try:
        model = vae_zoo.load("mnist-z2")
        assert all(w.dtype == "float32" for w in model.weights)
        np.testing.assert_allclose(model.elbo(x, seed=3), reference, rtol=1e-6)
        assert model.sample(2, seed=0).dtype == "float32"
        fresh = vae_zoo.VAE(784, 2, hidden_units=8)
        assert all(w.dtype == "float32" for w in fresh.weights)
        with pytest.raises(ValueError, match="A VAE computes in float32"):
            vae_zoo.VAE(784, 2, dtype=policy)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.slow
def test_a_model_trains_with_the_importance_weighted_bound_and_dreg():
    """estimator "IW" with k = 1 is estimator A (loss and gradients, same noise); "IW-DReG" keeps the
    IW gradients of the decoder and replaces the encoder's; both train from `fit`; recipes and the
    command line accept exactly the model's estimators."""
    import tensorflow as tf

    from vae_zoo.estimators import objectives
    from vae_zoo.model.recipes import ESTIMATOR_NAMES, Recipe

    assert ESTIMATOR_NAMES == tuple(objectives.ESTIMATORS)
    x = tf.constant((np.random.default_rng(0).random((16, 784)) < 0.3).astype(np.float32))
    model = vae_zoo.VAE(input_dim=784, latent_dim=4, hidden_units=32, num_samples=1, seed=0)
    seed = tf.constant([5, 6], tf.int64)

    def step(estimator, k=1):
        model.estimator, model.num_samples = estimator, k
        _, loss, grads = model.loss_and_gradients(x, seed)
        return loss.numpy(), [g.numpy() for g in grads]

    loss_a, grads_a = step("A")
    loss_iw, grads_iw = step("IW")
    np.testing.assert_allclose(loss_iw, loss_a, rtol=1e-6)
    for g_iw, g_a in zip(grads_iw, grads_a):
        np.testing.assert_allclose(g_iw, g_a, rtol=1e-4, atol=1e-6)
    loss_iw5, grads_iw5 = step("IW", 5)
    loss_dreg, grads_dreg = step("IW-DReG", 5)
    np.testing.assert_allclose(loss_dreg, loss_iw5, rtol=1e-6)
    decoder = {id(v) for v in model.decoder.trainable_variables}
    for v, g_dreg, g_iw in zip(model.trainable_variables, grads_dreg, grads_iw5):
        if id(v) in decoder:
            np.testing.assert_allclose(g_dreg, g_iw, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(g_dreg, g_iw) for v, g_dreg, g_iw in zip(model.trainable_variables, grads_dreg,
                                                                        grads_iw5) if id(v) not in decoder)
    for estimator in ("IW", "IW-DReG"):
        fresh = vae_zoo.VAE(input_dim=784, latent_dim=4, hidden_units=32, estimator=estimator, num_samples=5, seed=0)
        fresh.compile("adam")
        history = fresh.fit(x.numpy(), batch_size=8, epochs=3, verbose=0).history
        assert np.isfinite(history["loss"]).all() and history["elbo"][-1] > history["elbo"][0]
    assert Recipe(estimator="IW-DReG", num_samples=5).estimator == "IW-DReG"
    with pytest.raises(ValueError, match="estimator"):
        Recipe(estimator="IWAE")
