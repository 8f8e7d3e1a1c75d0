"""The marginal-likelihood estimators on small Bernoulli models: never an impossible value, and
exact where log p(x) is known by quadrature."""

import numpy as np
import pytest
import scipy.special
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import vae_zoo
from vae_zoo.estimators import exact as exact_lib
from vae_zoo.estimators import marginal_likelihood


def quadrature(model, x, half_width=6.0, points=301) -> np.ndarray:
    """Exact log p(x) of a model with a 2-D or 3-D latent space by the midpoint rule on a grid."""
    grid = np.linspace(-half_width, half_width, points, dtype=np.float32)
    z = np.stack([g.ravel() for g in np.meshgrid(*[grid] * model.latent_dim)], axis=1)[:, None, :]
    log_joint = np.concatenate([(model.decoder(tf.constant(z[i:i + 50_000])).log_prob(x)
                                 + model.prior().log_prob(z[i:i + 50_000])).numpy()
                                for i in range(0, len(z), 50_000)])
    return scipy.special.logsumexp(log_joint, axis=0) + model.latent_dim * np.log(grid[1] - grid[0])


_MODELS = {}


def small_model(seed: int, scale: float):
    """A 12-8-2 Bernoulli VAE with N(0, scale^2) weights: untrained (0.01), or badly conditioned (3.0).
    One model object whose weights change, so the estimators' compiled loops are traced once."""
    if "model" not in _MODELS:
        _MODELS["model"] = vae_zoo.VAE(input_dim=12, latent_dim=2, hidden_units=8, seed=0)
    model = _MODELS["model"]
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, scale, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), scale=st.sampled_from([0.01, 0.3, 1.0, 3.0]),
       ones=st.floats(0.0, 1.0))
@example(seed=218, scale=3.0, ones=0.0)  # found by this test: one chain's acceptance 0.33 (mean 0.76)
def test_estimates_of_a_bernoulli_model_are_never_positive_and_match_quadrature(seed, scale, ones):
    model = small_model(seed, scale)
    x = (np.random.default_rng(seed + 1).random((6, model.input_dim)) < ones).astype(np.float32)
    exact = quadrature(model, x)
    app_d, app_d_acceptance, *_ = marginal_likelihood.app_d(model, x, num_samples=200, num_burnin=200,
                                                        num_leapfrog_steps=5, seed=seed)
    ais, _ = marginal_likelihood.ais(model, x, num_chains=16, num_steps=200, num_leapfrog_steps=5, seed=seed)
    for estimate in (app_d, ais):
        assert np.all(np.isfinite(estimate)) and np.all(estimate <= 0), estimate
    assert np.all(exact <= 0)
    # Both within a nat of the exact value, and App. D's step sizes at their target, on the models of
    # moderate weights. On the badly conditioned ones (weights ~ N(0, 9), rugged posteriors) only the
    # contract above is asserted: there App. D's single chain can miss a mode (seen: 1.1 nats low), 200
    # AIS steps spread over +-1.4 nats, and 200 steps of dual averaging can leave a chain far from its
    # target acceptance (seen: 0.33; Figure 3's gate refuses such a point, docs/paper.md).
    if scale <= 1.0:
        np.testing.assert_allclose(ais, exact, atol=1.0)
        np.testing.assert_allclose(app_d, exact, atol=1.0)
        assert abs(float(np.mean(app_d_acceptance)) - 0.9) < 0.1


@pytest.mark.slow
def test_ais_matches_quadrature_on_a_trained_2d_model():
    model = vae_zoo.load("mnist-z2", compile=False)
    from vae_zoo import data

    x = data.test_set("mnist", binary=True)[:10]
    exact = quadrature(model, x, points=601)
    ais, acceptance = model.log_likelihood_ais(x, num_chains=16, num_steps=200, seed=0)
    assert np.mean(ais - exact) < 0.05 and np.mean(ais - exact) > -0.3 and np.all(np.abs(ais - exact) < 1.5)
    assert abs(float(np.mean(acceptance)) - 0.65) < 0.1
    np.testing.assert_array_equal(ais, model.log_likelihood_ais(x, num_chains=16, num_steps=200, seed=0)[0])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_both_estimators_match_quadrature_in_three_dimensions(seed):
    """Figure 3's latent size: a 12-8-3 Bernoulli model with N(0, 1) weights, six images; the exact
    value on 81^3 and 121^3 grids (which agree within 0.001 nats)."""
    model = vae_zoo.VAE(input_dim=12, latent_dim=3, hidden_units=8, seed=0)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 1.0, w.shape).astype(np.float32) for w in model.get_weights()])
    x = (np.random.default_rng(10 + seed).random((6, 12)) < 0.5).astype(np.float32)
    coarse, exact = quadrature(model, x, points=81), quadrature(model, x, points=121)
    np.testing.assert_allclose(coarse, exact, atol=1e-3)
    boxes = exact_lib.posterior_boxes(model, x, points=61)  # each image on its own box, as evaluate --exact
    np.testing.assert_allclose(exact_lib.quadrature_in_boxes(model, x, boxes, 41), exact, atol=5e-3)  # float32 sums
    app_d, acceptance, *_ = marginal_likelihood.app_d(model, x, num_samples=200, num_burnin=200, num_leapfrog_steps=5)
    ais, _ = marginal_likelihood.ais(model, x, num_chains=16, num_steps=200, num_leapfrog_steps=5)
    for estimate in (app_d, ais):  # measured: mean error within 0.06 nats, worst image 0.26
        assert abs(float(np.mean(estimate - exact))) < 0.15 and np.all(np.abs(estimate - exact) < 0.6), estimate - exact
    assert abs(float(np.mean(acceptance)) - 0.9) < 0.05


@pytest.mark.parametrize("kwargs", [{"num_chains": 0}, {"num_steps": -1}, {"seed": -2}, {"batch_size": 1.5}])
def test_ais_refuses_bad_arguments(kwargs):
    model = small_model(0, 0.3)
    x = np.zeros((2, model.input_dim), np.float32)
    with pytest.raises(vae_zoo.VaeZooError):
        model.log_likelihood_ais(x, **kwargs)


def test_models_of_one_architecture_share_the_compiled_estimator():
    """A figure measures hundreds of checkpoints of AEVB, wake-sleep and MCEM models (MCEM's encoder
    frozen): one trace of the estimator serves them all, each measured with its own weights."""
    from vae_zoo.model import baselines

    model = small_model(3, 0.3)
    x = (np.random.default_rng(0).random((4, model.input_dim)) < 0.5).astype(np.float32)
    first, *_ = marginal_likelihood.app_d(model, x, num_samples=20, num_burnin=20, num_leapfrog_steps=2)
    traces = marginal_likelihood._app_d_chunk.experimental_get_tracing_count()
    mcem = baselines.MCEM(input_dim=12, latent_dim=2, hidden_units=8, seed=1, num_datapoints=4)
    mcem(np.zeros((1, 12), np.float32))
    assert not mcem.encoder.trainable
    for theirs, mine in zip([*model.encoder.weights, *model.decoder.weights],
                            [*mcem.encoder.weights, *mcem.decoder.weights], strict=True):
        mine.assign(theirs)
    again, *_ = marginal_likelihood.app_d(mcem, x, num_samples=20, num_burnin=20, num_leapfrog_steps=2)
    np.testing.assert_array_equal(first, again)
    other = small_model(4, 0.3)  # the same object, other weights: other estimates, no new trace
    assert not np.array_equal(first, marginal_likelihood.app_d(other, x, num_samples=20, num_burnin=20,
                                                               num_leapfrog_steps=2)[0])
    assert marginal_likelihood._app_d_chunk.experimental_get_tracing_count() == traces


def test_the_package_quadrature_is_the_exact_log_likelihood_and_refuses_what_it_cannot_integrate(monkeypatch):
    """`exact.quadrature` (one decoded grid, a matrix product per chunk) equals the plain midpoint
    sum above on mnist-z2's test images; `evaluate --exact`'s grid check refuses a model whose
    posteriors are too narrow for its grids and a latent space of more than 3."""
    from vae_zoo import data
    from vae_zoo.core.errors import EstimateError, InvalidArgumentError
    from vae_zoo.zoo import evaluation
    from vae_zoo.zoo.evaluation import exact_log_likelihood

    model = vae_zoo.load("mnist-z2", compile=False)
    x = data.test_set("mnist", binary=True)[:12]
    exact = exact_lib.quadrature(model, x, points=401, grid_chunk=5000, batch_size=5)
    np.testing.assert_allclose(exact, quadrature(model, x, 5.0, 401), atol=2e-3)
    assert np.all(exact < 0) and np.all(exact >= model.log_likelihood(x, num_samples=200, seed=0) - 0.5)
    frey = vae_zoo.load("frey-z2", compile=False)
    monkeypatch.setitem(evaluation.EXACT_GRIDS, 2, 201)  # faster; frey-z2 fails the check at 801 points too
    monkeypatch.setitem(evaluation.EXACT_LOCATOR_POINTS, 2, 201)
    monkeypatch.setitem(evaluation.EXACT_BOX_POINTS, 2, 9)  # and each image's own box, this coarse
    monkeypatch.setitem(evaluation.EXACT_BOX_CHECK_POINTS, 2, 5)
    with pytest.raises(EstimateError, match="too coarse"):
        exact_log_likelihood(frey, data.test_set("frey", binary=False)[1:3], "2 images", verbose=False)
    with pytest.raises(InvalidArgumentError, match="2 or 3"):
        exact_lib.quadrature(vae_zoo.VAE(input_dim=784, latent_dim=4, hidden_units=8), x)


def test_narrow_posteriors_are_integrated_on_each_images_own_box_even_far_out_in_the_prior(monkeypatch):
    """frey-z2 (a Gaussian decoder with small learned variances): one shared grid is too coarse for
    its posteriors, so `evaluate --exact` integrates each image over its own box, found on the wide
    grid and searched again on a wider one when it reaches the edge (test image 0 lies near
    z1 = -8, beyond the [-5, 5] grid). The values are at least the importance-weighted lower bound
    and agree at two resolutions."""
    from vae_zoo import data
    from vae_zoo.zoo import evaluation

    frey = vae_zoo.load("frey-z2", compile=False)
    x = data.test_set("frey", binary=False)[:3]
    monkeypatch.setitem(evaluation.EXACT_GRIDS, 2, 201)
    monkeypatch.setitem(evaluation.EXACT_LOCATOR_POINTS, 2, 201)  # the wide grid only locates the posteriors
    monkeypatch.setitem(evaluation.EXACT_BOX_POINTS, 2, 201)
    monkeypatch.setitem(evaluation.EXACT_BOX_CHECK_POINTS, 2, 101)
    result = evaluation.exact_log_likelihood(frey, x, "3 images", verbose=False)
    assert result["grid"].startswith("per image, 201^2 points") and result["grid_check"] <= 0.01
    boxes = exact_lib.posterior_boxes(frey, x, points=201)
    assert boxes[0, 0, 1] < -5 and np.all(np.abs(boxes[1:]) < 5), boxes
    values = exact_lib.quadrature_in_boxes(frey, x, boxes, 201)
    bound = frey.log_likelihood(x, num_samples=2000, seed=0)
    assert np.all(values >= bound - 0.3) and np.all(values - bound < 10), (values, bound)
    assert abs(np.mean(values) - result["mean"]) < 1e-3  # the card rounds to 0.001


@pytest.mark.slow
def test_app_d_on_mnist_z2_is_within_a_nat_of_exact_or_flags_the_image():
    """mnist-z2's posteriors have minor modes on some images: on the first ten test images,
    binarized with seeds 4 and 5 (not the package's), the estimate's chain started in one and
    stayed there (1.3 and 8.3 nats low on one image each), with nothing in its samples to show it.
    The other chains, started elsewhere, flag such an image; an image not flagged is within a
    nat of the exact value (quadrature), and a flagged image's estimate, pooled from every
    chain, is too."""
    from vae_zoo import data

    model = vae_zoo.load("mnist-z2", compile=False)
    misses = 0
    for seed in (4, 5):
        x = data.binarize(data.load("mnist", "test")[:10], seed)
        exact = exact_lib.quadrature(model, x)
        estimate = marginal_likelihood.app_d(model, x, seed=0)
        error = np.abs(estimate.first_chain - exact)
        misses += int(np.sum(error > 1.0))
        unflagged = np.setdiff1d(np.arange(len(x)), marginal_likelihood.flagged(estimate))
        assert np.all(error[unflagged] <= 1.0), (seed, error, estimate.disagreement)
        assert np.all(estimate.disagreement >= 0)
        np.testing.assert_array_equal(estimate.log_likelihood[unflagged], estimate.first_chain[unflagged])
        assert np.all(np.abs(estimate.log_likelihood - exact) <= 1.0), (seed, estimate.log_likelihood - exact)
    assert misses >= 2  # the silent misses of the first chain alone this test is about


def test_the_last_smaller_batch_is_estimated_like_the_others():
    """A batch of another size than the first (the last of a set) is traced anew, not refused."""
    model = small_model(5, 0.3)
    x = (np.random.default_rng(1).random((3, model.input_dim)) < 0.5).astype(np.float32)
    whole = marginal_likelihood.app_d(model, x, num_samples=20, num_burnin=20, num_leapfrog_steps=2, batch_size=2,
                                      num_chains=1)
    alone = marginal_likelihood.app_d(model, x[2:], num_samples=20, num_burnin=20, num_leapfrog_steps=2,
                                      batch_size=2, seed=0, num_chains=1)
    assert whole.log_likelihood.shape == (3,) and np.all(np.isfinite(whole.log_likelihood))
    assert np.isfinite(alone.log_likelihood).all()
    ais, _ = marginal_likelihood.ais(model, x, num_chains=4, num_steps=20, num_leapfrog_steps=2, batch_size=2)
    assert ais.shape == (3,) and np.all(np.isfinite(ais))
