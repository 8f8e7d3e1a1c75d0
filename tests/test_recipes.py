"""Recipes: optimizers, schedules and steps per execution."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.model import recipes


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="Unknown optimizer 'rmsprop'"):
        recipes.make_optimizer(recipes.Recipe(optimizer="rmsprop"), 10)


def test_schedule_counts_epochs_in_steps():
    recipe = recipes.Recipe(learning_rate=1e-3, lr_drops=((2, 1e-4),))
    optimizer = recipes.make_optimizer(recipe, steps_per_epoch=10)
    schedule = optimizer.get_config()["learning_rate"]["config"]
    assert schedule["boundaries"] == [20] and schedule["values"] == [1e-3, 1e-4]
    assert recipe.final_learning_rate == 1e-4 and recipes.Recipe().final_learning_rate == 1e-3


@pytest.mark.parametrize("steps, at_most, expected", [(600, 50, 50), (17, 50, 17), (62, 50, 31), (7, 5, 1)])
def test_steps_per_execution_divides_the_epoch(steps, at_most, expected):
    assert recipes.steps_per_execution(steps, at_most) == expected


def test_recipe_round_trips_through_a_dict():
    recipe = recipes.RECIPES["adam"]
    assert recipes.Recipe.from_dict(recipe.to_dict()) == recipe


def test_original_adagrad_accumulates_through_the_warm_up_then_steps_from_a_zero_accumulator():
    """The author's Adagrad (`anglepy`): accumulator from 0, ADAGRAD_WARMUP updates that only
    accumulate, epsilon 1e-8 on minibatch sums (1e-8 / M^2 on means)."""
    recipe = recipes.RECIPES["paper"].replace(learning_rate=0.1, lr_drops=((1, 0.05),))
    assert recipe.original_adagrad
    optimizer = recipes.make_optimizer(recipe, steps_per_epoch=10)
    w = tf.Variable([1.0, -2.0, 0.5])
    gradients = np.random.default_rng(0).normal(size=(recipes.ADAGRAD_WARMUP + 12, 3)).astype(np.float32)
    expected, accumulator = w.numpy().copy(), np.zeros(3)
    for step, g in enumerate(gradients):
        optimizer.apply_gradients([(tf.constant(g), w)])
        accumulator += g.astype(np.float64) ** 2
        # Keras' schedules keep a value through their boundary step: the drop after epoch 1 (step 10) comes
        # after the warm-up's steps and 11 at 0.1, as it comes after 11 steps without a warm-up.
        lr = 0.0 if step < recipes.ADAGRAD_WARMUP else 0.1 if step <= recipes.ADAGRAD_WARMUP + 10 else 0.05
        expected -= lr * g / np.sqrt(accumulator + 1e-8 / 100**2)
        if step == recipes.ADAGRAD_WARMUP - 1:
            np.testing.assert_array_equal(w.numpy(), [1.0, -2.0, 0.5])  # the warm-up moved nothing
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="original_adagrad"):
        recipes.Recipe(optimizer="adam", original_adagrad=True)
