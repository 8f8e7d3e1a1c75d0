"""The paper's baselines, built from the same layers as `VAE` (section 5, Figures 2 and 3).

`WakeSleep`: the online wake-sleep algorithm (Hinton et al., 1995) as the paper used it. The
recognition model q(z|x) and the generative model p(z) p(x|z) are the VAE's encoder and decoder;
only the training step differs:

- wake phase: z ~ q(z|x) for the data x (no gradient through the sample), then a step on the
  decoder's parameters up the gradient of log p(x, z) = log p(x|z) + log p(z);
- sleep phase: a fantasy z ~ p(z), x ~ p(x|z), then a step on the encoder's parameters up the
  gradient of log q(z|x) at that pair.

`fit` reports the same lower bound as AEVB (estimator B, L = 1, with the recognition model as q),
so the two are compared on one scale (Figure 2).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from vae_zoo import objectives
from vae_zoo.model import VAE


@keras.saving.register_keras_serializable(package="vae_zoo")
class WakeSleep(VAE):
    """A VAE's encoder and decoder trained by online wake-sleep instead of AEVB.

    Takes the arguments of `VAE`; `estimator` and `num_samples` only choose the bound that
    `fit` and `evaluate` report. Everything else (encode, decode, elbo, log_likelihood,
    presets, export) is the VAE's.
    """

    def phase_gradients(self, x, seed) -> dict:
        """The two phases' gradients for a batch, without applying them.

        Args:
            x: data, shape (batch, input_dim).
            seed: stateless seed, shape (2,), of the wake sample and the fantasy.

        Returns:
            A dict with `wake` (gradients for the decoder's trainable variables), `sleep`
            (for the encoder's), the wake sample `z` (batch, latent), the fantasy pair
            `z_fantasy`, `x_fantasy`, and the phases' mean objectives `wake_log_joint` and
            `sleep_log_q`.
        """
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        batch = tf.shape(x)[0]
        # Wake: z ~ q(z|x) is data for the generative model; no gradient reaches the encoder.
        posterior = self.encoder(x)
        eps = tf.random.stateless_normal([batch, self.latent_dim], seed=seeds[0], dtype=self.compute_dtype)
        z = tf.stop_gradient(objectives.reparameterize(posterior, eps))
        with tf.GradientTape() as tape:
            log_joint = tf.reduce_mean(self.decoder(z).log_prob(x) + self.prior().log_prob(z))
            wake_loss = -log_joint + self._parameter_penalty(self.decoder.trainable_variables)
        wake = tape.gradient(wake_loss, self.decoder.trainable_variables)
        # Sleep: a fantasy from the generative model is data for the recognition model.
        z_fantasy = tf.random.stateless_normal([batch, self.latent_dim], seed=seeds[1], dtype=self.compute_dtype)
        tfp_seed = tf.cast(tf.math.floormod(seeds[2], 2**31 - 1), tf.int32)  # TFP takes int32 seeds
        x_fantasy = tf.stop_gradient(tf.cast(self.decoder(z_fantasy).sample(seed=tfp_seed), self.compute_dtype))
        with tf.GradientTape() as tape:
            log_q = tf.reduce_mean(self.encoder(x_fantasy).log_prob(z_fantasy))
            sleep_loss = -log_q + self._parameter_penalty(self.encoder.trainable_variables)
        sleep = tape.gradient(sleep_loss, self.encoder.trainable_variables)
        return {"wake": wake, "sleep": sleep, "z": z, "z_fantasy": z_fantasy, "x_fantasy": x_fantasy,
                "wake_log_joint": log_joint, "sleep_log_q": log_q}

    def _parameter_penalty(self, variables):
        if not self.parameter_prior_scale or not variables:
            return 0.0
        return 0.5 * self.parameter_prior_scale * tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        seed = self._train_noise_seed()
        if seed is None:
            seed = self.seed_generator.next()
        phases = self.phase_gradients(x, seed)
        by_variable = dict(zip(map(id, [*self.decoder.trainable_variables, *self.encoder.trainable_variables]),
                               [*phases["wake"], *phases["sleep"]]))
        # In the model's own order, as the optimizer's slots are built (and restored from checkpoints).
        self.optimizer.apply_gradients([(by_variable[id(v)], v) for v in self.trainable_variables])
        # The reported bound: the same estimator as AEVB's, with the recognition model as q.
        bound = self._bound(x, self.estimator, self.num_samples, tf.random.experimental.stateless_fold_in(
            tf.cast(seed, tf.int64), 1))
        return self._record(bound, -tf.reduce_mean(bound.elbo))
