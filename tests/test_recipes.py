"""Recipes: optimizers, schedules and steps per execution."""

import pytest

from vae_zoo import recipes


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
