"""Estimates of the marginal likelihood log p(x) of a trained latent-variable model, in nats.

They work on any model with the layers of `VAE`: `encoder(x)` -> q(z|x), `decoder(z)` -> p(x|z),
`prior()` -> p(z), and `latent_dim` (the VAE and the paper's baselines, `WakeSleep` and `MCEM`).
The maths are in `objectives`; this module batches the data, seeds every chain and sample, and
compiles the loops.

- `importance_weighted`: q(z|x) as the proposal (section 5 of the paper). A lower bound in
  expectation: only as good as the encoder.
- `app_d`: the paper's App. D estimator, from HMC samples of the true posterior; meant for small
  latent spaces, independent of the encoder.
- `ais`: annealed importance sampling from the prior to the posterior (Neal, 2001), the reference
  estimator for decoder-based models (Wu et al., 2017); independent of the encoder, a stochastic
  lower bound.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.core.validation import check_positive_int, check_seed
from vae_zoo.estimators import mcmc, objectives
from vae_zoo.estimators.objectives import RNG

# Rows (samples x datapoints) pushed through the decoder at once by the
# importance-weighted estimate; bounds its memory to a few hundred MB.
IW_ROWS_PER_CHUNK = 50_000
# Chain starts of App. D (`chain_starts`): candidates are the encoder's mean and this many prior draws;
# with several chains, every candidate climbs log p(x, z) this many steps toward a mode.
HMC_START_DRAWS, MODE_SEARCH_STEPS = 100, 50
# App. D's chains per datapoint (`chain_starts`), and how far from the first chain's estimate the others'
# (or the pooled estimate) may lie before the datapoint is flagged and the pooled estimate replaces it.
APP_D_CHAINS, DISAGREEMENT_NATS = 4, 0.5


class _Layers:
    """The encoder, decoder and prior a compiled estimate runs on: one per architecture, holding a
    copy of the weights of the model being measured. The compiled loops (HMC, AIS) are traced and
    XLA-compiled per Python object they are given; measuring every model of one architecture
    through the same object compiles them once (a figure measures hundreds of checkpoints)."""

    def __init__(self, model):
        twin = type(model).from_config(model.get_config())
        twin(keras.ops.zeros([1, model.input_dim], model.compute_dtype))  # builds its layers
        self.encoder, self.decoder = twin.encoder, twin.decoder
        self.prior, self.latent_dim = twin.prior, twin.latent_dim

    def holding(self, model) -> _Layers:
        for mine, theirs in zip([*self.encoder.weights, *self.decoder.weights],
                                [*model.encoder.weights, *model.decoder.weights], strict=True):
            mine.assign(theirs)
        return self


_LAYERS: dict[str, _Layers] = {}


def _architecture(model) -> str:
    """What determines the compiled graph: the layers' classes and configs (initializers, seeds and
    whether they train aside: MCEM's frozen encoder computes what AEVB's does), the data and latent
    sizes and the dtype."""
    def strip(config):
        if isinstance(config, dict):
            return {k: strip(v) for k, v in config.items()
                    if "initializer" not in k and k not in ("seed", "trainable")}
        return [strip(v) for v in config] if isinstance(config, list) else config

    layers = [[type(layer).__name__, strip(layer.get_config())] for layer in (model.encoder, model.decoder)]
    return json.dumps([layers, model.input_dim, model.latent_dim, model.compute_dtype], default=str)


def _compiled_layers(model) -> _Layers:
    """The shared `_Layers` of the model's architecture, holding the model's weights."""
    key = _architecture(model)
    if key not in _LAYERS:
        _LAYERS[key] = _Layers(model)
    return _LAYERS[key].holding(model)


def shard_rows(n: int, batch_size: int, shard: tuple[int, int]) -> np.ndarray:
    """The rows of n that worker shard[0] of shard[1] evaluates, batch_size rows at a time."""
    rows = np.arange(n)
    return rows[(rows // batch_size) % shard[1] == shard[0]]


def importance_weighted(model, x: np.ndarray, num_samples: int = 5000, seed: int = 0, batch_size: int = 100,
                        verbose: bool = False, shard: tuple[int, int] = (0, 1),
                        return_standard_error: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Importance-weighted estimate of log p(x) with q(z|x) as proposal.

        log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x)

    Computed in chunks of samples so that k = 5000 fits in memory.

    Args:
        model: a model with `encoder`, `decoder`, `prior` (e.g. a `VAE`).
        x: checked data, shape (n, input_dim).
        num_samples: k, importance samples per datapoint.
        seed: seed of the samples (same seed, same estimate).
        batch_size: datapoints per step.
        verbose: show a progress bar.
        shard: (i, count): compute only the batches i, i + count, ... (worker i's share; each
            row's estimate is the one a single process gets).
        return_standard_error: also return each row's Monte Carlo standard error, by the delta
            method: sqrt((mean(w^2) / mean(w)^2 - 1) / k).

    Returns:
        float32 array of shape (n,) (with `shard`: the rows of its batches, in order); with
        `return_standard_error`, the pair (estimates, standard errors).
    """
    num_samples = check_positive_int("num_samples", num_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed("seed", seed, allow_none=False)
    out, squares = [], []
    progress = keras.utils.Progbar(len(shard_rows(len(x), batch_size, shard)), unit_name="datapoint",
                                   stateful_metrics=["mean"]) if verbose else None
    index, count = shard
    for start in range(index * batch_size, len(x), count * batch_size):
        xb = tf.constant(x[start:start + batch_size])
        chunk = max(1, min(num_samples, IW_ROWS_PER_CHUNK // len(xb)))
        parts, second = [], []
        for i, first in enumerate(range(0, num_samples, chunk)):
            k = min(chunk, num_samples - first)
            mean, mean_square = _iw_chunk(model, xb, tf.constant([seed, start, i], tf.int64), k)
            parts.append((mean, k))
            second.append((mean_square, k))
        out.append(objectives.combine_logmeanexp(parts).numpy())
        squares.append(objectives.combine_logmeanexp(second).numpy())
        if progress is not None:
            progress.add(len(xb), [("mean", float(np.mean(np.concatenate(out))))])
    estimates = np.concatenate(out) if out else np.zeros(0, np.float32)
    if not return_standard_error:
        return estimates
    log_mean_square = np.concatenate(squares) if squares else np.zeros(0, np.float32)
    relative_variance = np.expm1(np.minimum(log_mean_square.astype(np.float64) - 2 * estimates, 700))
    return estimates, np.sqrt(np.maximum(relative_variance, 0) / num_samples).astype(np.float32)


@tf.function(reduce_retracing=True)
def _iw_chunk(model, x, seed, k):
    """log mean(w) and log mean(w^2) over k importance samples of each row."""
    posterior = model.encoder(x)
    eps = tf.random.stateless_normal(
        [k, tf.shape(x)[0], model.latent_dim], seed=tf.random.experimental.stateless_fold_in(seed[:2], seed[2]),
        dtype=x.dtype, alg=RNG,
    )
    z = objectives.reparameterize(posterior, eps)
    log_w = objectives.log_weights(x, posterior, model.prior(), model.decoder, z)
    return objectives.importance_weighted_bound(log_w), objectives.importance_weighted_bound(2 * log_w)


def app_d(model, x: np.ndarray, num_samples: int = 500, num_burnin: int = 300, num_leapfrog_steps: int = 10,
          seed: int = 0, batch_size: int = 100, num_chains: int = APP_D_CHAINS) -> mcmc.AppD:
    """The marginal-likelihood estimate of the paper's App. D (`mcmc.marginal_likelihood_app_d`).

    HMC samples of the true posterior p(z|x), a Gaussian fitted to them, and a harmonic-mean-type
    estimate on new samples. The chains start from the encoder's mean and HMC_START_DRAWS draws from
    the prior (`chain_starts`), so the estimate does not hinge on the encoder (models whose q(z|x) is
    poor or untrained, wake-sleep and MCEM, are measured as well as AEVB's; started at an untrained
    encoder's mean, MCEM's chains stayed in a poor mode: 30 nats lower on the training images of
    Figure 3's N = 1,000 model). One chain (`num_chains=1`, the paper's estimator) starts at the
    most probable of them and can stay in a minor mode: 8.3 nats low on one of ten mnist-z2 test
    images, about 18 on one of the 20 lowest-scoring training images of a final Figure 3 model, with
    nothing in its samples to show it. With several, the chains start at distinct modes found by
    climbing log p(x, z) from every candidate (`mcmc.mode_search`), the first at the highest; a
    datapoint where another chain's estimate lies more than DISAGREEMENT_NATS above the first
    chain's, or the estimate pooled from every chain's samples lies that far from it on either side,
    is flagged (`flagged`), and its estimate is the pooled one (importance sampling from the mixture
    of the chains' fitted Gaussians, `mcmc.marginal_likelihood_app_d`).

    Args:
        model: a model with `encoder`, `decoder`, `prior` (e.g. a `VAE`).
        x: checked data, shape (n, input_dim).
        num_samples: L, posterior samples per chain for each of the two steps.
        num_burnin: HMC steps discarded first (the step size adapts during them).
        num_leapfrog_steps: leapfrog steps per HMC proposal.
        seed: seed of the chains (same seed, same estimate).
        batch_size: datapoints run together.
        num_chains: chains per datapoint (1: the paper's single chain, no diagnostic).

    Returns:
        An `mcmc.AppD` of float32 arrays of shape (n,): the estimates, each datapoint's HMC
        acceptance rate (its first chain's), its chains' disagreement in nats and the first
        chain's own estimate.
    """
    settings = [check_positive_int(name, value) for name, value in (
        ("num_samples", num_samples), ("num_burnin", num_burnin), ("num_leapfrog_steps", num_leapfrog_steps),
        ("num_chains", num_chains))]
    layers = _compiled_layers(model)
    return mcmc.AppD(*_by_batch(lambda xb, batch_seed: _app_d_chunk(layers, xb, tf.cast(batch_seed, tf.int32),
                                                                     *settings), x, seed, batch_size))


def flagged(estimate: mcmc.AppD | mcmc.AIS, threshold: float | None = None) -> np.ndarray:
    """Indices of the datapoints whose App. D or AIS chains disagree by more than `threshold` nats
    (default DISAGREEMENT_NATS): their estimate may have missed a mode of the posterior (App. D)
    or rests on one chain (AIS)."""
    threshold = DISAGREEMENT_NATS if threshold is None else threshold
    return np.flatnonzero(~(np.asarray(estimate.disagreement) <= threshold))


def _by_batch(estimate, x: np.ndarray, seed: int, batch_size: int, first_row: int = 0) -> tuple[np.ndarray, ...]:
    """Runs `estimate(x_batch, seed_of_batch)` -> a tuple of (batch,) tensors over the batches of x; the
    batch starting at row r of the data (x's first row being row `first_row`) is seeded (seed, r), so a
    row's estimate does not depend on the others', and a slice of the data starting at a batch's first
    row is estimated as in the whole."""
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed("seed", seed, allow_none=False)
    first_row = check_seed("first_row", first_row, allow_none=False)  # a row: an int from 0 to MAX_SEED
    parts = []
    for start in range(0, len(x), batch_size):
        parts.append(estimate(tf.constant(x[start:start + batch_size]),
                              tf.constant([seed, first_row + start], tf.int64)))
    return tuple(np.concatenate([part[i].numpy() for part in parts]).astype(np.float32)
                 for i in range(len(parts[0])))


def _log_joint(model, x):
    """z of shape (..., batch, Z) -> log p(x, z) = log p(x|z) + log p(z), shape (..., batch)."""
    def log_joint(z):
        return model.decoder(z).log_prob(x) + model.prior().log_prob(z)

    return log_joint


def chain_starts(model, x, seed, num_chains: int = 1) -> tf.Tensor:
    """Chain starts per datapoint, from the encoder's mean and HMC_START_DRAWS prior draws. One
    chain starts at the most probable (by log p(x, z)) of them, as the paper's estimator did. Several
    start at distinct modes (`mcmc.mode_search`, the first at the highest) reached by climbing
    log p(x, z) from every one of them: a posterior's main mode can lie where no draw is probable
    (in the prior's tail, 3.6 standard deviations out on one training image of a final Figure 3
    model), reached only from draws that start low.

    Args:
        model: a model with `encoder`, `decoder`, `prior`.
        x: data, shape (batch, input_dim).
        seed: stateless seed, shape (2,).
        num_chains: starts per datapoint.

    Returns:
        z of shape (num_chains, batch, latent_dim).
    """
    log_joint = _log_joint(model, x)
    draws = tf.random.stateless_normal([HMC_START_DRAWS, tf.shape(x)[0], model.latent_dim],
                                       seed=tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1),
                                       dtype=x.dtype, alg=RNG)
    candidates = tf.concat([model.encoder(x).mean()[None], draws], axis=0)  # (K, batch, Z)
    if num_chains > 1:
        return mcmc.mode_search(log_joint, candidates, num_chains, MODE_SEARCH_STEPS)
    best = tf.argmax(log_joint(candidates), axis=0)
    return tf.gather(tf.transpose(candidates, [1, 0, 2]), best, batch_dims=1)[None]


# Traced per batch shape (the full batches and the last): with a relaxed batch dimension, TFP's step-size
# adaptation changes the loop state's shape and the trace fails.
@tf.function(jit_compile=True)
def _app_d_chunk(model, x, seed, num_samples, num_burnin, num_leapfrog_steps, num_chains):
    return mcmc.marginal_likelihood_app_d(_log_joint(model, x), chain_starts(model, x, seed, num_chains), num_samples,
                                          num_burnin, num_leapfrog_steps, threshold=DISAGREEMENT_NATS, seed=seed)


def ais(model, x: np.ndarray, num_chains: int = 16, num_steps: int = 1000, num_leapfrog_steps: int = 10,
        seed: int = 0, batch_size: int = 100, first_row: int = 0) -> mcmc.AIS:
    """Annealed importance sampling estimate of log p(x) (`mcmc.annealed_importance_sampling`).

    For each datapoint, `num_chains` chains start from the prior and anneal to the posterior
    through `num_steps` intermediate distributions, with HMC transitions whose step sizes come
    from a pilot run (adapted toward 0.65 acceptance) and are then fixed, so the importance
    weights are exact: log of their mean is a stochastic lower bound of log p(x) that tightens
    as `num_steps` grows. Independent of the encoder. Each datapoint also records how much its
    estimate rests on one chain (`mcmc.leave_best_out`); `flagged` lists those above
    DISAGREEMENT_NATS.

    Args:
        model: a model with `decoder`, `prior`, `latent_dim` (e.g. a `VAE`).
        x: checked data, shape (n, input_dim).
        num_chains: K, chains per datapoint.
        num_steps: T, intermediate distributions.
        num_leapfrog_steps: leapfrog steps per HMC transition.
        seed: seed of the chains (same seed, same estimate).
        batch_size: datapoints run together.
        first_row: the row of the data that x starts at (a batch is seeded by its first row, so the
            estimates of a slice starting at a batch's first row equal those of the whole).

    Returns:
        An `mcmc.AIS` of float32 arrays of shape (n,): the estimates, each datapoint's mean HMC
        acceptance, and its chains' disagreement in nats.
    """
    settings = [check_positive_int(name, value) for name, value in (
        ("num_chains", num_chains), ("num_steps", num_steps), ("num_leapfrog_steps", num_leapfrog_steps))]
    layers = _compiled_layers(model)
    return mcmc.AIS(*_by_batch(lambda xb, batch_seed: _ais_chunk(layers, xb, batch_seed, *settings), x, seed,
                               batch_size, first_row))


@tf.function(jit_compile=True, reduce_retracing=True)
def _ais_chunk(model, x, seed, num_chains, num_steps, num_leapfrog_steps):
    seeds = tf.random.experimental.stateless_split(seed, 4)

    def log_likelihood(z):
        return model.decoder(z).log_prob(x)

    def prior_draws(s):
        return tf.random.stateless_normal([num_chains, tf.shape(x)[0], model.latent_dim], seed=s, dtype=x.dtype,
                                          alg=RNG)

    log_prior = model.prior().log_prob
    _, schedule, _ = mcmc.annealed_importance_sampling(
        log_prior, log_likelihood, prior_draws(seeds[0]), num_steps, num_leapfrog_steps, seed=seeds[1])
    log_w, _, acceptance = mcmc.annealed_importance_sampling(
        log_prior, log_likelihood, prior_draws(seeds[2]), num_steps, num_leapfrog_steps, step_sizes=schedule,
        seed=seeds[3])
    return objectives.importance_weighted_bound(log_w), acceptance, mcmc.leave_best_out(log_w)
