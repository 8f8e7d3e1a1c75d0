"""Keras 3 layers whose `call` returns a `tfp.distributions` object.

TFP's own `tfp.layers` are Keras-2 only, so these are written for Keras 3. Each
head has three entry points:

- `call(h)` returns the distribution (what the estimators consume);
- `params(h)` returns the named tensors that define it (e.g. Bernoulli logits);
- `outputs(params)` returns the tensors a user reads (e.g. pixel means), which
  `predict` and the exported graphs return, since neither can carry
  distribution objects.

`ConditionalDistribution` puts an MLP body in front of a head: the encoder
q(z|x) and the decoder p(x|z) of a `VAE` are two of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.core.validation import check_positive_int
from vae_zoo.layers.networks import hidden_sizes, mlp

tfd = tfp.distributions


class _DenseHead(keras.layers.Layer):
    """Base of the heads: one dense projection per named parameter.

    Args:
        units: event size of the distribution (latent or data dimension).
        kernel_initializer: initializer of the projections' kernels.
    """

    param_names: tuple[str, ...] = ()

    def __init__(self, units: int, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        # One kernel for all parameters: a single matmul is faster than several.
        self.projection = keras.layers.Dense(
            self.units * len(self.param_names),
            kernel_initializer=self.kernel_initializer,
            name="projection",
            dtype=self.dtype_policy,
        )
        self.projection.build(input_shape)

    def raw_params(self, h) -> list[tf.Tensor]:
        if not self.built:  # `params` may be the first call, bypassing __call__
            self.build(h.shape)
        return tf.split(self.projection(h), len(self.param_names), axis=-1)

    def params(self, h) -> dict[str, tf.Tensor]:
        """Returns the distribution's defining tensors, by name."""
        return dict(zip(self.param_names, self.raw_params(h)))

    def outputs(self, params: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The tensors a user reads (what `predict` and exported graphs return)."""
        return params

    def call(self, h) -> tfd.Distribution:
        return self.distribution(**self.params(h))

    def compute_output_spec(self, h):  # distributions have no KerasTensor form
        raise NotImplementedError("Distribution heads are used in subclassed models only.")

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="vae_zoo")
class GaussianPosterior(_DenseHead):
    """Diagonal Gaussian q(z|x) = N(z_mean, diag(exp(z_log_var))) (paper App. C.2).

    `params(h)` returns `z_mean` and `z_log_var`, each (batch, units).
    """

    param_names = ("z_mean", "z_log_var")

    @staticmethod
    def distribution(z_mean, z_log_var) -> tfd.Distribution:
        return diagonal_normal(z_mean, z_log_var)


@keras.saving.register_keras_serializable(package="vae_zoo")
class BernoulliLikelihood(_DenseHead):
    """Bernoulli p(x|z) over binary pixels, parameterised by logits (paper App. C.1).

    `params(h)` returns `logits`, (batch, units); `outputs` gives the pixel
    means `x_mean = sigmoid(logits)`.
    """

    param_names = ("logits",)

    def outputs(self, params):
        return {"x_mean": tf.sigmoid(params["logits"])}

    @staticmethod
    def distribution(logits) -> tfd.Distribution:
        return tfd.Independent(Bernoulli(logits=logits, dtype=logits.dtype), 1)


@tf.function(jit_compile=True, reduce_retracing=True)
def _bernoulli_log_prob(logits: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    return x * logits - tf.math.softplus(logits)


class Bernoulli(tfd.Bernoulli):
    """`tfd.Bernoulli` whose `log_prob` is one fused XLA kernel.

    log p(x) = x * logits - softplus(logits), the same value as TFP's
    (1 - x) * log(1 - p) + x * log(p), with one softplus per pixel instead of
    two. It is the elementwise cost of every bound: with it, the
    importance-weighted estimate runs at the speed of its matrix products.
    """

    def _log_prob(self, event):
        logits = tf.convert_to_tensor(self._logits)
        return _bernoulli_log_prob(logits, tf.cast(event, logits.dtype))


@keras.saving.register_keras_serializable(package="vae_zoo")
class GaussianLikelihood(_DenseHead):
    """Gaussian p(x|z) with sigmoid mean and learned log-variance (paper App. C.2).

    Both the mean and the per-pixel log-variance are functions of the hidden
    layer: mean = sigmoid(W4 h + b4), log sigma^2 = W5 h + b5. `params(h)`
    returns `x_mean` and `x_log_var`, each (batch, units).
    """

    param_names = ("x_mean", "x_log_var")

    def params(self, h) -> dict[str, tf.Tensor]:
        pre_mean, log_var = self.raw_params(h)
        return {"x_mean": tf.sigmoid(pre_mean), "x_log_var": log_var}

    @staticmethod
    def distribution(x_mean, x_log_var) -> tfd.Distribution:
        return diagonal_normal(x_mean, x_log_var)


@keras.saving.register_keras_serializable(package="vae_zoo")
class StandardNormalPrior(keras.layers.Layer):
    """The prior p(z) = N(0, I) over `latent_dim` dimensions; has no weights.

    `call()` takes no input and returns a distribution with event shape
    (latent_dim,) and scalar batch shape, which broadcasts against any batch.
    """

    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim

    def call(self, inputs=None) -> tfd.Distribution:
        zeros = tf.zeros([self.latent_dim], dtype=self.compute_dtype)
        return diagonal_normal(zeros, zeros)

    def build(self, input_shape=None):
        self.built = True

    def compute_output_spec(self, inputs=None):
        raise NotImplementedError("The prior is used in subclassed models only.")

    def compute_output_shape(self, input_shape=None) -> tuple:
        """The event shape of p(z) (as `model.summary()` shows it)."""
        return (self.latent_dim,)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}


def diagonal_normal(mean: tf.Tensor, log_var: tf.Tensor) -> tfd.Distribution:
    """N(mean, diag(exp(log_var))) with the last axis as the event axis."""
    return tfd.Independent(tfd.Normal(loc=mean, scale=tf.exp(0.5 * log_var)), 1)


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood}


@keras.saving.register_keras_serializable(package="vae_zoo")
class ConditionalDistribution(keras.layers.Layer):
    """An MLP body followed by a distribution head: inputs -> p(. | inputs).

    `call` returns the distribution, `params` its named tensors, `outputs` the
    tensors a user reads. Flattens any leading axes, so z of shape
    (L, batch, latent) gives batch shape (L, batch).

    Args:
        hidden_units: widths of the body's hidden layers (int: one layer).
        head: a head layer of this module (or its serialized config).
        activation: hidden activation (paper: tanh).
        kernel_initializer: initializer of the body's kernels.
    """

    def __init__(self, hidden_units: int | Sequence[int], head, activation: str = "tanh",
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = list(hidden_sizes(hidden_units))
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.body = mlp(self.hidden_units, activation, self.kernel_initializer, name="body", dtype=self.dtype_policy)
        self.head = head if isinstance(head, keras.layers.Layer) else keras.saving.deserialize_keras_object(head)

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

    def compute_output_shape(self, input_shape) -> tuple:
        """The batch and event shape of the distribution for inputs of `input_shape` (as
        `model.summary()` shows it)."""
        return tuple(input_shape[:-1]) + (self.head.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "head": keras.saving.serialize_keras_object(self.head),
            "activation": self.activation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
