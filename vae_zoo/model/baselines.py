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

`MCEM`: Monte Carlo EM (App. E) for the generative model alone, no recognition model. Every
training datapoint keeps a Markov chain z_i targeting its posterior p(z|x_i):

- E-step: one Hybrid (Hamiltonian) Monte Carlo transition of the minibatch's chains (10 leapfrog
  steps; one step size shared by all chains, adapted toward 90 % acceptance);
- M-step: 5 updates of the decoder's parameters up the gradient of log p(x, z) at the sampled z.

With minibatches of M = 100 this is online MCEM (`reproduce`'s "mcem-online"). With the whole
training set as the one batch (M = N) a pass over the data is one HMC transition of every chain,
then 5 full-batch weight updates: the batch MCEM of the author's code (`step_batch_mcem`) and of
the paper's Figure 3 ("not an on-line algorithm").

Its quality is measured by the marginal likelihood (`VAE.log_likelihood_hmc`, App. D, Figure 3):
its encoder is never trained, so a lower bound through q(z|x) means nothing for it.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.validation import check_positive_float, check_positive_int
from vae_zoo.estimators import objectives
from vae_zoo.estimators.mcmc import tfp_seed
from vae_zoo.estimators.objectives import RNG
from vae_zoo.model.vae import VAE


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
        eps = tf.random.stateless_normal([batch, self.latent_dim], seed=seeds[0], dtype=self.compute_dtype, alg=RNG)
        z = tf.stop_gradient(objectives.reparameterize(posterior, eps))
        with tf.GradientTape() as tape:
            log_joint = tf.reduce_mean(self.decoder(z).log_prob(x) + self.prior().log_prob(z))
            wake_loss = -log_joint + self._parameter_prior_penalty(self.decoder.trainable_variables)
        wake = self._with_prior_gradients(tape.gradient(wake_loss, self.decoder.trainable_variables),
                                          self.decoder.trainable_variables)
        # Sleep: a fantasy from the generative model is data for the recognition model.
        z_fantasy = tf.random.stateless_normal([batch, self.latent_dim], seed=seeds[1], dtype=self.compute_dtype,
                                               alg=RNG)
        x_fantasy = tf.stop_gradient(self._sample_x(self.decoder(z_fantasy), seeds[2]))
        with tf.GradientTape() as tape:
            log_q = tf.reduce_mean(self.encoder(x_fantasy).log_prob(z_fantasy))
            sleep_loss = -log_q + self._parameter_prior_penalty(self.encoder.trainable_variables)
        sleep = self._with_prior_gradients(tape.gradient(sleep_loss, self.encoder.trainable_variables),
                                           self.encoder.trainable_variables)
        return {"wake": wake, "sleep": sleep, "z": z, "z_fantasy": z_fantasy, "x_fantasy": x_fantasy,
                "wake_log_joint": log_joint, "sleep_log_q": log_q}

    def _sample_x(self, likelihood, seed):
        """x ~ p(x|z), drawn here rather than by TFP's `sample`, whose random numbers cannot
        choose the fast Philox algorithm under XLA."""
        mean = likelihood.mean()
        if self.is_binary:
            return tf.cast(tf.random.stateless_uniform(tf.shape(mean), seed, dtype=mean.dtype, alg=RNG) < mean,
                           mean.dtype)
        return mean + likelihood.stddev() * tf.random.stateless_normal(tf.shape(mean), seed, dtype=mean.dtype, alg=RNG)

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        seed = _step_seed(self)
        phases = self.phase_gradients(x, seed)
        by_variable = dict(zip(map(id, [*self.decoder.trainable_variables, *self.encoder.trainable_variables]),
                               [*phases["wake"], *phases["sleep"]]))
        # In the model's own order, as the optimizer's slots are built (and restored from checkpoints).
        self.optimizer.apply_gradients([(by_variable[id(v)], v) for v in self.trainable_variables])
        # The reported bound: the same estimator as AEVB's, with the recognition model as q.
        bound = self._bound(x, self.estimator, self.num_samples, tf.random.experimental.stateless_fold_in(
            tf.cast(seed, tf.int64), 1))
        return self._record(bound, -tf.reduce_mean(bound.elbo))


def _step_seed(model: VAE):
    """Seed of the training step's noise: (seed, step) if the model is seeded, else the next
    one of its generator."""
    seed = model._train_noise_seed()
    return model.seed_generator.next() if seed is None else seed


@keras.saving.register_keras_serializable(package="vae_zoo")
class MCEM(VAE):
    """The VAE's generative model p(z) p(x|z) trained by Monte Carlo EM with an HMC E-step (App. E).

    Training data must come with each example's index in the training set, as
    `data.train_dataset(..., with_indices=True)` yields them: (x, index) batches. The chains
    (one per training example) and the adapted step size are model weights, so checkpoints
    hold them and a resumed run continues exactly.

    Args:
        num_datapoints: N, the size of the training set (one chain per example).
        num_leapfrog_steps: leapfrog steps of the E-step's HMC transition (paper: 10).
        m_steps: decoder updates per minibatch at the sampled z (paper: 5).
        target_accept: acceptance rate the shared step size adapts to (paper: about 0.9).
        **kwargs: the arguments of `VAE`.
    """

    uses_example_indices = True
    # The step size grows (shrinks) by (1 + ADAPTATION_RATE) per 100 chains (at least once) of a
    # transition whose acceptance rate is above (below) the target, by at most MAX_ADAPTATION: the
    # same adaptation per pass over the data online (M = 100) and in batch (M = N); the author's
    # code moves its step by up to x1.25 per transition.
    ADAPTATION_RATE, MAX_ADAPTATION = 0.01, 1.25

    def __init__(self, *args, num_datapoints: int, num_leapfrog_steps: int = 10, m_steps: int = 5,
                 target_accept: float = 0.9, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_datapoints = check_positive_int("num_datapoints", num_datapoints)
        self.num_leapfrog_steps = check_positive_int("num_leapfrog_steps", num_leapfrog_steps)
        self.m_steps = check_positive_int("m_steps", m_steps)
        self.target_accept = check_positive_float("target_accept", target_accept)
        # MCEM trains no recognition model: a frozen encoder keeps the optimizer's variables those of
        # the decoder, at the first update and when a checkpoint is loaded (resume restores them).
        self.encoder.trainable = False
        self.chains = self.add_weight(shape=(self.num_datapoints, self.latent_dim), name="chains", trainable=False,
                                      initializer=keras.initializers.RandomNormal(seed=self.seed))
        self.step_size = self.add_weight(shape=(), name="step_size", trainable=False,
                                         initializer=keras.initializers.Constant(0.1))
        self._trackers.update({name: keras.metrics.Mean(name=name) for name in ("log_joint", "acceptance")})

    def e_step(self, x, index, seed):
        """One HMC transition of the chains of examples `index` (data `x`) toward p(z|x).

        Returns:
            The new states (batch, latent) and the transition's acceptance rate; the
            chains and the step size are not changed (see `train_step`).
        """
        def log_joint(z):
            return self.decoder(z).log_prob(x) + self.prior().log_prob(z)

        kernel = tfp.mcmc.HamiltonianMonteCarlo(log_joint, step_size=tf.convert_to_tensor(self.step_size),
                                                num_leapfrog_steps=self.num_leapfrog_steps)
        start = tf.gather(self.chains, index)
        z, results = kernel.one_step(start, kernel.bootstrap_results(start), seed=tfp_seed(seed))
        return tf.stop_gradient(z), tf.reduce_mean(tf.cast(results.is_accepted, self.compute_dtype))

    def train_step(self, data):
        if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
            raise InvalidArgumentError(
                "MCEM trains on (x, index) batches, index being each example's row in the training set "
                "(one chain per example). Use vae_zoo.data.datasets.train_dataset(x, ..., with_indices=True)."
            )
        x, index = data[0], tf.cast(data[1], tf.int32)
        seed = _step_seed(self)
        z, acceptance = self.e_step(x, index, seed)
        self.chains.assign(tf.tensor_scatter_nd_update(self.chains, index[:, None], z))
        hundreds = tf.maximum(tf.cast(tf.shape(index)[0], self.compute_dtype) / 100.0, 1.0)
        factor = tf.minimum((1.0 + self.ADAPTATION_RATE) ** hundreds, self.MAX_ADAPTATION)
        self.step_size.assign(self.step_size * tf.where(acceptance > self.target_accept, factor, 1.0 / factor))
        decoder = self.decoder.trainable_variables
        for _ in range(self.m_steps):  # M-step: the generative model fitted to the sampled z
            with tf.GradientTape() as tape:
                log_joint = tf.reduce_mean(self.decoder(z).log_prob(x) + self.prior().log_prob(z))
                loss = -log_joint + self._parameter_prior_penalty(decoder)
            self.optimizer.apply_gradients(zip(self._with_prior_gradients(tape.gradient(loss, decoder), decoder),
                                               decoder))
        for name, value in (("loss", loss), ("log_joint", log_joint), ("acceptance", acceptance)):
            self._trackers[name].update_state(value)
        return {name: self._trackers[name].result() for name in ("loss", "log_joint", "acceptance")}

    def get_config(self):
        return {**super().get_config(), "num_datapoints": self.num_datapoints,
                "num_leapfrog_steps": self.num_leapfrog_steps, "m_steps": self.m_steps,
                "target_accept": self.target_accept}
