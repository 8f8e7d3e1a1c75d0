"""`VAE`: the variational auto-encoder of Kingma & Welling as a Keras 3 model."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo import objectives
from vae_zoo.distributions import LIKELIHOODS, GaussianPosterior, StandardNormalPrior
from vae_zoo.networks import hidden_sizes, mlp
from vae_zoo.validation import check_data

tfd = tfp.distributions

# Rows (samples x datapoints) pushed through the decoder at once by the
# importance-weighted estimate; bounds its memory to a few hundred MB.
_IW_ROWS_PER_CHUNK = 50_000


@keras.saving.register_keras_serializable(package="vae_zoo")
class ConditionalDistribution(keras.layers.Layer):
    """An MLP body followed by a distribution head: inputs -> p(. | inputs).

    `call` returns the distribution, `params` its named tensors. Flattens any
    leading axes, so z of shape (L, batch, latent) gives batch shape (L, batch).

    Args:
        hidden_units: widths of the body's hidden layers.
        head: a head layer from `vae_zoo.distributions`.
        activation: hidden activation.
        kernel_initializer: initializer of all kernels.
    """

    def __init__(self, hidden_units, head, activation="tanh", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.body = mlp(hidden_units, activation, kernel_initializer, name="body")
        self.head = head

    def build(self, input_shape):
        self.body.build(input_shape)
        self.head.build(self.body.compute_output_shape(input_shape))

    def params(self, inputs) -> dict[str, tf.Tensor]:
        """The head's parameter tensors for `inputs` of shape (..., d_in)."""
        if inputs.shape.rank == 2:
            return self.head.params(self.body(inputs))
        lead = tf.shape(inputs)[:-1]
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
        params = self.head.params(self.body(flat))
        return {k: tf.reshape(v, tf.concat([lead, [v.shape[-1]]], 0)) for k, v in params.items()}

    def outputs(self, inputs) -> dict[str, tf.Tensor]:
        """The head's user-facing tensors (e.g. `x_mean`) for `inputs`."""
        return self.head.outputs(self.params(inputs))

    def call(self, inputs) -> tfd.Distribution:
        return self.head.distribution(**self.params(inputs))

    def compute_output_spec(self, inputs):
        raise NotImplementedError("Distribution layers are used in subclassed models only.")


@keras.saving.register_keras_serializable(package="vae_zoo")
class VAE(keras.Model):
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
        estimator: `"A"` (eq. 6) or `"B"` (eq. 7), used by `fit`/`evaluate`.
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
        super().__init__(**kwargs)
        for arg, value in (("input_dim", input_dim), ("latent_dim", latent_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"Unknown likelihood {likelihood!r}. Available: {', '.join(LIKELIHOODS)}. "
                f"Received: likelihood={likelihood!r}"
            )
        if parameter_prior_scale < 0:
            raise ValueError(
                "`parameter_prior_scale` must be >= 0. "
                f"Received: parameter_prior_scale={parameter_prior_scale!r}"
            )
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.hidden_units = list(hidden_sizes(hidden_units))
        self.likelihood = likelihood
        self.activation = activation
        self.parameter_prior_scale = float(parameter_prior_scale)
        self.kernel_initializer = keras.initializers.serialize(keras.initializers.get(kernel_initializer))
        self.seed = seed
        self.estimator = estimator
        self.num_samples = num_samples

        init = self.kernel_initializer
        self.encoder = ConditionalDistribution(
            self.hidden_units, GaussianPosterior(latent_dim, init, name="posterior"),
            activation, init, name="encoder",
        )
        self.decoder = ConditionalDistribution(
            self.hidden_units, LIKELIHOODS[likelihood](input_dim, init, name="likelihood"),
            activation, init, name="decoder",
        )
        self.prior = StandardNormalPrior(latent_dim, name="prior")
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "elbo", "reconstruction", "kl")
        }
        self.encoder.build((None, input_dim))
        self.decoder.build((None, latent_dim))
        self.built = True

    # -- options that change the compiled step --------------------------------------

    @property
    def estimator(self) -> str:
        """The SGVB estimator used by `fit` and `evaluate`: "A" or "B"."""
        return self._estimator

    @estimator.setter
    def estimator(self, value: str):
        check_estimator(value)
        self._estimator = value
        self._reset_compiled_functions()

    @property
    def num_samples(self) -> int:
        """L, samples of z per datapoint used by `fit` and `evaluate`."""
        return self._num_samples

    @num_samples.setter
    def num_samples(self, value: int):
        check_num_samples(value)
        self._num_samples = value
        self._reset_compiled_functions()

    def _reset_compiled_functions(self):
        self.train_function = self.test_function = self.predict_function = None

    # -- distributions ---------------------------------------------------------------

    @property
    def is_binary(self) -> bool:
        return self.likelihood == "bernoulli"

    def encode(self, x) -> tfd.Distribution:
        """q(z|x) for x of shape (batch, input_dim); batch shape (batch,)."""
        return self.encoder(self._check_x(x))

    def decode(self, z) -> tfd.Distribution:
        """p(x|z) for z of shape (..., latent_dim); batch shape z.shape[:-1]."""
        z = tf.convert_to_tensor(z, dtype=self.compute_dtype)
        if z.shape.rank is None or z.shape.rank < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"`z` must have shape (..., {self.latent_dim}). Received: shape {tuple(z.shape)}")
        if not bool(tf.reduce_all(tf.math.is_finite(z))):
            raise ValueError("`z` contains NaN or inf values.")
        return self.decoder(z)

    def call(self, x, training=False) -> dict[str, tf.Tensor]:
        out = self.encoder.outputs(x)
        out.update(self.decoder.outputs(out["z_mean"]))
        return out

    # -- bounds ----------------------------------------------------------------------

    def _noise(self, shape, seed):
        """Standard normal noise: from the model's generator (seed None), an int
        seed, or a stateless (2,) seed tensor."""
        if seed is None:
            return keras.random.normal(shape, seed=self.seed_generator, dtype=self.compute_dtype)
        if isinstance(seed, int):
            seed = tf.constant([seed, 0], tf.int64)
        return tf.random.stateless_normal(shape, seed=seed, dtype=self.compute_dtype)

    def _train_noise_seed(self):
        """Seed of step t's noise: (seed, t), so a resumed run (which restores the
        optimizer's step count) draws the same noise as an uninterrupted one."""
        if self.seed is None:
            return None
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])

    def _bound(self, x, estimator: str, num_samples: int, seed=None) -> objectives.Bound:
        posterior = self.encoder(x)
        eps = self._noise((num_samples, tf.shape(x)[0], self.latent_dim), seed)
        z = objectives.reparameterize(posterior, eps)
        return objectives.ESTIMATORS[estimator](x, posterior, self.prior(), self.decoder, z)

    def elbo(self, x, estimator: str = "B", num_samples: int = 1, seed: int | None = None,
             return_terms: bool = False):
        """Per-datapoint lower bound, in nats.

        Args:
            x: data, shape (batch, input_dim).
            estimator: "A" (eq. 6) or "B" (eq. 7).
            num_samples: L, samples of z per datapoint.
            seed: seed of the noise; None draws from the model's generator.
            return_terms: also return the reconstruction and KL terms.

        Returns:
            Tensor of shape (batch,), or an `objectives.Bound` if
            `return_terms`.
        """
        check_estimator(estimator)
        check_num_samples(num_samples)
        bound = self._bound(self._check_x(x), estimator, num_samples, seed)
        return bound if return_terms else bound.elbo

    def log_likelihood(self, x, num_samples: int = 5000, seed: int = 0, batch_size: int = 100,
                       verbose: bool = False) -> np.ndarray:
        """Importance-weighted estimate of log p(x) with q(z|x) as proposal, in nats.

            log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x)

        Computed in chunks of samples so that k = 5000 fits in memory.

        Args:
            x: data, shape (n, input_dim).
            num_samples: k, importance samples per datapoint.
            seed: seed of the samples (same seed, same estimate).
            batch_size: datapoints per step.
            verbose: show a progress bar.

        Returns:
            float32 array of shape (n,).
        """
        check_num_samples(num_samples, "num_samples")
        x = self._check_x(x)
        out = []
        progress = keras.utils.Progbar(len(x), unit_name="datapoint", stateful_metrics=["mean"]) if verbose else None
        for start in range(0, len(x), batch_size):
            xb = tf.constant(x[start:start + batch_size])
            chunk = max(1, min(num_samples, _IW_ROWS_PER_CHUNK // len(xb)))
            parts = []
            for i, first in enumerate(range(0, num_samples, chunk)):
                k = min(chunk, num_samples - first)
                lme = self._iw_chunk(xb, tf.constant([seed, start, i], tf.int64), k)
                parts.append((lme, k))
            out.append(objectives.combine_logmeanexp(parts).numpy())
            if progress is not None:
                progress.add(len(xb), [("mean", float(np.mean(np.concatenate(out))))])
        return np.concatenate(out)

    @tf.function(reduce_retracing=True)
    def _iw_chunk(self, x, seed, k):
        posterior = self.encoder(x)
        eps = tf.random.stateless_normal(
            [k, tf.shape(x)[0], self.latent_dim], seed=tf.random.experimental.stateless_fold_in(seed[:2], seed[2]),
            dtype=self.compute_dtype,
        )
        z = objectives.reparameterize(posterior, eps)
        log_w = objectives.log_weights(x, posterior, self.prior(), self.decoder, z)
        return objectives.importance_weighted_bound(log_w)

    # -- generation --------------------------------------------------------------------

    def sample(self, n: int, seed: int | None = None, mean: bool = True) -> np.ndarray:
        """Draws n datapoints from the model: z ~ p(z), then p(x|z).

        Args:
            n: number of samples.
            seed: seed of z (and of x when `mean=False`).
            mean: return the decoder mean (pixel probabilities for Bernoulli)
                rather than a sample of p(x|z).

        Returns:
            float32 array of shape (n, input_dim).
        """
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"`n` must be a positive int. Received: n={n!r}")
        z = self._noise((n, self.latent_dim), seed)
        p_x = self.decoder(z)
        x = p_x.mean() if mean else p_x.sample(seed=_tfp_seed(seed))
        return np.asarray(x, dtype=np.float32)

    def reconstruct(self, x, sample_z: bool = False, seed: int | None = None) -> np.ndarray:
        """Decoder mean at the encoder's mean (or at a sample of q(z|x)).

        Returns:
            float32 array with the shape of x.
        """
        q = self.encode(x)
        z = q.mean() if not sample_z else objectives.reparameterize(q, self._noise(tf.shape(q.mean()), seed))
        return np.asarray(self.decoder(z).mean(), dtype=np.float32)

    # -- Keras training loop ----------------------------------------------------------

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _parameter_prior_penalty(self):
        if not self.parameter_prior_scale:
            return 0.0
        sq = tf.add_n([tf.reduce_sum(tf.square(v)) for v in self.trainable_variables])
        return 0.5 * self.parameter_prior_scale * sq

    def _record(self, bound: objectives.Bound, loss) -> dict:
        values = {
            "loss": loss,
            "elbo": tf.reduce_mean(bound.elbo),
            "reconstruction": tf.reduce_mean(bound.reconstruction),
            "kl": tf.reduce_mean(bound.kl),
        }
        for name, value in values.items():
            self._trackers[name].update_state(value)
        return {name: t.result() for name, t in self._trackers.items()}

    def train_step(self, data):
        x = _features(data)
        with tf.GradientTape() as tape:
            bound = self._bound(x, self.estimator, self.num_samples, self._train_noise_seed())
            loss = -tf.reduce_mean(bound.elbo) + self._parameter_prior_penalty()
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._record(bound, loss)

    def test_step(self, data):
        bound = self._bound(_features(data), self.estimator, self.num_samples)
        return self._record(bound, -tf.reduce_mean(bound.elbo))

    def _check_x(self, x) -> np.ndarray:
        return check_data(x, self.input_dim, self.is_binary)

    def fit(self, x=None, y=None, **kwargs):
        return super().fit(self._check_array_input(x), y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        return super().evaluate(self._check_array_input(x), y, **kwargs)

    def predict(self, x, **kwargs):
        return super().predict(self._check_array_input(x), **kwargs)

    def _check_array_input(self, x):
        return self._check_x(x) if isinstance(x, (np.ndarray, tf.Tensor, list)) else x

    def save_to_preset(self, path, card: dict | None = None, overwrite: bool = False):
        """Writes a preset folder (config.json, model.weights.h5, card.json)
        that `vae_zoo.load(path)` reads back; see `vae_zoo.registry.save_preset`."""
        from vae_zoo.registry import save_preset

        return save_preset(self, path, card, overwrite)

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
            "kernel_initializer": self.kernel_initializer,
            "seed": self.seed,
        }


def check_estimator(estimator: str) -> None:
    if estimator not in objectives.ESTIMATORS:
        raise ValueError(
            f"Unknown estimator {estimator!r}. Available: "
            f"{', '.join(repr(k) for k in objectives.ESTIMATORS)} (eq. 6 and eq. 7 of the paper). "
            f"Received: estimator={estimator!r}"
        )


def check_num_samples(num_samples: int, name: str = "num_samples") -> None:
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={num_samples!r}")


def _features(data):
    """x from what Keras passes to train_step: x, (x,), (x, y) or (x, y, w)."""
    return data[0] if isinstance(data, (tuple, list)) else data


def _tfp_seed(seed):
    return None if seed is None else tf.constant([seed, 1], tf.int32)
