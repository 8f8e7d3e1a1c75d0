"""`VAE`: the variational auto-encoder of Kingma & Welling as a Keras 3 model."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.validation import check_choice, check_latent, check_positive_int, check_seed
from vae_zoo.estimators import marginal_likelihood, objectives
from vae_zoo.estimators.objectives import RNG
from vae_zoo.layers.distributions import LIKELIHOODS, ConditionalDistribution, GaussianPosterior, StandardNormalPrior
from vae_zoo.layers.networks import hidden_sizes
from vae_zoo.model import gradients, inference, saving
from vae_zoo.model.checked_model import CheckedModel

tfd = tfp.distributions

@keras.saving.register_keras_serializable(package="vae_zoo")
class VAE(CheckedModel):
    """Variational auto-encoder trained by AEVB (Kingma & Welling, 2013).

    Encoder q(z|x): diagonal Gaussian; prior p(z) = N(0, I); decoder p(x|z):
    Bernoulli (binary data) or Gaussian with sigmoid mean and learned variance
    (data in [0, 1]). Encoder and decoder are MLPs (paper: one tanh layer).

    Args:
        input_dim: number of features D of a (flattened) datapoint.
        latent_dim: dimension of z.
        hidden_units: hidden widths of encoder and decoder (int: one layer).
        likelihood: `"bernoulli"` or `"gaussian"`.
        activation: hidden activation (paper: tanh).
        estimator: `"A"` (eq. 6), `"B"` (eq. 7), `"IW"` (the importance-weighted bound of Burda et
            al., 2016, with k = `num_samples`) or `"IW-DReG"` (the same bound, doubly reparameterized
            gradients for the encoder), used by `fit`/`evaluate`.
        num_samples: L, samples of z per datapoint in `fit`/`evaluate`.
        parameter_prior_scale: weight of a N(0, I) prior on all parameters,
            per datapoint; `1 / N_train` gives the paper's MAP objective
            (its "weight decay"). The training loss adds
            `0.5 * parameter_prior_scale * sum(theta ** 2)`.
        kernel_initializer: initializer of all kernels (paper: N(0, 0.01)).
        seed: seed of the noise eps drawn by `fit` (step t uses (seed, t)) and
            of `evaluate`'s generator; None for unseeded noise.

    `call(x)` returns a dict of tensors (`z_mean`, `z_log_var`, and the decoder's
    `x_mean` [and `x_log_var`] at z = z_mean), so `predict` works; the distributions come from
    `encode` and `decode`.
    """

    # Whether training data must come as (x, index) batches (models with per-example state).
    uses_example_indices = False

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        hidden_units: int | Sequence[int] = 500,
        likelihood: str = "bernoulli",
        activation: str = "tanh",
        estimator: str = "B",
        num_samples: int = 1,
        parameter_prior_scale: float = 0.0,
        kernel_initializer="glorot_uniform",
        seed: int | None = None,
        **kwargs,
    ):
        # The estimators sum log-densities over hundreds of pixels: the model computes in float32
        # whatever Keras' global dtype policy (e.g. mixed_float16 set for another model) says.
        dtype = kwargs.pop("dtype", None)
        if dtype is not None and keras.dtype_policies.get(dtype).name != "float32":
            raise InvalidArgumentError(f"A VAE computes in float32. Received: dtype={dtype!r}")
        super().__init__(dtype="float32", **kwargs)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        if isinstance(parameter_prior_scale, bool) or not isinstance(parameter_prior_scale, numbers.Real) or not (
                0 <= parameter_prior_scale < float("inf")):
            raise InvalidArgumentError(
                "`parameter_prior_scale` must be a finite number >= 0. "
                f"Received: parameter_prior_scale={parameter_prior_scale!r}"
            )
        self.hidden_units = list(hidden_sizes(hidden_units))
        self.activation = activation
        self.parameter_prior_scale = float(parameter_prior_scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = check_seed("seed", seed)
        self.estimator = estimator
        self.num_samples = num_samples

        init = keras.initializers.serialize(self.kernel_initializer)  # a fresh initializer per layer
        self.encoder = ConditionalDistribution(
            self.hidden_units, GaussianPosterior(latent_dim, init, name="posterior", dtype="float32"),
            activation, init, name="encoder", dtype="float32",
        )
        self.decoder = ConditionalDistribution(
            self.hidden_units, LIKELIHOODS[likelihood](input_dim, init, name="likelihood", dtype="float32"),
            activation, init, name="decoder", dtype="float32",
        )
        self.prior = StandardNormalPrior(latent_dim, name="prior", dtype="float32")
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "elbo", "reconstruction", "kl")
        }
        self.encoder.build((None, input_dim))
        self.decoder.build((None, latent_dim))
        self.prior.build((latent_dim,))
        self.built = True
        self.image_shape = None  # (height, width) of the images, when known
        self.source_preset: dict | None = None  # the preset the weights were loaded from

    # -- options that change the compiled step --------------------------------------

    @property
    def estimator(self) -> str:
        """The estimator used by `fit` and `evaluate`: "A", "B", "IW" or "IW-DReG"."""
        return self._estimator

    @estimator.setter
    def estimator(self, value: str):
        self._estimator = check_estimator(value)
        self._reset_compiled_functions()

    @property
    def num_samples(self) -> int:
        """L, samples of z per datapoint used by `fit` and `evaluate`."""
        return self._num_samples

    @num_samples.setter
    def num_samples(self, value: int):
        self._num_samples = check_positive_int("num_samples", value)
        self._reset_compiled_functions()

    # -- distributions ---------------------------------------------------------------

    @property
    def is_binary(self) -> bool:
        return self.likelihood == "bernoulli"

    def encode(self, x) -> tfd.Distribution:
        """q(z|x) for x of shape (batch, input_dim); batch shape (batch,)."""
        return self.encoder(self._check_x(x))

    def decode(self, z) -> tfd.Distribution:
        """p(x|z) for z of shape (..., latent_dim); batch shape z.shape[:-1]."""
        return self.decoder(tf.constant(check_latent(z, self.latent_dim), dtype=self.compute_dtype))

    def call(self, x, training=False) -> dict[str, tf.Tensor]:
        out = self.encoder.outputs(x)
        out.update(self.decoder.outputs(out["z_mean"]))
        return out

    # -- bounds ----------------------------------------------------------------------

    def _noise(self, shape, seed):
        """Standard normal noise: from the model's generator (seed None), an int seed, or a (2,) tensor."""
        if seed is None:
            return keras.random.normal(shape, seed=self.seed_generator, dtype=self.compute_dtype)
        if not tf.is_tensor(seed):
            seed = tf.constant([check_seed("seed", seed, allow_none=False), 0], tf.int64)
        return tf.random.stateless_normal(shape, seed=seed, dtype=self.compute_dtype, alg=RNG)

    def _train_noise_seed(self):
        """Seed of step t's noise: (seed, t), so a resumed run (which restores the
        optimizer's step count) draws the same noise as an uninterrupted one."""
        if self.seed is None:
            return None
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])

    def _bound(self, x, estimator: str, num_samples: int, seed=None, rows=None, surrogates: bool = False):
        """The bound of x; with `rows` = (first, global_batch_size), x is the rows from `first` on of
        a global batch (one worker's slice) and gets those rows of the global batch's noise. With
        `surrogates`, (the IW bound, DReG's surrogates) as `objectives.iwae_dreg` returns them."""
        posterior = self.encoder(x)
        if rows is None:
            eps = self._noise((num_samples, tf.shape(x)[0], self.latent_dim), seed)
        else:
            first, global_size = rows
            eps = self._noise((num_samples, global_size, self.latent_dim), seed)[:, first:first + tf.shape(x)[0]]
        z = objectives.reparameterize(posterior, eps)
        if surrogates:
            return objectives.iwae_dreg(x, posterior, self.prior(), self.decoder, z)
        return objectives.ESTIMATORS[estimator](x, posterior, self.prior(), self.decoder, z)

    def elbo(self, x, estimator: str | None = None, num_samples: int | None = None, seed: int | None = None,
             return_terms: bool = False):
        """Per-datapoint lower bound, in nats.

        Args:
            x: data, shape (batch, input_dim).
            estimator: "A" (eq. 6), "B" (eq. 7) or "IW" (importance-weighted, k = num_samples);
                default: the model's `estimator`.
            num_samples: L, samples of z per datapoint; default: the model's `num_samples`.
            seed: seed of the noise; None draws from the model's generator.
            return_terms: also return the reconstruction and KL terms.

        Returns:
            Tensor of shape (batch,), or an `objectives.Bound` if `return_terms`.
        """
        estimator = self.estimator if estimator is None else check_estimator(estimator)
        num_samples = self.num_samples if num_samples is None else check_positive_int("num_samples", num_samples)
        bound = self._bound(self._check_x(x), estimator, num_samples, check_seed("seed", seed))
        return bound if return_terms else bound.elbo

    def log_likelihood(self, x, num_samples: int = 5000, seed: int = 0, batch_size: int = 100,
                       verbose: bool = False, shard: tuple[int, int] = (0, 1)) -> np.ndarray:
        """Importance-weighted estimate of log p(x) with q(z|x) as proposal, in nats
        (`marginal_likelihood.importance_weighted`, which documents the arguments).

        Returns:
            float32 array of shape (n,) (with `shard`: the rows of its batches, in order).
        """
        return marginal_likelihood.importance_weighted(self, self._check_x(x), num_samples, seed, batch_size,
                                                       verbose, shard)

    def score(self, x, num_samples: int = 1000, seed: int = 0, batch_size: int = 100,
              verbose: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-image log p(x) and its standard error (`inference.score`): an anomaly score."""
        return inference.score(self, self._check_x(x), num_samples, seed, batch_size, verbose)

    def embed(self, x) -> tuple[np.ndarray, np.ndarray]:
        """The means and variances of q(z|x), shape (n, latent_dim) each (`inference.embed`)."""
        return inference.embed(self, self._check_x(x))

    def interpolate(self, a, b, steps: int = 10, images: bool = False) -> np.ndarray:
        """Decoded means between the posterior means of images `a` and `b` (`inference.interpolate`):
        shape (steps, input_dim), or (steps, height, width) with `images`."""
        ends = self._check_x(np.stack([np.reshape(a, -1), np.reshape(b, -1)]))
        path = inference.interpolate(self, ends[0], ends[1], steps)
        return self._as_images(path) if images else path

    def log_likelihood_hmc(self, x, num_samples: int = 500, num_burnin: int = 300, num_leapfrog_steps: int = 10,
                           seed: int = 0, batch_size: int = 100,
                           num_chains: int = marginal_likelihood.APP_D_CHAINS) -> tuple[np.ndarray, float, np.ndarray]:
        """The marginal-likelihood estimate of the paper's App. D, in nats
        (`marginal_likelihood.app_d`, which documents the arguments); independent of the encoder.

        Returns:
            float32 array (n,), the HMC acceptance rate, and each datapoint's chain disagreement in
            nats (n,): above `DISAGREEMENT_NATS`, flagged and measured from all its chains.
        """
        estimate = marginal_likelihood.app_d(self, self._check_x(x), num_samples, num_burnin, num_leapfrog_steps,
                                             seed, batch_size, num_chains)
        return estimate.log_likelihood, float(np.mean(estimate.acceptance)), estimate.disagreement

    def log_likelihood_ais(self, x, num_chains: int = 16, num_steps: int = 1000, num_leapfrog_steps: int = 10,
                           seed: int = 0, batch_size: int = 100) -> tuple[np.ndarray, float, np.ndarray]:
        """Annealed importance sampling estimate of log p(x), in nats (`marginal_likelihood.ais`,
        which documents the arguments); a stochastic lower bound, independent of the encoder.

        Returns:
            float32 array (n,), the HMC acceptance rate, and each datapoint's chain disagreement in
            nats (n,): how far its estimate falls without its best chain (`mcmc.leave_best_out`).
        """
        est = marginal_likelihood.ais(self, self._check_x(x), num_chains, num_steps, num_leapfrog_steps, seed,
                                      batch_size)
        return est.log_likelihood, float(np.mean(est.acceptance)), est.disagreement

    # -- generation --------------------------------------------------------------------

    def sample(self, n: int, seed: int | None = None, mean: bool = True, images: bool = False) -> np.ndarray:
        """Draws n datapoints from the model: z ~ p(z), then p(x|z).

        Args:
            n: number of samples.
            seed: seed of z (and of x when `mean=False`).
            mean: return the decoder mean (pixel probabilities for Bernoulli)
                rather than a sample of p(x|z).
            images: return images of `image_shape` (a preset's) instead of vectors.

        Returns:
            float32 array of shape (n, input_dim), or (n, height, width) with `images`.
        """
        n = check_positive_int("n", n)
        seed = check_seed("seed", seed)
        z = self._noise((n, self.latent_dim), seed)
        p_x = self.decoder(z)
        x = p_x.mean() if mean else p_x.sample(seed=_tfp_seed(seed))
        return self._as_images(np.asarray(x, dtype=np.float32)) if images else np.asarray(x, dtype=np.float32)


    def reconstruct(self, x, sample_z: bool = False, seed: int | None = None, images: bool = False) -> np.ndarray:
        """Decoder mean at the encoder's mean (or at a sample of q(z|x)).

        Args:
            x: data of shape (batch, input_dim).
            sample_z: decode a sample of q(z|x) instead of its mean.
            seed: seed of that sample.
            images: return images of `image_shape` (a preset's) instead of vectors.

        Returns:
            float32 array with the shape of x, or (batch, height, width) with `images`.
        """
        seed = check_seed("seed", seed)
        q = self.encode(x)
        z = q.mean() if not sample_z else objectives.reparameterize(q, self._noise(tf.shape(q.mean()), seed))
        x_mean = np.asarray(self.decoder(z).mean(), dtype=np.float32)
        return self._as_images(x_mean) if images else x_mean

    # -- Keras training loop ----------------------------------------------------------

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _parameter_prior_penalty(self, variables=None):
        """-log N(theta; 0, I) / N up to a constant, over `variables` (default: all trainable ones), as a
        value; `_with_prior_gradients` adds its gradient (taped, XLA on CPUs materialises the squares)."""
        variables = self.trainable_variables if variables is None else variables
        if not self.parameter_prior_scale or not variables:
            return 0.0
        sq = tf.add_n([tf.reduce_sum(tf.square(tf.reshape(v, [-1]))) for v in variables])
        return 0.5 * self.parameter_prior_scale * tf.stop_gradient(sq)

    def _with_prior_gradients(self, grads, variables, divisor=1):
        """`grads` of `variables` plus the parameter prior's, scale * theta / divisor."""
        if not self.parameter_prior_scale:
            return grads
        scale = self.parameter_prior_scale / divisor
        return [g + scale * v for g, v in zip(grads, variables)]

    def _record(self, bound: objectives.Bound, loss) -> dict:
        values = {"loss": loss, "elbo": tf.reduce_mean(bound.elbo),
                  "reconstruction": tf.reduce_mean(bound.reconstruction), "kl": tf.reduce_mean(bound.kl)}
        for name, value in values.items():
            self._trackers[name].update_state(value)
        return {name: t.result() for name, t in self._trackers.items()}

    def loss_and_gradients(self, x, seed, rows=None, divisor=None, prior_divisor=1):
        """The training loss of a batch and its gradients (`gradients.loss_and_gradients`)."""
        return gradients.loss_and_gradients(self, x, seed, rows, divisor, prior_divisor)

    def train_step(self, data):
        bound, loss, grads = self.loss_and_gradients(_features(data), self._train_noise_seed())
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._record(bound, loss)

    def test_step(self, data):
        bound = self._bound(_features(data), self.estimator, self.num_samples)
        return self._record(bound, -tf.reduce_mean(bound.elbo))

    # -- presets ---------------------------------------------------------------------

    @classmethod
    def from_preset(cls, name_or_path: str | os.PathLike, pretrained: bool = True, compile: bool = True) -> VAE:
        """Loads a preset by name (`vae_zoo.list_models()`), from a preset folder, or from
        `hf://OWNER/NAME`; sets `image_shape` and `source_preset` from its card.

        Args:
            name_or_path: a preset name such as "mnist-z20", or a folder written by
                `save_to_preset` (a name wins over a folder of the same name: write `./mnist-z20`).
            pretrained: load the trained weights, verified against their sha256 first; False
                gives the same architecture freshly initialised.
            compile: compile (fast path) with the recipe's optimizer, so `fit` continues right
                away: at the schedule's final learning rate for trained weights, else its first.

        Raises:
            UnknownPresetError: an unknown name (lists the available ones).
            PresetError: a missing, truncated or changed file, or a config that is not a VAE.
        """
        return saving.load_preset(cls, name_or_path, pretrained, compile)

    def save_to_preset(self, path: str | os.PathLike, card: dict | None = None, overwrite: bool = False) -> Path:
        """Writes a preset folder (config, weights, card.json, README.md, metadata.json) that
        `vae_zoo.load(path)` reads back; assembled beside `path` and renamed into place, so it is
        complete or absent. Only the weights are saved, not the optimizer state.

        Args:
            path: the folder to create.
            card: model-card fields to record (recipe, metrics, ...); the
                weights' sha256, the package version and the date are added.
            overwrite: replace an existing folder.

        Returns:
            The folder's path.

        Raises:
            InvalidArgumentError: non-finite weights (a broken model is never written).
            OutputExistsError: `path` exists and `overwrite` is False.
        """
        return saving.save_preset(self, path, card, overwrite)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "latent_dim": self.latent_dim,
            "hidden_units": self.hidden_units,
            "likelihood": self.likelihood,
            "activation": self.activation,
            "estimator": self.estimator,
            "num_samples": self.num_samples,
            "parameter_prior_scale": self.parameter_prior_scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "seed": self.seed,
        }


def check_estimator(estimator: str) -> str:
    """Returns `estimator` if it names one: "A" (eq. 6), "B" (eq. 7), "IW" (the importance-weighted bound,
    k = num_samples) or "IW-DReG" (the same, DReG gradients for the encoder)."""
    return check_choice("estimator", estimator, objectives.ESTIMATORS)


def _features(data):
    """x from what Keras passes to train_step: x, (x,), (x, y) or (x, y, w)."""
    return data[0] if isinstance(data, (tuple, list)) else data


def _tfp_seed(seed):
    return None if seed is None else tf.constant([seed, 1], tf.int32)
