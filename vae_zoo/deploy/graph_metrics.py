"""What an exported graph costs, measured through the graphs themselves (not Keras):
lower bound and log-likelihood of an encoder + decoder pair, differences between two graphs,
and latency in the graph's runtime.

The bounds are those of `objectives` (eq. 7 and the importance-weighted estimate), applied to
distributions built from the graphs' outputs: q(z|x) = N(z_mean, exp(z_log_var)); p(x|z) =
Bernoulli with the logits of the decoder's `x_mean` (probabilities clipped to
[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR], as a float32 sigmoid cannot say more), or
N(x_mean, exp(x_log_var)). The noise is numpy default_rng([seed, first row]), so two pairs
measured with one seed see the same eps: their difference is paired.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from vae_zoo.estimators import objectives
from vae_zoo.layers.distributions import BernoulliLikelihood, GaussianLikelihood, diagonal_normal

PROBABILITY_FLOOR = 1e-7
ROWS_PER_CALL = 10_000  # decoder rows per runtime call of the log-likelihood estimate


def _posterior(encoder, x: np.ndarray):
    out = encoder({"x": x})
    return diagonal_normal(tf.constant(out["z_mean"]), tf.constant(out["z_log_var"]))


def _decode(decoder, likelihood: str):
    def decode(z):  # z: (L, batch, latent) -> p(x|z) with batch shape (L, batch)
        shape = z.shape
        out = decoder({"z": np.asarray(z, np.float32).reshape(-1, shape[-1])})
        x_mean = out["x_mean"].reshape(*shape[:-1], -1)
        if likelihood == "bernoulli":
            p = np.clip(x_mean.astype(np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
            return BernoulliLikelihood.distribution(tf.constant(np.log(p) - np.log1p(-p), tf.float32))
        return GaussianLikelihood.distribution(tf.constant(x_mean), tf.constant(out["x_log_var"].reshape(x_mean.shape)))

    return decode


def _eps(seed: int, start: int, shape) -> tf.Tensor:
    return tf.constant(np.random.default_rng([seed, start]).standard_normal(shape, dtype=np.float32))


def elbo_b(encoder, decoder, likelihood: str, x: np.ndarray, seed: int, batch: int = 1000) -> np.ndarray:
    """Estimator B (L = 1) of each row of `x` through the graphs, in nats; shape (n,)."""
    out = []
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        posterior = _posterior(encoder, xb)
        z = objectives.reparameterize(posterior, _eps(seed, start, (1, len(xb), posterior.event_shape[0])))
        out.append(objectives.sgvb_b(tf.constant(xb), posterior, None, _decode(decoder, likelihood), z).elbo.numpy())
    return np.concatenate(out)


def log_likelihood(encoder, decoder, likelihood: str, x: np.ndarray, k: int, seed: int,
                   rows_done: Callable[[int], None] | None = None) -> np.ndarray:
    """Importance-weighted log p(x) with k samples of q(z|x) through the graphs, in nats; shape (n,).
    `rows_done(n)` is called after each batch with the rows measured so far."""
    out = []
    batch = max(1, ROWS_PER_CALL // k)
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        posterior = _posterior(encoder, xb)
        prior = diagonal_normal(tf.zeros_like(posterior.mean()), tf.zeros_like(posterior.mean()))
        z = objectives.reparameterize(posterior, _eps(seed, start, (k, len(xb), posterior.event_shape[0])))
        log_w = objectives.log_weights(tf.constant(xb), posterior, prior, _decode(decoder, likelihood), z)
        out.append(objectives.importance_weighted_bound(log_w).numpy())
        if rows_done is not None:
            rows_done(start + len(xb))
    return np.concatenate(out)


def differences(graph, reference, inputs: dict[str, np.ndarray]) -> dict:
    """Max and mean abs difference of every output of `graph` from `reference` on `inputs`."""
    got, expected = graph(inputs), reference(inputs)
    diffs = np.concatenate([np.abs(got[k].astype(np.float64) - expected[k]).ravel() for k in sorted(expected)])
    return {"max_abs": float(np.max(diffs)), "mean_abs": float(np.mean(diffs))}


def speed(graph, inputs_of, runs: int = 300, throughput_runs: int = 30) -> dict:
    """Batch-1 latency percentiles and batch-256 throughput of `graph` (after warm-up runs).

    Args:
        graph: a graph from `runtimes.open_graph`.
        inputs_of: batch size -> inputs.
    """
    one, many = inputs_of(1), inputs_of(256)
    for _ in range(20):
        graph(one)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        graph(one)
        times.append(time.perf_counter() - start)
    for _ in range(3):
        graph(many)
    start = time.perf_counter()
    for _ in range(throughput_runs):
        graph(many)
    seconds = time.perf_counter() - start
    return {"batch1_p50_ms": round(float(np.percentile(times, 50)) * 1e3, 4),
            "batch1_p99_ms": round(float(np.percentile(times, 99)) * 1e3, 4),
            "batch256_per_s": round(256 * throughput_runs / seconds)}
