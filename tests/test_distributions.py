"""The distribution layers: what they return, their shapes, and their configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.layers import distributions as dl


@pytest.mark.parametrize("cls, names, outputs", [
    (dl.GaussianPosterior, {"z_mean", "z_log_var"}, {"z_mean", "z_log_var"}),
    (dl.BernoulliLikelihood, {"logits"}, {"x_mean"}),
    (dl.GaussianLikelihood, {"x_mean", "x_log_var"}, {"x_mean", "x_log_var"}),
])
def test_heads_return_distributions_with_named_parameters(cls, names, outputs):
    head = cls(6, name="head")
    h = tf.random.normal([4, 9], seed=0)
    dist = head(h)
    assert dist.batch_shape == (4,) and dist.event_shape == (6,)
    params = head.params(h)
    assert set(params) == names and all(v.shape == (4, 6) for v in params.values())
    out = head.outputs(params)
    assert set(out) == outputs
    np.testing.assert_allclose(out[next(k for k in out if k.endswith("mean"))], dist.mean(), rtol=1e-6)
    clone = cls.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    assert len(head.trainable_weights) == 2  # one kernel and one bias for all parameters


def test_gaussian_likelihood_mean_is_in_unit_interval():
    head = dl.GaussianLikelihood(5)
    mean = head.params(tf.random.normal([100, 3], stddev=10.0, seed=1))["x_mean"].numpy()
    assert np.all((mean >= 0) & (mean <= 1))


def test_prior_is_standard_normal_and_broadcasts():
    prior = dl.StandardNormalPrior(3)()
    assert prior.event_shape == (3,)
    z = tf.zeros([2, 5, 3])
    np.testing.assert_allclose(prior.log_prob(z), np.full((2, 5), -1.5 * np.log(2 * np.pi)), rtol=1e-6)
    assert keras.saving.get_registered_object("vae_zoo>StandardNormalPrior") is dl.StandardNormalPrior


def test_bad_units():
    with pytest.raises(ValueError, match="`units` must be a positive int"):
        dl.BernoulliLikelihood(0)


def test_fused_bernoulli_log_prob_equals_tfp():
    logits = tf.random.normal([3, 4, 50], stddev=5.0, seed=2)
    for x in (tf.cast(tf.random.uniform([4, 50], seed=3) < 0.5, tf.float32), tf.random.uniform([4, 50], seed=4)):
        np.testing.assert_allclose(dl.Bernoulli(logits=logits, dtype=tf.float32).log_prob(x),
                                   dl.tfd.Bernoulli(logits=logits, dtype=tf.float32).log_prob(x), rtol=1e-5, atol=1e-5)


def test_conditional_distribution_round_trips_its_config():
    layer = dl.ConditionalDistribution([8, 6], dl.GaussianPosterior(3, name="posterior"), activation="relu",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=1))
    assert isinstance(layer.kernel_initializer, keras.initializers.Initializer)
    clone = dl.ConditionalDistribution.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.build((None, 5))
    q = clone(tf.zeros([2, 7, 5]))
    assert q.batch_shape == (2, 7) and q.event_shape == (3,)
