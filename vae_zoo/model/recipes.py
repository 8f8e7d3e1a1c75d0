"""Training recipes: the paper's Adagrad with weight decay, Adam with learning-rate drops,
and the optimizers and schedules they build.

A recipe knows no model class: `compile_model` calls the model's own `compile`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.validation import check_choice, check_positive_float, check_positive_int, check_seed

ESTIMATOR_NAMES = ("A", "B", "IW", "IW-DReG")  # objectives.ESTIMATORS, without importing TensorFlow

if TYPE_CHECKING:
    import keras

OPTIMIZERS = ("adam", "adagrad")  # keras.optimizers.Adam, keras.optimizers.Adagrad


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; everything needed to rerun it.

    Attributes:
        optimizer: "adagrad" or "adam".
        learning_rate: initial step size.
        lr_drops: ((epoch, learning_rate), ...): piecewise-constant schedule.
        batch_size: minibatch size M.
        estimator: "A" (eq. 6), "B" (eq. 7), "IW" (the importance-weighted bound) or "IW-DReG" (the
            same, doubly reparameterized encoder gradients).
        num_samples: L, samples of z per datapoint (k for "IW" and "IW-DReG").
        parameter_prior: put a N(0, I) prior on the parameters (the paper's
            weight decay); the model's `parameter_prior_scale` becomes 1 / N.
        init_stddev: kernels ~ N(0, init_stddev^2); None for Glorot uniform.
        original_adagrad: Adagrad as the paper's author ran it (`anglepy`): the squared-gradient
            accumulator starts at 0 (Keras': 0.1), its epsilon is the author's 1e-8 on minibatch
            sums (1e-8 / M^2 on this package's per-datapoint means; Adagrad is otherwise
            invariant to the loss's scale), and the first ADAGRAD_WARMUP updates only accumulate
            (learning rate 0). Only with optimizer "adagrad".
        epochs: epochs to train.
        steps_per_execution: at most this many minibatch steps per compiled call.
        seed: seed of initial weights, noise, shuffles and binarizations.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_drops: tuple[tuple[int, float], ...] = ()
    batch_size: int = 100
    estimator: str = "B"
    num_samples: int = 1
    parameter_prior: bool = False
    init_stddev: float | None = None
    original_adagrad: bool = False
    epochs: int = 100
    steps_per_execution: int = 50
    seed: int = 0

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_positive_float("learning_rate", self.learning_rate)
        for name in ("batch_size", "num_samples", "epochs", "steps_per_execution"):
            check_positive_int(name, getattr(self, name))
        check_choice("estimator", self.estimator, ESTIMATOR_NAMES)
        check_seed("seed", self.seed, allow_none=False)
        if self.init_stddev is not None:
            check_positive_float("init_stddev", self.init_stddev)
        if self.original_adagrad and self.optimizer != "adagrad":
            raise InvalidArgumentError(f"`original_adagrad` is a form of Adagrad; the recipe's optimizer is "
                                       f"{self.optimizer!r}. Set optimizer='adagrad' or original_adagrad=False.")
        epochs = [e for e, _ in self.lr_drops]
        if epochs != sorted(set(epochs)) or any(e < 1 for e in epochs):
            raise InvalidArgumentError(f"`lr_drops` must be ((epoch, rate), ...) with increasing epochs >= 1. "
                                       f"Received: lr_drops={self.lr_drops!r}")
        for _, rate in self.lr_drops:
            check_positive_float("lr_drops rate", rate)

    def replace(self, **changes) -> Recipe:
        """A copy with `changes` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def final_learning_rate(self) -> float:
        """The learning rate at the end of the schedule."""
        return self.lr_drops[-1][1] if self.lr_drops else self.learning_rate

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lr_drops"] = [list(p) for p in self.lr_drops]
        if not self.original_adagrad:
            del d["original_adagrad"]  # the cards written before it existed describe the same recipes
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        d = dict(d)
        d["lr_drops"] = tuple(tuple(p) for p in d.get("lr_drops", ()))
        return cls(**d)


RECIPES = {
    # Section 5: Adagrad as the author's code runs it, M = 100, L = 1, weight decay = N(0, I)
    # prior on the parameters, initial weights ~ N(0, 0.01) (a standard deviation, as in the
    # author's code). Step size 0.02 from the paper's grid {0.01, 0.02, 0.1}; `vae-zoo reproduce`
    # chooses from the grid per curve.
    "paper": Recipe(optimizer="adagrad", learning_rate=0.02, parameter_prior=True, init_stddev=0.01,
                    original_adagrad=True),
    # Adam with two learning-rate drops: better bounds per CPU-hour.
    "adam": Recipe(optimizer="adam", learning_rate=1e-3, lr_drops=((150, 3e-4), (220, 1e-4)), epochs=260),
}

# The author's Adagrad: updates that only accumulate squared gradients before the first step
# (`anglepy`'s `nsteps > warmup` with warmup = 100), and its epsilon on minibatch sums.
ADAGRAD_WARMUP, ADAGRAD_EPSILON = 101, 1e-8


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer, with its schedule counted in steps (optimizer updates)."""
    import keras

    check_choice("optimizer", recipe.optimizer, OPTIMIZERS)
    boundaries = [int(epoch * steps_per_epoch) for epoch, _ in recipe.lr_drops]
    values = [recipe.learning_rate] + [float(v) for _, v in recipe.lr_drops]
    if recipe.original_adagrad:
        # PiecewiseConstantDecay keeps a value up to and including its boundary step.
        boundaries, values = [ADAGRAD_WARMUP - 1] + [b + ADAGRAD_WARMUP for b in boundaries], [0.0] + values
        return keras.optimizers.Adagrad(
            keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values), initial_accumulator_value=0.0,
            epsilon=ADAGRAD_EPSILON / recipe.batch_size**2)
    lr = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else values[0]
    return {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad}[recipe.optimizer](learning_rate=lr)


def steps_per_execution(steps_per_epoch: int, at_most: int) -> int:
    """The largest number of steps per compiled call, up to `at_most`, that divides the
    epoch, so every call ends on an epoch boundary of a repeating dataset."""
    return max(d for d in range(1, min(at_most, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int, **compile_kwargs) -> keras.Model:
    """Compiles `model` with the recipe's optimizer and schedule; steps per execution divide the epoch."""
    model.compile(make_optimizer(recipe, steps_per_epoch),
                  steps_per_execution=steps_per_execution(steps_per_epoch, recipe.steps_per_execution),
                  **compile_kwargs)
    return model
