"""The paper's baselines: wake-sleep's two phases are the gradients they should be, and it learns."""

import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from vae_zoo.baselines import WakeSleep


def small(**kwargs):
    return WakeSleep(input_dim=12, latent_dim=2, hidden_units=8, seed=0, **kwargs)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_wake_and_sleep_gradients_are_those_of_their_objectives(likelihood):
    model = small(likelihood=likelihood)
    x = tf.constant((np.random.default_rng(0).random((16, 12)) < 0.5).astype(np.float32))
    phases = model.phase_gradients(x, tf.constant([3, 4], tf.int64))
    everything = model.trainable_variables
    encoder_ids = {id(v) for v in model.encoder.trainable_variables}
    with tf.GradientTape() as tape:  # log p(x, z) at the wake sample, w.r.t. every parameter
        log_joint = tf.reduce_mean(model.decoder(phases["z"]).log_prob(x) + model.prior().log_prob(phases["z"]))
    wake_all = dict(zip(map(id, everything), tape.gradient(log_joint, everything)))
    for v, g in zip(model.decoder.trainable_variables, phases["wake"]):  # the phase descends -log p(x, z)
        np.testing.assert_allclose(g, -wake_all[id(v)], rtol=1e-5, atol=1e-7)
    assert all(wake_all[i] is None for i in encoder_ids)  # the wake phase does not move the encoder
    with tf.GradientTape() as tape:  # log q(z|x) at the fantasy pair
        log_q = tf.reduce_mean(model.encoder(phases["x_fantasy"]).log_prob(phases["z_fantasy"]))
    sleep_all = dict(zip(map(id, everything), tape.gradient(log_q, everything)))
    for v, g in zip(model.encoder.trainable_variables, phases["sleep"]):  # the phase descends -log q(z|x)
        np.testing.assert_allclose(g, -sleep_all[id(v)], rtol=1e-5, atol=1e-7)
    assert all(sleep_all[id(v)] is None for v in model.decoder.trainable_variables)  # nor sleep the decoder
    if likelihood == "bernoulli":  # fantasies are drawn from p(x|z), not its mean
        assert set(np.unique(phases["x_fantasy"])) <= {0.0, 1.0}


def test_a_training_step_applies_exactly_the_two_phases():
    model = small()
    model.compile("sgd", jit_compile=False)  # XLA draws other stateless random numbers than eager TF
    x = (np.random.default_rng(1).random((10, 12)) < 0.5).astype(np.float32)
    before = [v.numpy().copy() for v in model.trainable_variables]
    seed = tf.constant([0, 0], tf.int64)  # step 0 of seed 0: what train_step draws
    phases = model.phase_gradients(tf.constant(x), seed)
    model.fit(x, batch_size=10, epochs=1, verbose=0, shuffle=False)
    grads = dict(zip(map(id, [*model.decoder.trainable_variables, *model.encoder.trainable_variables]),
                     [*phases["wake"], *phases["sleep"]]))
    lr = float(model.optimizer.learning_rate)
    for v, b in zip(model.trainable_variables, before):
        np.testing.assert_allclose(v.numpy(), b - lr * grads[id(v)].numpy(), rtol=1e-4, atol=1e-6)


def test_wake_sleep_raises_the_bound_on_mnist(mnist_subset):
    x = (np.random.default_rng(0).random(mnist_subset[0].shape) < mnist_subset[0]).astype(np.float32)
    x_test = (np.random.default_rng(1).random(mnist_subset[2].shape) < mnist_subset[2]).astype(np.float32)
    model = WakeSleep(input_dim=784, latent_dim=10, hidden_units=200, seed=0)
    model.compile("adam")
    before = float(np.mean(model.elbo(x_test, seed=0)))
    history = model.fit(x, batch_size=100, epochs=5, verbose=0)
    after = float(np.mean(model.elbo(x_test, seed=0)))
    assert set(history.history) >= {"elbo", "kl", "reconstruction"}
    assert after > before + 100, (before, after)


def test_wake_sleep_models_save_and_load_as_presets(tmp_path):
    model = small()
    path = model.save_to_preset(tmp_path / "ws")
    loaded = vae_zoo.load(path)
    assert isinstance(loaded, WakeSleep)
    x = np.zeros((3, 12), np.float32)
    np.testing.assert_array_equal(loaded.elbo(x, seed=0), model.elbo(x, seed=0))
