"""The SGVB estimators of the variational lower bound and the importance-weighted bound.

Kingma & Welling, *Auto-Encoding Variational Bayes* (arXiv 1312.6114). For a
datapoint x, encoder q(z|x), prior p(z) and decoder p(x|z), the lower bound is

    L(x) = E_q[log p(x, z) - log q(z|x)] = -KL(q(z|x) || p(z)) + E_q[log p(x|z)]   (eq. 3)

and both estimators below use L samples drawn by the reparameterization
z_l = mu + sigma * eps_l, eps_l ~ N(0, I)  (eq. 4 and section 2.4), so that their
gradients flow into the encoder. Everything here is a pure function of
distributions and samples; all results are per datapoint, in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

Decoder = Callable[[tf.Tensor], tfd.Distribution]

# The stateless random-number algorithm of all noise: Philox, the one TensorFlow's CPU kernels
# choose. Left to "auto_select", XLA picks ThreeFry, which on CPU is ~40x slower (15 ms for
# 100 x 784 uniforms). Even with Philox, XLA derives the generator's key and counter from a seed
# differently from the CPU kernels: a compiled (XLA) step and an uncompiled one (jit_compile=False,
# run_eagerly=True) draw other numbers from the same seed. Each is reproducible with itself.
RNG = "philox"


class Bound(NamedTuple):
    """A lower-bound estimate split into its two terms, each of shape (batch,).

    elbo = reconstruction - kl, where `reconstruction` estimates E_q[log p(x|z)]
    and `kl` is KL(q(z|x) || p(z)) (analytic or Monte Carlo, by estimator).
    """

    elbo: tf.Tensor
    reconstruction: tf.Tensor
    kl: tf.Tensor


def reparameterize(posterior: tfd.Distribution, eps: tf.Tensor) -> tf.Tensor:
    """z = mu + sigma * eps (section 2.4), differentiable in mu and sigma.

    Args:
        posterior: diagonal Gaussian q(z|x) with batch shape (batch,) and
            event shape (latent,).
        eps: standard normal noise, shape (L, batch, latent).

    Returns:
        z of shape (L, batch, latent).
    """
    return posterior.mean() + posterior.stddev() * eps


def kl_to_standard_normal(posterior: tfd.Distribution) -> tf.Tensor:
    """Analytic KL(q(z|x) || N(0, I)) for a diagonal Gaussian q (paper App. B).

        -KL = 1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)

    Returns:
        KL per datapoint, shape (batch,).
    """
    mean, var = posterior.mean(), posterior.variance()
    return 0.5 * tf.reduce_sum(tf.square(mean) + var - 1.0 - tf.math.log(var), axis=-1)


def sgvb_a(
    x: tf.Tensor,
    posterior: tfd.Distribution,
    prior: tfd.Distribution,
    decode: Decoder,
    z: tf.Tensor,
) -> Bound:
    """Estimator A (eq. 6): a Monte Carlo average of the log-weights.

        L^A(x) = 1/L * sum_l [log p(x, z_l) - log q(z_l|x)],   z_l ~ q(z|x)

    Args:
        x: data, shape (batch, D).
        posterior: q(z|x), batch shape (batch,).
        prior: p(z).
        decode: maps z of shape (L, batch, latent) to p(x|z) with batch shape
            (L, batch).
        z: reparameterized samples from `posterior`, shape (L, batch, latent).

    Returns:
        The estimate, with `kl` the Monte Carlo estimate of KL(q || p).
    """
    reconstruction = tf.reduce_mean(decode(z).log_prob(x), axis=0)
    kl = tf.reduce_mean(posterior.log_prob(z) - prior.log_prob(z), axis=0)
    return Bound(reconstruction - kl, reconstruction, kl)


def sgvb_b(
    x: tf.Tensor,
    posterior: tfd.Distribution,
    prior: tfd.Distribution,
    decode: Decoder,
    z: tf.Tensor,
) -> Bound:
    """Estimator B (eq. 7): analytic KL, Monte Carlo reconstruction term.

        L^B(x) = -KL(q(z|x) || p(z)) + 1/L * sum_l log p(x|z_l),   z_l ~ q(z|x)

    The KL is the closed form of App. B, so `prior` must be N(0, I). The
    arguments are those of `sgvb_a`.
    """
    del prior  # fixed to N(0, I) by the closed form
    reconstruction = tf.reduce_mean(decode(z).log_prob(x), axis=0)
    kl = kl_to_standard_normal(posterior)
    return Bound(reconstruction - kl, reconstruction, kl)


def iwae(
    x: tf.Tensor,
    posterior: tfd.Distribution,
    prior: tfd.Distribution,
    decode: Decoder,
    z: tf.Tensor,
) -> Bound:
    """The importance-weighted bound (Burda et al., 2016) as a training objective, k = L samples:

        L_k(x) = log 1/k sum_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x)

    L_1 is estimator A (eq. 6) in value and gradient; E[L_k] <= E[L_k+1] <= log p(x). Its gradient
    is the reparameterized gradient of the log-mean-exp. `reconstruction` is the mean of
    log p(x|z_i) and `kl` is reconstruction - L_k, so the terms add up as for A and B. The
    arguments are those of `sgvb_a`.
    """
    return iwae_dreg(x, posterior, prior, decode, z, doubly_reparameterized=False)[0]


def iwae_dreg(
    x: tf.Tensor,
    posterior: tfd.Distribution,
    prior: tfd.Distribution,
    decode: Decoder,
    z: tf.Tensor,
    doubly_reparameterized: bool = True,
) -> tuple[Bound, tuple[tf.Tensor, tf.Tensor] | None]:
    """The importance-weighted bound and, with `doubly_reparameterized`, the two surrogates of the
    doubly reparameterized gradient estimator (DReG, Tucker et al., 2019), each of shape (batch,):

        decoder surrogate: sum_i w~_i log w_i      its gradient in theta is the IW bound's
        encoder surrogate: sum_i w~_i^2 log w_i    its gradient in phi is DReG's,
                                                   sum_i w~_i^2 (d log w_i / d z_i)(d z_i / d phi)

    where w~ = softmax(log w) (held fixed) and log w_i = log p(x, z_i) - log q(z_i|x) with q's
    parameters held fixed, so that phi enters only through z_i = mu + sigma * eps_i. DReG's encoder
    gradient has the IW encoder gradient's expectation; its signal-to-noise ratio does not fall as k
    grows, where the IW encoder gradient's does (Rainforth et al., 2018; Tucker et al., 2019).

    Returns:
        (the bound, as `iwae`), and the (decoder, encoder) surrogates or None.
    """
    if doubly_reparameterized:
        posterior = tfd.Independent(tfd.Normal(tf.stop_gradient(posterior.mean()),
                                               tf.stop_gradient(posterior.stddev())), 1)
    log_likelihood = decode(z).log_prob(x)
    log_w = log_likelihood + prior.log_prob(z) - posterior.log_prob(z)
    elbo = importance_weighted_bound(log_w)
    reconstruction = tf.reduce_mean(log_likelihood, axis=0)
    bound = Bound(elbo, reconstruction, reconstruction - elbo)
    if not doubly_reparameterized:
        return bound, None
    weights = tf.stop_gradient(tf.nn.softmax(log_w, axis=0))
    return bound, (tf.reduce_sum(weights * log_w, axis=0), tf.reduce_sum(tf.square(weights) * log_w, axis=0))


# The estimators a model trains with: eq. 6, eq. 7, and the importance-weighted bound with k = L
# samples (the value of "IW-DReG" is the IW bound; only the encoder's gradient differs, see `iwae_dreg`).
ESTIMATORS = {"A": sgvb_a, "B": sgvb_b, "IW": iwae, "IW-DReG": iwae}


def log_weights(
    x: tf.Tensor,
    posterior: tfd.Distribution,
    prior: tfd.Distribution,
    decode: Decoder,
    z: tf.Tensor,
) -> tf.Tensor:
    """log w_i = log p(x, z_i) - log q(z_i|x), shape (k, batch)."""
    return decode(z).log_prob(x) + prior.log_prob(z) - posterior.log_prob(z)


def importance_weighted_bound(log_w: tf.Tensor) -> tf.Tensor:
    """log (1/k) sum_i w_i, the importance-weighted estimate of log p(x).

    It is a lower bound in expectation that tightens to log p(x) as k grows
    (section 5 estimates the marginal likelihood with importance sampling; this
    is the same estimator with q(z|x) as proposal).

    Args:
        log_w: log-weights from `log_weights`, shape (k, batch).

    Returns:
        Shape (batch,).
    """
    k = tf.cast(tf.shape(log_w)[0], log_w.dtype)
    return tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(k)


def combine_logmeanexp(parts: list[tuple[tf.Tensor, int]]) -> tf.Tensor:
    """Merges importance-weighted estimates of chunks of k_j samples each.

    Args:
        parts: pairs (log mean_j of the chunk's weights, k_j).

    Returns:
        log of the mean of all weights, shape (batch,).
    """
    total = sum(k for _, k in parts)
    stacked = tf.stack([lme + math.log(k) for lme, k in parts], axis=0)
    return tf.reduce_logsumexp(stacked, axis=0) - math.log(total)
