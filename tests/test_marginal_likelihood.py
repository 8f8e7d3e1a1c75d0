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
    ais, *_ = marginal_likelihood.ais(model, x, num_chains=16, num_steps=200, num_leapfrog_steps=5, seed=seed)
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
    # `quadrature` above on the grid decoded once (test_exact checks the two against each other).
    exact = exact_lib.quadrature(model, x, half_width=6.0, points=601)
    ais, acceptance, _ = model.log_likelihood_ais(x, num_chains=16, num_steps=200, seed=0)
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
    ais, *_ = marginal_likelihood.ais(model, x, num_chains=16, num_steps=200, num_leapfrog_steps=5)
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


def test_an_interrupted_ais_measurement_continues_from_its_progress_file(monkeypatch, tmp_path):
    """`evaluate --ais` saves its per-image estimates every AIS_BLOCK images: the same call after an
    interruption estimates only the rest, to the result of one uninterrupted call and of the
    estimator on all the images at once (a batch is seeded by its first row of the data). A
    progress file of another seed (or model, or images) is refused, not mixed in."""
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.zoo import evaluation

    model = small_model(3, 0.3)
    x = (np.random.default_rng(2).random((5, model.input_dim)) < 0.5).astype(np.float32)
    settings = {"num_chains": 4, "num_steps": 10, "num_leapfrog_steps": 2}
    monkeypatch.setattr(evaluation, "AIS_SETTINGS", settings)
    monkeypatch.setattr(evaluation, "AIS_BLOCK", 2)
    straight = evaluation.ais_log_likelihood(model, x, "5 images", seed=1, verbose=False)
    whole = marginal_likelihood.ais(model, x, seed=1, batch_size=2, **settings)
    assert straight["mean"] == round(float(np.mean(whole.log_likelihood)), 3)
    assert straight["acceptance"] == round(float(np.mean(whole.acceptance)), 3)
    estimated, real, calls_allowed = [], marginal_likelihood.ais, [2]

    def counted(model, images, **kwargs):  # interrupted after `calls_allowed` calls
        estimated.append(len(images))
        if len(estimated) > calls_allowed[0]:
            raise KeyboardInterrupt
        return real(model, images, **kwargs)

    progress = tmp_path / "runs" / "small-ais.npz"
    monkeypatch.setattr(marginal_likelihood, "ais", counted)
    with pytest.raises(KeyboardInterrupt):  # in the third block: the first two blocks' estimates are saved
        evaluation.ais_log_likelihood(model, x, "5 images", seed=1, verbose=False, progress=progress)
    with pytest.raises(InvalidArgumentError, match="another measurement"):
        evaluation.ais_log_likelihood(model, x, "5 images", seed=2, verbose=False, progress=progress)
    estimated.clear()
    calls_allowed[0] = 10
    resumed = evaluation.ais_log_likelihood(model, x, "5 images", seed=1, verbose=False, progress=progress)
    assert estimated == [1]  # the last image only
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in straight.items() if k != "seconds"}
    assert not progress.exists()  # a finished measurement leaves no progress behind
    with pytest.raises(InvalidArgumentError, match="first_row"):
        real(model, x, first_row=-1)


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
    estimate = marginal_likelihood.ais(model, x, num_chains=4, num_steps=20, num_leapfrog_steps=2, batch_size=2)
    ais, disagreement = estimate.log_likelihood, estimate.disagreement
    assert ais.shape == (3,) and np.all(np.isfinite(ais))
    # AIS records how much each estimate rests on its best chain (mcmc.leave_best_out), flagged above the threshold.
    assert disagreement.shape == (3,) and np.all(disagreement >= 0)
    np.testing.assert_array_equal(marginal_likelihood.flagged(estimate),
                                  np.flatnonzero(disagreement > marginal_likelihood.DISAGREEMENT_NATS))
