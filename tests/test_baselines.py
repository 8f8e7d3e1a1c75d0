"""The paper's baselines: wake-sleep's two phases are the gradients they should be, and it learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from vae_zoo.model.baselines import WakeSleep


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


def small_mcem(**kwargs):
    from vae_zoo.model.baselines import MCEM

    return MCEM(**{"input_dim": 12, "latent_dim": 2, "hidden_units": 8, "num_datapoints": 20, "seed": 0, **kwargs})


@pytest.mark.parametrize("n, index", [(20, [3, 7, 11, 19, 0]), (250, np.random.default_rng(3).permutation(250))],
                         ids=["online-minibatch", "batch-every-chain"])
def test_an_mcem_step_is_one_hmc_transition_of_the_batch_chains_then_five_decoder_updates(n, index):
    # With every chain in the batch (batch MCEM, M = N), a pass over the data is one step.
    model = small_mcem(m_steps=5, num_datapoints=n)
    model.compile("sgd", jit_compile=False)
    x_all = (np.random.default_rng(2).random((n, 12)) < 0.5).astype(np.float32)
    index = np.asarray(index, np.int32)
    chains, step_size = model.chains.numpy().copy(), float(model.step_size.numpy())
    encoder = [v.numpy().copy() for v in model.encoder.trainable_variables]
    decoder = [v.numpy().copy() for v in model.decoder.trainable_variables]
    seed = tf.constant([0, 0], tf.int64)  # step 0 of seed 0: what train_step draws
    z, acceptance = model.e_step(tf.constant(x_all[index]), tf.constant(index), seed)
    ds = tf.data.Dataset.from_tensors((x_all[index], index))
    model.fit(ds, epochs=1, verbose=0)
    after = model.chains.numpy()
    np.testing.assert_allclose(after[index], z.numpy(), rtol=1e-6, atol=1e-6)  # the batch's chains took the HMC step
    # (atol: compiled fit vs the eager step differ by float32 rounding, 1.5e-8 seen on an entry of 6e-4)
    others = np.setdiff1d(np.arange(n), index)
    np.testing.assert_array_equal(after[others], chains[others])  # no other chain moved
    rate = 1.01 ** max(1, len(index) / 100)  # the same adaptation per chain transition, online or batch
    factor = rate if float(acceptance) > 0.9 else 1 / rate
    np.testing.assert_allclose(float(model.step_size.numpy()), step_size * factor, rtol=1e-6)
    for v, b in zip(model.encoder.trainable_variables, encoder):  # MCEM trains no recognition model
        np.testing.assert_array_equal(v.numpy(), b)
    # The M-step: five plain gradient steps on -log p(x, z) at the sampled z.
    replica = [tf.Variable(b) for b in decoder]
    lr = float(model.optimizer.learning_rate)
    twin = small_mcem(num_datapoints=n)
    for _ in range(5):
        for v, r in zip(twin.decoder.trainable_variables, replica):
            v.assign(r)
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(twin.decoder(z).log_prob(x_all[index]) + twin.prior().log_prob(z))
        for r, g in zip(replica, tape.gradient(loss, twin.decoder.trainable_variables)):
            r.assign_sub(lr * g)
    for v, r in zip(model.decoder.trainable_variables, replica):
        np.testing.assert_allclose(v.numpy(), r.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_mcem_raises_the_marginal_likelihood_of_a_small_model(mnist_subset, tmp_path):
    from vae_zoo import data
    from vae_zoo.model.recipes import RECIPES, compile_model
    from vae_zoo.training import train as training

    x = mnist_subset[0][:500]
    x_test = data.binarize(mnist_subset[2][:100])
    recipe = RECIPES["paper"].replace(epochs=5)
    model = training.build_model(dict(input_dim=784, latent_dim=3, hidden_units=50), recipe, len(x), "mcem")
    compile_model(model, recipe, len(x) // 100)
    before, *_ = model.log_likelihood_hmc(x_test, num_samples=50, num_burnin=50, num_leapfrog_steps=4)
    history = model.fit(data.train_dataset(x, 100, True, 0, epochs=5, with_indices=True), epochs=5,
                        steps_per_epoch=5, verbose=0)
    after, *_ = model.log_likelihood_hmc(x_test, num_samples=50, num_burnin=50, num_leapfrog_steps=4)
    assert after.mean() > before.mean() + 100, (before.mean(), after.mean())
    assert 0.6 < history.history["acceptance"][-1] <= 1.0
    model.save(tmp_path / "mcem.keras")  # chains and step size are part of the model (checkpoints resume)
    restored = keras.saving.load_model(tmp_path / "mcem.keras")
    assert type(restored).__name__ == "MCEM" and restored.num_datapoints == 500
    np.testing.assert_array_equal(restored.chains.numpy(), model.chains.numpy())
    assert float(restored.step_size.numpy()) == float(model.step_size.numpy())


def test_mcem_refuses_data_without_example_indices():
    model = small_mcem()
    model.compile("sgd", jit_compile=False)
    with pytest.raises(vae_zoo.core.errors.InvalidArgumentError, match="with_indices=True"):
        model.fit(np.zeros((10, 12), np.float32), batch_size=10, epochs=1, verbose=0)
