"""The estimators of log p(x) that sample the posterior: App. D's HMC estimator (the paper's
marginal likelihood for Figure 3) and annealed importance sampling (AIS), an independent reference.
Pure functions of log-densities; results per datapoint, in nats."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.mcmc.dual_averaging_step_size_adaptation import hmc_like_step_size_setter_fn

from vae_zoo.estimators.objectives import RNG

tfd = tfp.distributions

# -- App. D: the marginal-likelihood estimator with HMC posterior samples -------------------

LogJoint = Callable[[tf.Tensor], tf.Tensor]


def hmc_posterior_samples(
    log_joint: LogJoint,
    initial_z: tf.Tensor,
    num_samples: int,
    num_burnin: int,
    num_leapfrog_steps: int = 10,
    target_accept: float = 0.9,
    seed=(0, 0),
) -> tuple[tf.Tensor, tf.Tensor]:
    """Samples of p(z|x) by Hybrid (Hamiltonian) Monte Carlo, one chain per datapoint.

    The target is log p(z) + log p(x|z) (its gradient is grad_z log p(z) + grad_z log p(x|z),
    App. D step 1). Each chain has its own leapfrog step size, adapted during the burn-in by dual
    averaging (Hoffman & Gelman, 2014; tfp.mcmc.DualAveragingStepSizeAdaptation, exploration
    shrinkage 0.2) toward `target_accept`; the kept samples use the averaged step, jittered by a
    uniform factor in [0.8, 1.2] at each transition. Why each choice:

    - one step size shared by all chains, adapted to their mean acceptance, left the chains whose
      posterior is narrower than the others' with almost no accepted move (3 distinct states in
      100 on an MCEM model of Figure 3), and App. D's Gaussian fitted to such a chain is
      degenerate: +37.76 nats and NaN;
    - TFP's default shrinkage 0.05 overshot the target (acceptance 0.97 for 0.9 after 100
      burn-in steps on Figure 3's models; 0.90 and 0.87 with 0.2);
    - without the jitter, a trajectory as long as the period of a Gaussian posterior returns to
      its start: accepted, but the chain does not move (a 2-D posterior N(0, I), 5 leapfrog
      steps of 1.17: 99 % acceptance, sample std 0.1).

    Args:
        log_joint: z of shape (batch, Z) -> log p(x, z), shape (batch,).
        initial_z: chain starts, shape (batch, Z) (e.g. the encoder's means).
        num_samples: L, samples kept per chain.
        num_burnin: steps discarded first, all of them adapting the step sizes.
        num_leapfrog_steps: leapfrog steps per HMC proposal.
        target_accept: acceptance rate the step sizes adapt to.
        seed: stateless seed, shape (2,).

    Returns:
        Samples (L, batch, Z) and each chain's acceptance rate over the kept steps (batch,).
    """
    dtype = initial_z.dtype
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    hmc = tfp.mcmc.HamiltonianMonteCarlo(log_joint, step_size=tf.fill([tf.shape(initial_z)[0], 1],
                                                                      tf.constant(0.1, dtype)),
                                         num_leapfrog_steps=num_leapfrog_steps, store_parameters_in_results=True)
    adaptive = tfp.mcmc.DualAveragingStepSizeAdaptation(hmc, num_adaptation_steps=num_burnin,
                                                        target_accept_prob=tf.constant(target_accept, dtype),
                                                        exploration_shrinkage=0.2)

    def run():
        burnin = tfp.mcmc.sample_chain(num_burnin, initial_z, kernel=adaptive, trace_fn=None,
                                       return_final_kernel_results=True, seed=tfp_seed(seeds[0]))
        step_size = tf.exp(tf.nest.flatten(burnin.final_kernel_results.log_averaging_step)[0])  # (batch, 1)
        jitters = tf.random.stateless_uniform([num_samples, tf.shape(initial_z)[0], 1], seeds[1], 0.8, 1.2,
                                              dtype=dtype, alg=RNG)
        step_seeds = tf.random.experimental.stateless_split(seeds[2], num_samples)

        def transition(carry, inputs):
            z, results = carry
            jitter, step_seed = inputs
            z, results = hmc.one_step(z, hmc_like_step_size_setter_fn(results, step_size * jitter),
                                      seed=tfp_seed(step_seed))
            return (z, results), (z, tf.cast(results.is_accepted, dtype))

        start = burnin.all_states[-1]
        _, (samples, accepted) = _scan(transition, (start, hmc.bootstrap_results(start)), (jitters, step_seeds),
                                       (dtype, dtype))
        return samples, tf.reduce_mean(accepted, axis=0)

    # Called eagerly, compile the loop once (eager HMC runs an op at a time); inside a
    # caller's compiled function it is compiled with it.
    return tf.function(run, jit_compile=True)() if tf.executing_eagerly() else run()


def mode_search(log_joint: LogJoint, candidates: tf.Tensor, num_modes: int, num_steps: int = 100,
                learning_rate: float = 0.1, separation: float = 0.05) -> tf.Tensor:
    """Starts for `num_modes` chains per datapoint, at distinct modes of p(z|x).

    Each candidate climbs log p(x, z) by `num_steps` steps of Adam (step size `learning_rate`,
    decayed to 0 on a cosine; a climb that ends lower than it began keeps its start); of the points
    reached, the highest is the first start and each
    further start is the highest that lies more than `separation` (on some latent axis) from
    every start chosen before it. A datapoint with fewer distinct modes than chains starts the
    rest at its highest. A chain started at the posterior's highest mode does not depend on
    having drawn a start near it: on the 20 lowest-scoring training images of a final Figure 3
    model (784-100-3), the best of 100 prior draws lay 18 nats below the highest mode's
    log p(x, z) on one image, and four chains started from such draws all stayed in minor modes.

    Args:
        log_joint: z of shape (K, batch, Z) -> log p(x, z), shape (K, batch).
        candidates: where the climbs start, shape (K, batch, Z).
        num_modes: starts per datapoint.
        num_steps: Adam steps of each climb.
        learning_rate: Adam's initial step size.
        separation: distance (largest over the latent axes) within which two points reached are one mode.

    Returns:
        z of shape (num_modes, batch, Z).
    """
    dtype = candidates.dtype
    beta1, beta2, steps = 0.9, 0.999, tf.cast(num_steps, dtype)

    def climb(i, z, m, v):
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = log_joint(z)
        grad = tape.gradient(value, z)
        grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))  # a point where the density fails stays
        m, v = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
        t = tf.cast(i + 1, dtype)
        rate = learning_rate * 0.5 * (1 + tf.cos(tf.constant(3.141592653589793, dtype) * tf.cast(i, dtype) / steps))
        return i + 1, z + rate * (m / (1 - beta1**t)) / (tf.sqrt(v / (1 - beta2**t)) + 1e-8), m, v

    zeros = tf.zeros_like(candidates)
    _, z, _, _ = tf.while_loop(lambda i, *_: i < num_steps, climb, (0, candidates, zeros, zeros))
    value, start_value = log_joint(z), log_joint(candidates)
    # A climb that ended lower than it began (an overshoot) keeps its start: no start is worse than its candidate.
    better = tf.math.is_finite(value) & ~(value < start_value)
    z, value = tf.where(better[..., None], z, candidates), tf.where(better, value, start_value)
    available = tf.math.is_finite(value)  # (K, batch)
    by_datapoint = tf.transpose(z, [1, 0, 2])  # (batch, K, Z)
    starts = []
    for _ in range(num_modes):
        best = tf.argmax(tf.where(available, value, tf.constant(float("-inf"), dtype)), axis=0)
        start = tf.gather(by_datapoint, best, batch_dims=1)  # (batch, Z)
        if starts:
            start = tf.where(tf.reduce_any(available, axis=0)[:, None], start, starts[0])
        starts.append(start)
        available &= tf.reduce_max(tf.abs(z - start), axis=-1) > separation
    return tf.stack(starts)


def tfp_seed(seed: tf.Tensor) -> tf.Tensor:
    """A TFP stateless seed (int32, shape (2,)) from a TensorFlow one (int64)."""
    return tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), 2**31 - 1), tf.int32)


class AppD(NamedTuple):
    """App. D's estimate of each datapoint, with its diagnostics (each of shape (batch,))."""

    log_likelihood: tf.Tensor  # log p(x), in nats: the first chain's, or the pooled chains' where they disagree
    acceptance: tf.Tensor  # the first chain's HMC acceptance rate
    disagreement: tf.Tensor  # nats between the first chain's estimate and the other chains' (0: one chain)
    first_chain: tf.Tensor  # the first chain's estimate alone (with one chain: the paper's estimator)


class AIS(NamedTuple):
    """AIS's estimate of each datapoint, with its diagnostics (each of shape (batch,))."""

    log_likelihood: tf.Tensor  # log p(x), in nats: the log of the chains' mean importance weight
    acceptance: tf.Tensor  # the HMC acceptance rate, averaged over the chains' transitions
    disagreement: tf.Tensor  # nats the estimate loses without its best chain (`leave_best_out`; 0: one chain)


def leave_best_out(log_w: tf.Tensor) -> tf.Tensor:
    """How far the estimate log mean_k w_k falls, in nats, when the largest of the K chains'
    importance weights is left out: near 0 when the chains agree, large when one chain reached
    posterior mass the others missed, so that the estimate rests on that chain alone (with 16
    chains, 0.5 nats means the best chain holds 43 % of the total weight). It cannot see a bias
    that every chain shares, such as too few annealing steps.

    Args:
        log_w: log importance weights, shape (K, batch).

    Returns:
        shape (batch,), >= 0; zeros when K = 1.
    """
    chains = log_w.shape[0]
    if chains == 1:
        return tf.zeros_like(log_w[0])
    best = tf.one_hot(tf.argmax(log_w, axis=0), chains, on_value=True, off_value=False, axis=0)
    rest = tf.where(best, tf.constant(float("-inf"), log_w.dtype), log_w)
    return (tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(tf.cast(chains, log_w.dtype))
            - tf.reduce_logsumexp(rest, axis=0) + tf.math.log(tf.cast(chains - 1, log_w.dtype)))


def marginal_likelihood_app_d(
    log_joint: LogJoint,
    initial_z: tf.Tensor,
    num_samples: int = 500,
    num_burnin: int = 300,
    num_leapfrog_steps: int = 10,
    shrink: float = 0.8,
    threshold: float = 0.5,
    seed=(0, 0),
) -> AppD:
    """The marginal-likelihood estimator of App. D, per datapoint, in nats.

    1. L samples {z_l} of the posterior p(z|x) by HMC (`hmc_posterior_samples`);
    2. a density q(z) fitted to them: a full-covariance Gaussian with the samples' mean and
       covariance, its standard deviations scaled by `shrink` (< 1) so that its tails are lighter
       than the posterior's, which keeps the estimator's variance finite;
    3. L new posterior samples (the next L steps of the same chain), and

        p(x) ~= ( 1/L sum_l q(z_l) / (p(z_l) p(x|z_l)) )^-1,

    unbiased for 1/p(x) because E_{p(z|x)}[q(z) / p(x, z)] = 1/p(x) for any normalized q.

    A chain that has not left one mode of a multi-modal posterior estimates about
    p(x) * P(that mode): too low, with nothing in its own samples to show it. Given C > 1 starts
    per datapoint, the first chain gives the estimate (as it would alone from its start, up to rounding)
    and the other C - 1 run the same three steps from their own starts (their own random numbers). All C chains'
    samples together give a second estimate: importance sampling from the equal mixture of
    the C chains' fitted Gaussians, widened by 1 / `shrink` (`_pooled_estimate`), which covers
    every mode any chain found whatever share of the chains found it. `disagreement` is the
    larger of how far the other chains' own estimates lie above the first chain's and how far the
    pooled estimate lies from it (above: mass the first chain missed; below: a first chain that
    overestimates). Where it exceeds `threshold`, the estimate is the pooled one (unbiased for
    p(x), so a stochastic lower bound of log p(x)); the first chain's stays in `first_chain`.

    Args:
        log_joint: z of shape (..., batch, Z) -> log p(x, z), shape (..., batch).
        initial_z: chain starts, shape (C, batch, Z), or (batch, Z) for one chain per datapoint.
        num_samples: L for each of the two sets of samples, per chain.
        num_burnin: HMC steps discarded before the first set.
        num_leapfrog_steps: leapfrog steps per HMC proposal.
        shrink: scale of the fitted Gaussian's standard deviations.
        threshold: disagreement, in nats, above which the pooled estimate replaces the first chain's.
        seed: stateless seed, shape (2,).

    Returns:
        An `AppD` of shape (batch,) tensors.
    """
    starts = initial_z if initial_z.shape.rank == 3 else initial_z[None]

    def estimate(z0, chain_seed):  # z0 (chains, batch, Z) -> estimates (chains, batch), samples, acceptance
        chains, batch, dim = tf.shape(z0)[0], tf.shape(z0)[1], z0.shape[-1]  # Z static: the decoder's input

        def every_chain_log_joint(z):  # (..., chains * batch, Z) -> (..., chains * batch); static shapes kept
            values = log_joint(tf.reshape(z, tf.concat([tf.shape(z)[:-2], [chains, batch, dim]], 0)))
            return tf.reshape(values, tf.shape(z)[:-1])

        samples, acceptance = hmc_posterior_samples(every_chain_log_joint, tf.reshape(z0, [-1, dim]),
                                                    2 * num_samples, num_burnin, num_leapfrog_steps, seed=chain_seed)
        samples = tf.reshape(samples, [2 * num_samples, chains, batch, dim])
        # The chains go on: the second half is new samples.
        harmonic = _harmonic_mean_estimate(samples[:num_samples], samples[num_samples:], log_joint, shrink)
        return harmonic, samples, tf.reshape(acceptance, [chains, batch])

    first, first_samples, acceptance = estimate(starts[:1], seed)
    if starts.shape[0] == 1:
        return AppD(first[0], acceptance[0], tf.zeros_like(first[0]), first[0])
    seed = tf.cast(seed, tf.int64)
    others, other_samples, _ = estimate(starts[1:], tf.random.experimental.stateless_fold_in(seed, 1))
    pooled = _pooled_estimate(tf.concat([first_samples, other_samples], axis=1), log_joint, 1.0 / shrink,
                              tf.random.experimental.stateless_fold_in(seed, 2))
    disagreement = tf.maximum(tf.reduce_max(others, axis=0) - first[0], tf.abs(pooled - first[0]))
    disagreement = tf.where(tf.math.is_nan(disagreement), tf.constant(float("inf"), disagreement.dtype),
                            tf.maximum(disagreement, 0.0))
    replace = (disagreement > threshold) & tf.math.is_finite(pooled)
    return AppD(tf.where(replace, pooled, first[0]), acceptance[0], disagreement, first[0])


def _fitted_gaussian(samples: tf.Tensor, scale: float) -> tfd.Distribution:
    """Step 2 of App. D: a full-covariance Gaussian fitted to `samples` (L, ..., Z), its standard
    deviations multiplied by `scale`."""
    mean = tf.reduce_mean(samples, axis=0)
    centered = samples - mean
    cov = tf.einsum("l...i,l...j->...ij", centered, centered) / tf.cast(tf.shape(samples)[0] - 1, samples.dtype)
    jitter = 1e-6 * tf.eye(tf.shape(mean)[-1], dtype=samples.dtype)
    return tfd.MultivariateNormalTriL(mean, scale * tf.linalg.cholesky(cov + jitter))


def _harmonic_mean_estimate(first: tf.Tensor, second: tf.Tensor, log_joint: LogJoint, shrink: float) -> tf.Tensor:
    """Steps 2 and 3 of App. D: a Gaussian fitted to `first` (L, ..., Z), then log p(x) from `second`."""
    log_ratio = _fitted_gaussian(first, shrink).log_prob(second) - log_joint(second)  # (L, ...)
    return -(tf.reduce_logsumexp(log_ratio, axis=0) - tf.math.log(tf.cast(tf.shape(first)[0], first.dtype)))


def _pooled_estimate(samples: tf.Tensor, log_joint: LogJoint, widen: float, seed) -> tf.Tensor:
    """log p(x) by importance sampling from the equal mixture of Gaussians fitted to each chain's
    posterior `samples` (L, C, batch, Z), widened by `widen` (> 1): L draws from each component,
    weighted by the mixture's density (the balance heuristic, so unbiased for p(x) whatever share
    of the chains found a mode). A stochastic lower bound of log p(x)."""
    components = _fitted_gaussian(samples, widen)  # batch shape (C, batch)
    z = components.sample(tf.shape(samples)[0], seed=tfp_seed(seed))  # (L, C, batch, Z): L from each
    count = tf.cast(tf.shape(samples)[0] * tf.shape(samples)[1], samples.dtype)
    chains = tf.cast(tf.shape(samples)[1], samples.dtype)
    # log (1/C sum_c' q_c'(z)) of every draw: each component's density at every draw, (L, C, C', batch)
    log_mixture = tf.reduce_logsumexp(components.log_prob(z[:, :, None]), axis=2) - tf.math.log(chains)
    log_w = log_joint(z) - log_mixture
    return tf.reduce_logsumexp(log_w, axis=[0, 1]) - tf.math.log(count)


# -- Annealed importance sampling: an independent reference for log p(x) ---------------------


def sigmoid_schedule(num_steps: int, sharpness: float = 4.0) -> tf.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_T = 1, dense near both ends (Grosse et al., 2015).

        beta_t ∝ sigmoid(sharpness * (2 t / T - 1)), rescaled to start at 0 and end at 1.

    Returns:
        float64 tensor of shape (num_steps + 1,).
    """
    s = tf.sigmoid(sharpness * (2.0 * tf.range(num_steps + 1, dtype=tf.float64) / num_steps - 1.0))
    return (s - s[0]) / (s[-1] - s[0])


def annealed_importance_sampling(
    log_prior: LogJoint,
    log_likelihood: LogJoint,
    initial_z: tf.Tensor,
    num_steps: int,
    num_leapfrog_steps: int = 10,
    step_sizes: tf.Tensor | None = None,
    target_accept: float = 0.65,
    seed=(0, 0),
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Annealed importance sampling (Neal, 2001) from the prior to the posterior, per chain.

    The intermediate densities are f_t(z) = p(z) p(x|z)^beta_t (`sigmoid_schedule`), from the
    normalized prior (beta_0 = 0) to the unnormalized posterior p(x, z) (beta_T = 1). A chain
    starts at z_0 ~ p(z); at step t its log-weight gains

        log w += (beta_t - beta_{t-1}) * log p(x|z_{t-1}),

    and z_t is one HMC transition from z_{t-1} that leaves f_t invariant. For every chain
    E[w] = p(x), so log (1/K sum_k w_k) over K chains is a stochastic lower bound of log p(x)
    (Jensen), the reference estimator for decoder-based models (Wu et al., 2017).

    With `step_sizes` None, each chain's step size adapts toward `target_accept` as it goes
    (log step += 0.1 * (acceptance probability - target)): a pilot run whose weights are not
    exact, because a chain's step then depends on its own past. Its per-step (geometric) mean step sizes
    are returned, and a second run with them fixed (`step_sizes`) makes every transition a
    valid kernel of its f_t, so its weights are exact.

    Args:
        log_prior: z of shape (K, batch, Z) -> log p(z), shape (K, batch).
        log_likelihood: z -> log p(x|z), shape (K, batch).
        initial_z: draws of the prior, shape (K, batch, Z).
        num_steps: T, intermediate distributions.
        num_leapfrog_steps: leapfrog steps per HMC transition.
        step_sizes: None (adapt: the pilot run), or a step-size schedule of shape (T, batch).
        target_accept: acceptance rate the pilot adapts to.
        seed: stateless seed, shape (2,).

    Returns:
        log w of shape (K, batch); the step-size schedule (T, batch) (the given one, or the
        pilot's per-datapoint geometric mean over chains); the mean acceptance per datapoint (batch,).
    """
    dtype = initial_z.dtype
    betas = tf.cast(sigmoid_schedule(num_steps), dtype)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num_steps)
    adapt = step_sizes is None
    chains_shape = tf.shape(initial_z)[:-1]

    def step(carry, inputs):
        z, log_w, log_step, accepted = carry
        t, step_seed, fixed_step = inputs
        log_w = log_w + (betas[t] - betas[t - 1]) * log_likelihood(z)
        size = tf.exp(log_step) if adapt else tf.broadcast_to(fixed_step, chains_shape)

        def target(z_):
            return log_prior(z_) + betas[t] * log_likelihood(z_)

        kernel = tfp.mcmc.HamiltonianMonteCarlo(target, step_size=size[..., None],
                                                num_leapfrog_steps=num_leapfrog_steps)
        z, results = kernel.one_step(z, kernel.bootstrap_results(z), seed=tfp_seed(step_seed))
        accept_prob = tf.exp(tf.minimum(results.log_accept_ratio, 0.0))
        accept_prob = tf.where(tf.math.is_finite(accept_prob), accept_prob, tf.zeros_like(accept_prob))
        if adapt:
            log_step = log_step + 0.1 * (accept_prob - target_accept)
        return (z, log_w, log_step, accepted + accept_prob), tf.exp(tf.reduce_mean(tf.math.log(size), axis=0))

    def run():
        zeros = tf.zeros(chains_shape, dtype)
        schedule = (tf.zeros([num_steps, tf.shape(initial_z)[1]], dtype) if adapt else tf.cast(step_sizes, dtype))
        init = (initial_z, zeros, tf.math.log(tf.constant(0.1, dtype)) + zeros, zeros)
        (_, log_w, _, accepted), used = _scan(step, init, (tf.range(1, num_steps + 1), seeds, schedule), dtype)
        return log_w, used, tf.reduce_mean(accepted, axis=0) / num_steps

    # Compiled as `hmc_posterior_samples` is.
    return tf.function(run, jit_compile=True)() if tf.executing_eagerly() else run()


def _scan(fn, init, elems, dtypes):
    """A loop over the rows of `elems` carrying `init`, stacking fn's second output (lax.scan),
    whose structure of dtypes is `dtypes` (given, so that fn is traced once, in the loop)."""
    n = tf.shape(tf.nest.flatten(elems)[0])[0]
    outs = tf.nest.map_structure(lambda dtype: tf.TensorArray(dtype, size=n), dtypes)

    def body(i, carry, outs):
        carry, y = fn(carry, tf.nest.map_structure(lambda e: e[i], elems))
        return i + 1, carry, tf.nest.map_structure(lambda o, v: o.write(i, v), outs, y)

    _, carry, outs = tf.while_loop(lambda i, *_: i < n, body, (0, init, outs))
    return carry, tf.nest.map_structure(lambda o: o.stack(), outs)
