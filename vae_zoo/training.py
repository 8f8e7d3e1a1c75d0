"""Training recipes (the paper's Adagrad + weight decay, Adam), checkpoints and resume."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from vae_zoo import data as data_lib
from vae_zoo.io import atomic_write_text
from vae_zoo.model import VAE


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; everything needed to rerun it.

    Attributes:
        optimizer: "adagrad" or "adam".
        learning_rate: initial step size.
        lr_drops: ((epoch, learning_rate), ...): piecewise-constant schedule.
        batch_size: minibatch size M.
        estimator: "A" (eq. 6) or "B" (eq. 7).
        num_samples: L, samples of z per datapoint.
        parameter_prior: put a N(0, I) prior on the parameters (the paper's
            weight decay); the model's `parameter_prior_scale` becomes 1 / N.
        init_stddev: kernels ~ N(0, init_stddev^2); None for Glorot uniform.
        epochs: epochs to train.
        steps_per_execution: minibatch steps run per compiled call.
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
    epochs: int = 100
    steps_per_execution: int = 50
    seed: int = 0

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lr_drops"] = [list(p) for p in self.lr_drops]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        d = dict(d)
        d["lr_drops"] = tuple(tuple(p) for p in d.get("lr_drops", ()))
        return cls(**d)


RECIPES = {
    # Section 5: Adagrad, M = 100, L = 1, weight decay = N(0, I) prior on the
    # parameters, initial weights ~ N(0, 0.01). Step size 0.02 from the paper's
    # grid {0.01, 0.02, 0.1}.
    "paper": Recipe(optimizer="adagrad", learning_rate=0.02, parameter_prior=True, init_stddev=0.01),
    # Adam with two learning-rate drops: better bounds per CPU-hour.
    "adam": Recipe(optimizer="adam", learning_rate=1e-3, lr_drops=((150, 3e-4), (220, 1e-4)), epochs=260),
}

OPTIMIZERS = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad}


def get_recipe(name_or_recipe: str | Recipe) -> Recipe:
    if isinstance(name_or_recipe, Recipe):
        return name_or_recipe
    if name_or_recipe not in RECIPES:
        raise ValueError(
            f"Unknown recipe {name_or_recipe!r}. Available: {', '.join(RECIPES)}. Received: {name_or_recipe!r}"
        )
    return RECIPES[name_or_recipe]


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer, with its schedule counted in steps."""
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {recipe.optimizer!r}. Available: {', '.join(OPTIMIZERS)}. "
            f"Received: optimizer={recipe.optimizer!r}"
        )
    lr = recipe.learning_rate
    if recipe.lr_drops:
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(epoch * steps_per_epoch) for epoch, _ in recipe.lr_drops],
            [recipe.learning_rate] + [float(v) for _, v in recipe.lr_drops],
        )
    return OPTIMIZERS[recipe.optimizer](learning_rate=lr)


def build_model(architecture: dict, recipe: Recipe, n_train: int) -> VAE:
    """A fresh VAE for `architecture` (VAE keyword arguments) set up by `recipe`."""
    init = (
        keras.initializers.RandomNormal(stddev=recipe.init_stddev, seed=recipe.seed)
        if recipe.init_stddev is not None
        else keras.initializers.GlorotUniform(seed=recipe.seed)
    )
    keras.utils.set_random_seed(recipe.seed)
    return VAE(
        **architecture,
        estimator=recipe.estimator,
        num_samples=recipe.num_samples,
        parameter_prior_scale=1.0 / n_train if recipe.parameter_prior else 0.0,
        kernel_initializer=init,
        seed=recipe.seed,
    )


def compile_model(model: VAE, recipe: Recipe, steps_per_epoch: int, jit_compile: bool | str = "auto") -> VAE:
    """Compiles with the recipe's optimizer; steps per execution divide the epoch."""
    per_call = max(d for d in range(1, min(recipe.steps_per_execution, steps_per_epoch) + 1)
                   if steps_per_epoch % d == 0)
    model.compile(make_optimizer(recipe, steps_per_epoch), steps_per_execution=per_call, jit_compile=jit_compile)
    return model


CHECKPOINT = "checkpoint.keras"
# Checkpoint every epoch, or every few epochs when epochs are shorter than this
# many steps (Frey Face: 17 steps), so saving does not dominate training.
CHECKPOINT_STEPS = 500
STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: logs the bounds; every `save_every` epochs (and at the
    end) saves the model (with optimizer state) and the log atomically; prints
    the overall progress and ETA whenever the test bound is measured.

    An interruption at any moment leaves the previous complete checkpoint.
    """

    def __init__(self, directory: Path, state: dict, eval_fn=None, eval_every: int = 10, report: bool = True,
                 save_every: int = 1):
        super().__init__()
        self.save_every = save_every
        self.directory = Path(directory)
        self.state = state
        self.eval_fn = eval_fn
        self.eval_every = eval_every
        self.report = report
        self._t0 = time.time()
        self._first_epoch = state["epoch"]
        self._session_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        logs = logs or {}
        row = {"epoch": done, "samples_seen": done * self.state["samples_per_epoch"]}
        row.update({f"train_{k}": round(float(logs[k]), 4) for k in ("elbo", "kl") if k in logs})
        if self.eval_fn is not None and (done % self.eval_every == 0 or done == self.state["epochs"]):
            row["test_elbo"] = round(float(self.eval_fn(self.model)), 4)
        seconds = time.time() - self._t0
        self._t0 = time.time()
        self._session_seconds += seconds
        self.state["wall_seconds"] += seconds
        self.state["epoch"] = done
        self.state["log"].append(row)
        if done % self.save_every == 0 or done == self.state["epochs"]:
            save_checkpoint(self.model, self.directory, self.state)
        if self.report and "test_elbo" in row:
            eta = self._session_seconds / (done - self._first_epoch) * (self.state["epochs"] - done)
            print(f"epoch {done}/{self.state['epochs']}: train ELBO {row.get('train_elbo', float('nan')):.2f}, "
                  f"test ELBO {row['test_elbo']:.2f}; ETA {eta / 60:.1f} min", flush=True)


def save_checkpoint(model: VAE, directory: Path, state: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (CHECKPOINT + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, directory / CHECKPOINT)
    atomic_write_text(directory / STATE, json.dumps(state, indent=1))


def load_checkpoint(directory: Path) -> tuple[VAE, dict]:
    directory = Path(directory)
    state = json.loads((directory / STATE).read_text())
    model = keras.saving.load_model(directory / CHECKPOINT)
    return model, state


def fit_with_checkpoints(
    model: VAE,
    x_train: np.ndarray,
    recipe: Recipe,
    directory: str | os.PathLike,
    binarize: bool,
    x_test: np.ndarray | None = None,
    resume: bool = False,
    eval_every: int = 10,
    verbose: int | str = "auto",
) -> tuple[VAE, dict]:
    """Trains `model` per `recipe`, checkpointing every epoch into `directory`.

    With `resume=True` and a checkpoint in `directory`, training continues from
    the last completed epoch with the saved weights, optimizer state and noise
    generator, and sees the same batches as an uninterrupted run.

    Args:
        model: a fresh model (ignored when resuming from a checkpoint).
        x_train: float32 pixels in [0, 1], shape (n, D).
        recipe: the recipe; its `epochs` is the total number of epochs.
        directory: where `checkpoint.keras` and `state.json` go.
        binarize: binarize dynamically (Bernoulli models).
        x_test: evaluated (estimator B, L = 1) every `eval_every` epochs.
        resume: continue from the checkpoint in `directory` if there is one.
        verbose: Keras verbosity.

    Returns:
        The trained model and the state (log of train/test bounds, wall time).
    """
    directory = Path(directory)
    steps = len(x_train) // recipe.batch_size
    if resume and (directory / STATE).is_file():
        model, state = load_checkpoint(directory)
        requested = recipe.to_dict()
        changed = {k: (v, requested.get(k)) for k, v in state["recipe"].items()
                   if k != "epochs" and requested.get(k) != v}
        if changed:
            raise ValueError(
                f"The checkpoint in {directory} was trained with another recipe; only `epochs` may change "
                f"when resuming. Differences (checkpoint, requested): {changed}"
            )
    else:
        if (directory / STATE).exists():
            raise FileExistsError(
                f"{directory} already holds a checkpoint. Pass resume=True (--resume) to continue it, "
                "or choose another directory."
            )
        compile_model(model, recipe, steps)
        state = {"epoch": 0, "epochs": recipe.epochs, "samples_per_epoch": steps * recipe.batch_size,
                 "wall_seconds": 0.0, "recipe": recipe.to_dict(), "log": []}
    state["epochs"] = recipe.epochs
    if state["epoch"] >= recipe.epochs:
        return model, state
    ds = data_lib.train_dataset(
        x_train, recipe.batch_size, binarize, recipe.seed, first_epoch=state["epoch"],
        epochs=recipe.epochs - state["epoch"],
    )
    eval_fn = None
    if x_test is not None:
        eval_fn = lambda m: float(np.mean(m.elbo(x_test, "B", 1, seed=recipe.seed)))  # noqa: E731
    try:
        model.fit(
            ds, epochs=recipe.epochs, initial_epoch=state["epoch"], steps_per_epoch=steps, verbose=verbose,
            callbacks=[EpochCheckpoint(directory, state, eval_fn, eval_every, report=verbose != 0,
                                       save_every=max(1, CHECKPOINT_STEPS // steps))],
        )
    except KeyboardInterrupt:
        # The last checkpoint is complete on disk; resuming from it replays the
        # batches since then exactly.
        saved = json.loads((directory / STATE).read_text())["epoch"] if (directory / STATE).is_file() else 0
        raise KeyboardInterrupt(
            f"interrupted during epoch {state['epoch'] + 1}; the checkpoint of epoch {saved} is in "
            f"{directory}: rerun with --resume (resume=True) to continue"
        ) from None
    return model, state
