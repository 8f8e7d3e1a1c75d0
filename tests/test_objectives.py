"""The SGVB estimators against closed forms of a linear-Gaussian model.

Model: p(z) = N(0, I), p(x|z) = N(W z + b, s2 I). Then p(x) = N(b, W W^T + s2 I)
and, when W has orthogonal columns, the exact posterior is a diagonal Gaussian,
so q(z|x) can equal it.
"""

import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vae_zoo.estimators import mcmc, objectives
from vae_zoo.layers.distributions import diagonal_normal

tfd = tfp.distributions
D, Z, S2 = 6, 3, 0.5


@pytest.fixture
def linear_gaussian(rng):
    q_mat, _ = np.linalg.qr(rng.normal(size=(D, Z)))
    w = q_mat * np.array([2.0, 1.0, 0.5])  # orthogonal columns
    b = rng.normal(size=D)
    x = rng.normal(size=(4, D)) * 2
    return w, b, x


def decoder_fn(w, b):
    w_t = tf.constant(w.T, tf.float64)

    def decode(z):
        mean = tf.matmul(z, w_t) + b
        return diagonal_normal(mean, tf.fill(tf.shape(mean), tf.constant(np.log(S2), tf.float64)))

    return decode


def exact_log_px(w, b, x):
    cov = w @ w.T + S2 * np.eye(D)
    return tfd.MultivariateNormalFullCovariance(b, cov).log_prob(x).numpy()


def exact_posterior(w, b, x):
    var = 1.0 / (1.0 + np.sum(w**2, axis=0) / S2)  # diagonal since W^T W is diagonal
    mean = (x - b) @ w / S2 * var
    return mean, np.broadcast_to(var, mean.shape)


def analytic_elbo(w, b, x, m, v):
    """E_q[log p(x|z)] - KL(q || p) for q = N(m, diag(v))."""
    resid = x - (m @ w.T + b)
    expected_sq = np.sum(resid**2, axis=1) + np.sum(v @ (w**2).T, axis=1)
    recon = -0.5 * D * np.log(2 * np.pi * S2) - expected_sq / (2 * S2)
    kl = 0.5 * np.sum(m**2 + v - 1 - np.log(v), axis=1)
    return recon - kl


def posterior_dist(m, v):
    return diagonal_normal(tf.constant(m), tf.constant(np.log(v)))


def prior():
    return diagonal_normal(tf.zeros(Z, tf.float64), tf.zeros(Z, tf.float64))


def draw_z(q, n, seed=1):
    eps = tf.random.stateless_normal([n, *q.batch_shape, Z], seed=[seed, 0], dtype=tf.float64)
    return objectives.reparameterize(q, eps)


@pytest.mark.parametrize("estimator", ["A", "B"])
def test_estimators_match_analytic_elbo(linear_gaussian, estimator):
    w, b, x = linear_gaussian
    m, v = exact_posterior(w, b, x)
    m, v = m + 0.3, v * 1.7  # a q that is not the posterior
    q = posterior_dist(m, v)
    n = 20_000
    z = draw_z(q, n)
    bound = objectives.ESTIMATORS[estimator](x, q, prior(), decoder_fn(w, b), z)
    truth = analytic_elbo(w, b, x, m, v)
    # Standard error from 20 independent batches of samples.
    batches = [objectives.ESTIMATORS[estimator](x, q, prior(), decoder_fn(w, b), zz).elbo.numpy()
               for zz in tf.split(z, 20)]
    se = np.std(batches, axis=0) / np.sqrt(len(batches))
    assert np.all(np.abs(bound.elbo.numpy() - truth) < 4 * se + 1e-9)
    assert np.all(bound.elbo.numpy() <= exact_log_px(w, b, x) + 4 * se)


def test_estimator_a_is_exact_at_the_true_posterior(linear_gaussian):
    w, b, x = linear_gaussian
    q = posterior_dist(*exact_posterior(w, b, x))
    log_w = objectives.log_weights(x, q, prior(), decoder_fn(w, b), draw_z(q, 50))
    np.testing.assert_allclose(np.std(log_w.numpy(), axis=0), 0.0, atol=1e-9)
    bound = objectives.sgvb_a(x, q, prior(), decoder_fn(w, b), draw_z(q, 3))
    np.testing.assert_allclose(bound.elbo.numpy(), exact_log_px(w, b, x), rtol=1e-10)


def test_importance_weighted_bound_tightens_with_k(linear_gaussian):
    w, b, x = linear_gaussian
    m, v = exact_posterior(w, b, x)
    q = posterior_dist(m + 0.5, v * 2.0)
    truth = exact_log_px(w, b, x)
    z = draw_z(q, 20_000)
    log_w = objectives.log_weights(x, q, prior(), decoder_fn(w, b), z)
    gaps = {}
    for k in (1, 10, 100, 20_000):
        # 20,000 / k independent estimates with k samples each: shape (k, 20_000 / k, batch).
        chunks = tf.transpose(tf.reshape(log_w, [-1, k, len(x)]), [1, 0, 2])
        estimates = objectives.importance_weighted_bound(chunks).numpy()
        gaps[k] = np.mean(truth - estimates)
    assert gaps[1] > gaps[10] > gaps[100] > gaps[20_000] > -0.02
    assert gaps[20_000] < 0.05 < gaps[1] / 10
    np.testing.assert_allclose(gaps[1], np.mean(truth - analytic_elbo(w, b, x, m + 0.5, v * 2.0)), rtol=0.05)


def test_combine_logmeanexp_equals_one_pass(rng):
    log_w = tf.constant(rng.normal(size=(30, 5)) * 10)
    parts = [(objectives.importance_weighted_bound(c), int(c.shape[0])) for c in tf.split(log_w, [7, 20, 3])]
    np.testing.assert_allclose(objectives.combine_logmeanexp(parts), objectives.importance_weighted_bound(log_w))


def test_analytic_kl_matches_tfp_and_monte_carlo(rng):
    m, v = rng.normal(size=(5, Z)), rng.uniform(0.2, 3.0, size=(5, Z))
    q = posterior_dist(m, v)
    kl = objectives.kl_to_standard_normal(q).numpy()
    np.testing.assert_allclose(kl, tfd.kl_divergence(q, prior()).numpy(), rtol=1e-10)
    z = draw_z(q, 100_000)
    mc = q.log_prob(z) - prior().log_prob(z)
    se = np.std(mc.numpy(), axis=0) / np.sqrt(100_000)
    assert np.all(np.abs(np.mean(mc.numpy(), axis=0) - kl) < 4 * se)


def test_gradients_flow_through_the_reparameterization(linear_gaussian):
    w, b, x = linear_gaussian
    m = tf.Variable(np.zeros((len(x), Z)))
    log_v = tf.Variable(np.zeros((len(x), Z)))
    for estimator in ("A", "B"):
        with tf.GradientTape() as tape:
            q = diagonal_normal(m, log_v)
            bound = objectives.ESTIMATORS[estimator](x, q, prior(), decoder_fn(w, b), draw_z(q, 10))
            loss = -tf.reduce_sum(bound.elbo)
        g_m, g_v = tape.gradient(loss, [m, log_v])
        assert g_m is not None and g_v is not None
        assert np.all(np.abs(g_m.numpy()).sum(axis=1) > 0)
        assert np.all(np.isfinite(g_v.numpy()))


def test_app_d_estimator_matches_the_exact_marginal_likelihood(linear_gaussian):
    w, b, x = linear_gaussian
    decode, prior = decoder_fn(w, b), tfd.MultivariateNormalDiag(tf.zeros(Z, tf.float64))

    def log_joint(z):
        return decode(z).log_prob(x) + prior.log_prob(z)

    estimate, acceptance, *_ = mcmc.marginal_likelihood_app_d(
        log_joint, tf.zeros((len(x), Z), tf.float64), num_samples=1000, num_burnin=500, seed=(1, 2))
    np.testing.assert_allclose(estimate, exact_log_px(w, b, x), atol=0.05)
    assert abs(float(np.mean(acceptance)) - 0.9) < 0.07  # per chain since the step sizes are per chain


def test_mode_search_starts_chains_at_distinct_modes_the_highest_first():
    # Two modes: a narrow one at (3, -3) holding most of the mass and a broad one at 0. The only
    # candidate in the narrow mode's basin starts far below the best candidates near 0 (log p over 10
    # nats lower), so the best candidate is in the minor mode; the climbs still find the main one.
    narrow = tfd.MultivariateNormalDiag(tf.constant([3.0, -3.0], tf.float64), tf.constant([0.1, 0.1], tf.float64))
    broad = tfd.MultivariateNormalDiag(tf.zeros(2, tf.float64), tf.constant([0.5, 0.5], tf.float64))

    def log_joint(z):  # (K, batch, 2) -> (K, batch)
        return tf.reduce_logsumexp(tf.stack([narrow.log_prob(z), broad.log_prob(z) - 5.0]), axis=0)

    near_zero = tf.random.stateless_normal([20, 2, 2], seed=(1, 2), dtype=tf.float64) * 0.7
    far = tf.constant([[[2.55, -2.55], [2.55, -2.55]]], tf.float64)
    broken = tf.constant([[[np.nan, 0.0], [np.nan, 0.0]]], tf.float64)  # a candidate where the density fails
    candidates = tf.concat([near_zero, far, broken], axis=0)
    assert float(tf.reduce_max(log_joint(far))) < float(tf.reduce_min(tf.reduce_max(log_joint(near_zero), 0))) - 10
    starts = mcmc.mode_search(log_joint, candidates, num_modes=3).numpy()
    assert starts.shape == (3, 2, 2)
    np.testing.assert_allclose(starts[0], [[3.0, -3.0]] * 2, atol=0.02)  # the highest mode first
    np.testing.assert_allclose(starts[1], [[0.0, 0.0]] * 2, atol=0.02)  # then the other
    np.testing.assert_array_equal(starts[2], starts[0])  # no third mode: the highest again


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 8), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_mode_search_never_starts_below_its_best_candidate_and_keeps_its_starts_apart(components, k, batch, modes,
                                                                                      seed):
    rng = np.random.default_rng(seed)
    means, scales = rng.uniform(-3, 3, (components, 2)), rng.uniform(0.05, 1.0, (components, 2))
    weights = rng.normal(0, 3, components)

    mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=tf.constant(weights)),
                                    tfd.MultivariateNormalDiag(tf.constant(means), tf.constant(scales)))
    log_joint = mixture.log_prob  # the same for every datapoint

    candidates = tf.constant(rng.normal(0, 2, (k, batch, 2)))
    starts = mcmc.mode_search(log_joint, candidates, modes, num_steps=20).numpy()  # the contract holds at any length
    assert starts.shape == (modes, batch, 2) and np.all(np.isfinite(starts))
    values = log_joint(tf.constant(starts)).numpy()
    assert np.all(values[0] >= log_joint(candidates).numpy().max(axis=0) - 1e-9)  # never below the best candidate
    assert np.all(values <= values[0] + 1e-9)  # the highest first
    for i in range(1, modes):  # each further start is another mode, or the highest again
        for b in range(batch):
            apart = all(np.max(np.abs(starts[i, b] - starts[j, b])) > 0.05 for j in range(i))
            assert apart or np.array_equal(starts[i, b], starts[0, b]), (i, b, starts[:, b])


def test_ais_matches_the_exact_marginal_likelihood(linear_gaussian):
    w, b, x = linear_gaussian
    decode, prior = decoder_fn(w, b), tfd.MultivariateNormalDiag(tf.zeros(Z, tf.float64))
    start = tf.random.stateless_normal((64, len(x), Z), seed=(3, 4), dtype=tf.float64)

    def run(step_sizes, seed):
        return mcmc.annealed_importance_sampling(prior.log_prob, lambda z: decode(z).log_prob(x), start, 1000,
                                                       step_sizes=step_sizes, seed=seed)

    _, schedule, pilot_acceptance = run(None, (1, 2))
    log_w, used, acceptance = run(schedule, (5, 6))
    np.testing.assert_allclose(used, schedule, rtol=1e-12)  # the exact run uses the pilot's step sizes as given
    assert 0.5 < float(np.mean(acceptance)) < 0.9 and np.all(pilot_acceptance > 0.3)  # near the pilot's 0.65
    estimate = objectives.importance_weighted_bound(log_w).numpy()
    # The log-weights' spread over chains is ~0.25 nats at 1,000 steps: the estimate's Monte Carlo
    # error is ~0.03; 0.1 is three of it.
    np.testing.assert_allclose(estimate, exact_log_px(w, b, x), atol=0.1)


def test_sigmoid_schedule_runs_from_prior_to_posterior():
    betas = mcmc.sigmoid_schedule(50).numpy()
    assert betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) > 0)
    assert np.diff(betas)[0] < np.diff(betas)[25]  # dense near the prior


def test_leave_best_out_is_the_fall_of_the_estimate_without_its_best_chain():
    # 16 chains: equal weights lose nothing; one chain holding a share f of the weight loses
    # log((K - 1) / (K (1 - f))): 0.5 nats at f = 0.43; one chain alone (the others' weights 0): inf.
    equal = tf.zeros([16, 3], tf.float64)
    np.testing.assert_allclose(mcmc.leave_best_out(equal), 0.0, atol=1e-12)
    share = 0.43
    log_w = np.zeros((16, 1))
    log_w[7] = np.log(15 * share / (1 - share))
    np.testing.assert_allclose(mcmc.leave_best_out(tf.constant(log_w)), np.log(15 / (16 * (1 - share))), rtol=1e-9)
    assert abs(np.log(15 / (16 * (1 - share))) - 0.5) < 0.01
    alone = tf.constant([[0.0], [-np.inf], [-np.inf]], tf.float64)
    assert np.isinf(mcmc.leave_best_out(alone)[0])
    np.testing.assert_array_equal(mcmc.leave_best_out(tf.constant([[-3.0, 2.0]])), [0.0, 0.0])  # one chain


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 20), st.integers(1, 4)),
                  elements=st.floats(-1e4, 1e4, allow_nan=False)))
def test_leave_best_out_matches_its_definition_and_is_never_negative(log_w):
    drop = mcmc.leave_best_out(tf.constant(log_w)).numpy()
    k = len(log_w)
    rest = np.sort(log_w, axis=0)[:-1]
    expected = (scipy.special.logsumexp(log_w, axis=0) - np.log(k)) - (scipy.special.logsumexp(rest, axis=0)
                                                                      - np.log(k - 1))
    assert np.all(drop >= -1e-9)
    np.testing.assert_allclose(drop, expected, rtol=1e-7, atol=1e-7)


def replicated(w, b, x, m, v, n, trainable=False):
    """x, q(z|x) and the decoder for n independent copies of the batch (rows: copy-major); with
    `trainable`, q's mean and log-variance are variables, one row per copy (per-copy gradients)."""
    xs = np.tile(x, (n, 1))
    mean, log_var = np.tile(m, (n, 1)), np.tile(np.log(v), (n, 1))
    if trainable:
        mean, log_var = tf.Variable(mean), tf.Variable(log_var)
    return xs, mean, log_var


def test_iw_objective_with_one_sample_is_estimator_a_in_value_and_gradient(linear_gaussian):
    w, b, x = linear_gaussian
    m, v = exact_posterior(w, b, x)
    mean, log_var, w_var = tf.Variable(m + 0.3), tf.Variable(np.log(v * 1.7)), tf.Variable(w)
    eps = tf.random.stateless_normal([1, len(x), Z], seed=[3, 0], dtype=tf.float64)

    def value_and_grads(estimator):
        with tf.GradientTape() as tape:
            q = diagonal_normal(mean, log_var)
            decode = lambda z: diagonal_normal(tf.matmul(z, w_var, transpose_b=True) + b,  # noqa: E731
                                               tf.fill([1, len(x), D], tf.constant(np.log(S2), tf.float64)))
            value = objectives.ESTIMATORS[estimator](x, q, prior(), decode, objectives.reparameterize(q, eps)).elbo
            total = tf.reduce_sum(value)
        return value.numpy(), [g.numpy() for g in tape.gradient(total, [mean, log_var, w_var])]

    a, a_grads = value_and_grads("A")
    for name in ("IW", "IW-DReG"):
        iw, iw_grads = value_and_grads(name)
        np.testing.assert_allclose(iw, a, rtol=1e-12)
        for g_iw, g_a in zip(iw_grads, a_grads):
            np.testing.assert_allclose(g_iw, g_a, rtol=1e-10, atol=1e-12)


def test_iw_objective_rises_toward_the_exact_log_likelihood_with_k(linear_gaussian):
    w, b, x = linear_gaussian
    m, v = exact_posterior(w, b, x)
    truth = exact_log_px(w, b, x)
    n = 400  # independent estimates per k
    xs, mean, log_var = replicated(w, b, x, m + 0.5, v * 2.0, n)
    q = diagonal_normal(tf.constant(mean), tf.constant(log_var))
    gaps, ses = {}, {}
    for k in (1, 5, 50, 500):
        bound = objectives.iwae(xs, q, prior(), decoder_fn(w, b), draw_z(q, k, seed=k))
        per_copy = np.mean((truth - bound.elbo.numpy().reshape(n, len(x))), axis=1)
        gaps[k], ses[k] = per_copy.mean(), per_copy.std() / np.sqrt(n)
        np.testing.assert_allclose(bound.reconstruction - bound.kl, bound.elbo, rtol=1e-12)
    assert gaps[1] > gaps[5] > gaps[50] > gaps[500] > -3 * ses[500], gaps
    assert gaps[500] < 0.1 * gaps[1], gaps


def test_dreg_encoder_gradient_has_the_iw_expectation_and_less_variance_at_large_k(linear_gaussian):
    """Per-copy gradients of q's parameters over 4,000 independent draws of k = 64 samples: the same
    mean within standard errors, and a smaller variance for DReG (Tucker et al., 2019)."""
    w, b, x = linear_gaussian
    m, v = exact_posterior(w, b, x)
    n, k = 4000, 64
    xs, mean, log_var = replicated(w, b, x, m + 0.5, v * 2.0, n, trainable=True)
    eps = tf.random.stateless_normal([k, n * len(x), Z], seed=[7, 0], dtype=tf.float64)

    def encoder_gradients(dreg: bool):
        with tf.GradientTape() as tape:
            q = diagonal_normal(mean, log_var)
            z = objectives.reparameterize(q, eps)
            bound, parts = objectives.iwae_dreg(xs, q, prior(), decoder_fn(w, b), z, doubly_reparameterized=dreg)
            target = tf.reduce_sum(parts[1] if dreg else bound.elbo)
        grads = tape.gradient(target, [mean, log_var])
        return np.concatenate([g.numpy().reshape(n, -1) for g in grads], axis=1)  # (n, 2 * batch * Z)

    iw, dreg = encoder_gradients(False), encoder_gradients(True)
    se = np.sqrt(iw.var(axis=0) / n + dreg.var(axis=0) / n)
    assert np.all(np.abs(iw.mean(axis=0) - dreg.mean(axis=0)) < 4.5 * se + 1e-12)
    assert np.mean(dreg.var(axis=0)) < 0.5 * np.mean(iw.var(axis=0))
