"""Checkpoints of a training run: one folder holding the model (with optimizer state) and the
training state (epoch, log, recipe), replaced as a unit; the per-epoch callback that writes them."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from vae_zoo.core.errors import InvalidArgumentError, OutputExistsError, TrainingError, first_line
from vae_zoo.core.io import atomic_write_text, file_sha256, read_json_object, staged_dir
from vae_zoo.model.recipes import Recipe, compile_model
from vae_zoo.model.vae import VAE

# A checkpoint is one folder, replaced as a unit: the model with its optimizer state, and
# the training state (epoch, log, recipe), so the two always belong together.
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT = "model.keras"
# Checkpoint every epoch, or every few epochs when epochs are shorter than this
# many steps (Frey Face: 17 steps), so saving does not dominate training.
CHECKPOINT_STEPS = 500
STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: logs the training bound; at the epochs `evaluate_at` accepts (and at
    the end) adds `evaluate(model)`'s numbers to the log and prints the progress and ETA (also after
    the first epoch of the session, so a long run says early how long it will take); every
    `save_every` epochs, at evaluations and at the end, saves the model (with optimizer state)
    and the log atomically; after an evaluation's checkpoint is on disk, calls
    `after_evaluation(state)` (e.g. to publish the curve so far).

    An interruption at any moment leaves the previous complete checkpoint.
    """

    def __init__(self, directory: Path, state: dict, evaluate=None, evaluate_at=lambda epoch: True,
                 report: bool = True, save_every: int = 1, after_evaluation=None):
        super().__init__()
        self.after_evaluation = after_evaluation
        self.save_every = save_every
        self.directory = Path(directory)
        self.state = state
        self.evaluate = evaluate
        self.evaluate_at = evaluate_at
        self.report = report
        self._t0 = time.time()
        self._first_epoch = state["epoch"]
        self._session_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        logs = logs or {}
        row = {"epoch": done, "samples_seen": done * self.state["samples_per_epoch"]}
        row.update({f"train_{k}": round(float(logs[k]), 4) for k in ("elbo", "kl") if k in logs})
        evaluated = self.evaluate is not None and (self.evaluate_at(done) or done == self.state["epochs"])
        if evaluated:
            row.update({k: round(float(v), 4) for k, v in self.evaluate(self.model).items()})
        seconds = time.time() - self._t0
        self._t0 = time.time()
        self._session_seconds += seconds
        self.state["wall_seconds"] += seconds
        self.state["epoch"] = done
        self.state["log"].append(row)
        if evaluated or done % self.save_every == 0 or done == self.state["epochs"]:
            if not all(np.isfinite(w).all() for w in self.model.get_weights()):
                raise TrainingError(f"Training diverged: non-finite weights after epoch {done}. "
                                    f"{_kept(self.directory)} Try a lower learning rate (--lr).")
            save_checkpoint(self.model, self.directory, self.state)
        if evaluated and self.after_evaluation is not None:
            self.after_evaluation(self.state)
        if self.report and (evaluated or done == self._first_epoch + 1):  # the first epoch gives an early ETA
            eta = self._session_seconds / (done - self._first_epoch) * (self.state["epochs"] - done)
            measured = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in row.items()
                                 if k not in ("epoch", "samples_seen", "train_kl"))
            print(f"epoch {done}/{self.state['epochs']}: {measured}; ETA {eta / 60:.1f} min", flush=True)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with a `TrainingError` naming the step as soon as the loss is NaN or inf;
    the last checkpoint, saved from finite weights, stays as it is."""

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = Path(directory)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations)
            raise TrainingError(
                f"Training diverged: the loss is {float(loss)} at step {step}. {_kept(self.directory)} "
                "Try a lower learning rate (--lr) or check the data."
            )


_START_OVER = "It is not a checkpoint vae-zoo wrote: move the folder away to start the run over."


def _kept(directory: Path) -> str:
    state = directory / CHECKPOINT_DIR / STATE
    if not state.is_file():
        return "No checkpoint was saved yet; nothing was written."
    epoch = read_json_object(state, {"epoch": int}, TrainingError, _START_OVER)["epoch"]
    return f"The checkpoint of epoch {epoch} is in {directory} (kept)."


def save_checkpoint(model: VAE, directory: Path, state: dict) -> None:
    """Writes the model (with optimizer state) and `state` as one folder, replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    with staged_dir(directory / CHECKPOINT_DIR, overwrite=True) as tmp:
        model.save(tmp / CHECKPOINT)
        state["model_sha256"] = file_sha256(tmp / CHECKPOINT)  # ties the model file to this state
        atomic_write_text(tmp / STATE, json.dumps(state, indent=1))


def has_checkpoint(directory: Path) -> bool:
    return (Path(directory) / CHECKPOINT_DIR / STATE).is_file()


def load_checkpoint(directory: Path) -> tuple[VAE, dict]:
    """The model (with optimizer state) and training state of the checkpoint in `directory`.

    Raises:
        TrainingError: a checkpoint that cannot be read, or that does not hold a VAE.
    """
    folder = Path(directory) / CHECKPOINT_DIR
    try:
        state = json.loads((folder / STATE).read_text())
        if not isinstance(state, dict):
            raise ValueError(f"{STATE} holds {type(state).__name__}, not an object")
        recorded = state.get("model_sha256")
        if recorded is not None and file_sha256(folder / CHECKPOINT) != recorded:
            raise TrainingError(f"The checkpoint in {folder} does not hold the model its {STATE} was saved with "
                                f"({CHECKPOINT} was replaced or changed). Put back the run's own {CHECKPOINT}, or "
                                "move the folder away to start the run over.")
        model = keras.saving.load_model(folder / CHECKPOINT)  # safe mode: no code from the file runs
    except (OSError, ValueError, TypeError, KeyError, AttributeError, zipfile.BadZipFile) as err:
        raise TrainingError(f"The checkpoint in {folder} cannot be loaded ({first_line(err)}). Move it away to start "
                            "the run over, or give another --out or --workdir.") from None
    if not isinstance(model, VAE):
        raise TrainingError(f"The checkpoint in {folder} holds a {type(model).__name__}, not a vae-zoo VAE. Move it "
                            "away, or give another --out or --workdir.")
    return model, state


ARCHITECTURE = ("input_dim", "latent_dim", "hidden_units", "likelihood", "activation", "estimator", "num_samples")


def architecture(model: VAE) -> dict:
    """What a checkpoint must share with the run that continues it: the model class and the fields of
    its config that shape the network and its objective."""
    config = model.get_config()
    return {"class": type(model).__name__, **{k: config.get(k) for k in ARCHITECTURE}}


def start_or_resume(model: VAE, recipe: Recipe, directory: Path, resume: bool, steps: int,
                    identity: dict | None = None) -> tuple[VAE, dict]:
    """The model and training state to start from: the checkpoint in `directory` (`resume`; only
    the recipe's `epochs` may differ, and the run's `identity` not at all), or `model` compiled
    per `recipe` with a fresh state (refused if `directory` already holds a checkpoint).

    Args:
        identity: what else makes the run this run (data fingerprint, split, architecture, source
            preset and its sha256, ...), recorded in the checkpoint's state and compared on resume.
    """
    identity = json.loads(json.dumps(identity or {}))  # as the state file holds it
    if has_checkpoint(directory):
        state = read_json_object(directory / CHECKPOINT_DIR / STATE, {"epoch": int}, TrainingError, _START_OVER)
        recorded = state.get("identity", {})
        if not isinstance(recorded, dict):
            raise TrainingError(f"{directory / CHECKPOINT_DIR / STATE} has no valid 'identity'. {_START_OVER}")
        differences = {k: (recorded.get(k), identity.get(k)) for k in sorted({*recorded, *identity})
                       if recorded.get(k) != identity.get(k)}
        if differences:
            raise InvalidArgumentError(
                f"The checkpoint in {directory} belongs to another run; differences (checkpoint, this run): "
                f"{differences}. Rerun that run's own command to continue it, or give this run another "
                "--out or --workdir.")
    if resume:
        run_architecture = architecture(model) if model is not None else None  # None: whatever was saved
        model, state = load_checkpoint(directory)
        differences = {k: (v, run_architecture.get(k)) for k, v in architecture(model).items()
                       if run_architecture is not None and run_architecture.get(k) != v}
        if differences:
            raise InvalidArgumentError(
                f"The checkpoint in {directory} holds another model than this run trains; differences "
                f"(checkpoint, this run): {differences}. Rerun that run's own command to continue it, or give "
                "this run another --out or --workdir.")
        requested = recipe.to_dict()
        changed = {k: (v, requested.get(k)) for k, v in state["recipe"].items()
                   if k != "epochs" and requested.get(k) != v}
        if changed:
            raise InvalidArgumentError(
                f"The checkpoint in {directory} was trained with another recipe; only `epochs` may change "
                f"when resuming. Differences (checkpoint, requested): {changed}"
            )
    else:
        if has_checkpoint(directory):
            raise OutputExistsError(
                f"{directory} already holds a checkpoint. Pass resume=True (--resume) to continue it, "
                "or choose another directory."
            )
        compile_model(model, recipe, steps)
        state = {"epoch": 0, "epochs": recipe.epochs, "samples_per_epoch": steps * recipe.batch_size,
                 "wall_seconds": 0.0, "recipe": recipe.to_dict(), "identity": identity, "log": []}
    state["epochs"] = recipe.epochs
    return model, state
