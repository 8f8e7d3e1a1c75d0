"""Training: a fresh model from a recipe, `fit` with checkpoints and exact resume, and
training a preset of the zoo into a preset folder (what `vae-zoo train NAME` runs)."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import keras
import numpy as np

from vae_zoo.core.cluster import Cluster
from vae_zoo.core.errors import InvalidArgumentError, OutputExistsError
from vae_zoo.core.io import check_replaceable, exclusive_lock, file_sha256, overlap, require_free_space
from vae_zoo.core.preset_format import (
    WEIGHTS,
    preset_files,
    preset_path,
    unknown_preset,
)
from vae_zoo.core.validation import check_choice
from vae_zoo.data import datasets as data_lib
from vae_zoo.data.shapes import check_image_shape, image_shape
from vae_zoo.data.shards import Shards
from vae_zoo.data.user_data import UserData
from vae_zoo.model.baselines import MCEM, WakeSleep
from vae_zoo.model.recipes import Recipe
from vae_zoo.model.vae import VAE
from vae_zoo.training import distributed
from vae_zoo.training.checkpoints import (  # noqa: F401 (re-exported: training.save_checkpoint etc.)
    CHECKPOINT_STEPS,
    EpochCheckpoint,
    StopOnNonFiniteLoss,
    _kept,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
    start_or_resume,
)
from vae_zoo.zoo import evaluation
from vae_zoo.zoo.evaluation import dataset_of
from vae_zoo.zoo.presets import PRESETS

# How the encoder and decoder are trained: AEVB (the paper's method) or a baseline.
METHODS = {"aevb": VAE, "wake-sleep": WakeSleep, "mcem": MCEM}


def build_model(architecture: dict, recipe: Recipe, n_train: int, method: str = "aevb") -> VAE:
    """A fresh model for `architecture` (VAE keyword arguments) set up by `recipe`:
    its estimator, L, parameter prior (scale 1 / n_train) and seeded initial weights;
    `method` is "aevb" (a `VAE`), "wake-sleep" (a `WakeSleep`) or "mcem" (an `MCEM`, with one
    chain per training example), same layers every way."""
    init = (
        keras.initializers.RandomNormal(stddev=recipe.init_stddev, seed=recipe.seed)
        if recipe.init_stddev is not None
        else keras.initializers.GlorotUniform(seed=recipe.seed)
    )
    cls = METHODS[check_choice("method", method, METHODS)]
    per_example = {"num_datapoints": n_train} if cls.uses_example_indices else {}
    return cls(
        **architecture,
        **per_example,
        estimator=recipe.estimator,
        num_samples=recipe.num_samples,
        parameter_prior_scale=1.0 / n_train if recipe.parameter_prior else 0.0,
        kernel_initializer=init,
        seed=recipe.seed,
    )


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
    evaluate=None,
    evaluate_at=None,
    report: bool | None = None,
    identity: dict | None = None,
    after_evaluation=None,
) -> tuple[VAE, dict]:
    """Trains `model` per `recipe`, checkpointing every epoch into `directory`.

    With `resume=True` and a checkpoint in `directory`, training continues from
    the last completed epoch with the saved weights, optimizer state and noise
    generator, and sees the same batches as an uninterrupted run.

    Args:
        model: a fresh model (ignored when resuming from a checkpoint).
        x_train: float32 pixels in [0, 1], shape (n, D), or `Shards` streamed from disk.
        recipe: the recipe; its `epochs` is the total number of epochs.
        directory: where the checkpoint folder (model.keras, state.json) goes.
        binarize: binarize dynamically (Bernoulli models).
        x_test: evaluated (estimator B, L = 1; `test_elbo` in the log) every `eval_every` epochs.
        resume: continue from the checkpoint in `directory` (an error if there is none).
        verbose: 0 for silence, else a line per measured epoch (the held-out ELBO and the ETA).
        evaluate: instead of `x_test`: model -> {name: number}, logged at the epochs
            `evaluate_at(epoch)` accepts (default: every `eval_every`-th) and at the end.
        report: print a line per evaluation (default: when `verbose` is not 0).
        identity: what else makes the run this run (see `checkpoints.start_or_resume`); a
            checkpoint of a run with another identity is never continued.
        after_evaluation: state -> None, called after every evaluation once its checkpoint is
            on disk (the state holds the log so far).

    Returns:
        The trained model and the state (log of train/test bounds, wall time).
    """
    directory = Path(directory)
    if resume and not has_checkpoint(directory):
        raise InvalidArgumentError(f"Nothing to resume: {directory} holds no checkpoint. Start without "
                                   "resume=True (--resume), or point to the run's folder (--workdir).")
    with exclusive_lock(directory, "training"):
        if evaluate is None and x_test is not None:
            def evaluate(m):
                return {"test_elbo": np.mean(m.elbo(x_test, "B", 1, seed=recipe.seed))}
        return _fit_with_checkpoints(model, x_train, recipe, directory, binarize, resume, verbose, evaluate,
                                     evaluate_at or (lambda epoch: epoch % eval_every == 0),
                                     verbose != 0 if report is None else report, identity, after_evaluation)


def _fit_with_checkpoints(model, x_train, recipe, directory, binarize, resume, verbose, evaluate, evaluate_at,
                          report, identity, after_evaluation):
    steps = len(x_train) // recipe.batch_size
    model, state = start_or_resume(model, recipe, directory, resume, steps, identity)
    if state["epoch"] >= recipe.epochs:
        return model, state
    if isinstance(x_train, Shards):  # streamed from disk
        if model.uses_example_indices:
            raise InvalidArgumentError("MCEM keeps one chain per example and trains from arrays, not shards.")
        ds = x_train.train_dataset(recipe.batch_size, binarize, recipe.seed, first_epoch=state["epoch"],
                                   epochs=recipe.epochs - state["epoch"])
    else:
        ds = data_lib.train_dataset(
            x_train, recipe.batch_size, binarize, recipe.seed, first_epoch=state["epoch"],
            epochs=recipe.epochs - state["epoch"], with_indices=model.uses_example_indices,
        )
    try:
        model.fit(
            ds, epochs=recipe.epochs, initial_epoch=state["epoch"], steps_per_epoch=steps, verbose=verbose,
            callbacks=[StopOnNonFiniteLoss(directory),
                       EpochCheckpoint(directory, state, evaluate, evaluate_at, report=report,
                                       save_every=max(1, CHECKPOINT_STEPS // steps),
                                       after_evaluation=after_evaluation)],
        )
    except KeyboardInterrupt:
        # The last checkpoint is complete on disk; resuming from it replays the
        # batches since then exactly.
        raise KeyboardInterrupt(
            f"interrupted during epoch {state['epoch'] + 1}; {_kept(directory)} Rerun with --resume "
            "(resume=True) to continue"
        ) from None
    return model, state


_FLAGS = {"num_samples": "samples", "learning_rate": "lr", "batch_size": "batch-size"}


def train_preset(name: str, workdir: Path, out: Path, resume: bool, overrides: dict | None = None,
                 verbose: int | str = 2, overwrite: bool = False) -> Path:
    """Trains preset `name` with its recipe (and `overrides` such as epochs or lr) and saves it to out/name.

    Checkpoints go to workdir/name (see `fit_with_checkpoints`); the card holds the
    data protocol, the recipe, the training log, the wall time and the command.
    """
    if name not in PRESETS:
        raise unknown_preset(name, list(PRESETS))
    spec = PRESETS[name]
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    recipe = spec.recipe.replace(**overrides)
    binary = spec.likelihood == "bernoulli"
    x_train = data_lib.load(spec.dataset, "train")
    x_test = data_lib.test_set(spec.dataset, binary)
    model = build_model(spec.architecture, recipe, len(x_train))
    model, state = fit_with_checkpoints(
        model, x_train, recipe, Path(workdir) / name, binary, x_test, resume=resume, verbose=0,
        report=verbose != 0,  # one line per epoch, not Keras' bar beside it
    )
    card = {
        "name": name,
        "description": spec.description,
        **({"published": spec.published} if spec.published else {}),
        "data": data_lib.protocol(spec.dataset, binary),
        "recipe": recipe.to_dict(),
        "training": {
            "epochs": state["epoch"],
            "samples_seen": state["epoch"] * state["samples_per_epoch"],
            "wall_seconds": round(state["wall_seconds"], 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}",
            "command": f"vae-zoo train {name}" + "".join(f" --{_FLAGS.get(k, k)} {v}" for k, v in overrides.items()),
            "log": state["log"],
        },
    }
    return model.save_to_preset(Path(out) / name, card, overwrite=overwrite)


TRAIN_ROWS_MEASURED = 10_000  # the train ELBO of a card of the user's data: its first rows


def train_on_data(
    data: UserData | Shards,
    out: str | os.PathLike,
    recipe: Recipe,
    workdir: str | os.PathLike = "runs",
    preset: str | None = None,
    architecture: dict | None = None,
    freeze: str | None = None,
    binarize: bool = False,
    holdout: float = 0.1,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    k: int = 1000,
    verbose: int | str = 2,
    cluster: Cluster | None = None,
    peer_timeout: float = distributed.DEFAULT_TIMEOUT,
) -> Path | None:
    """Fine-tunes `preset` (or trains a fresh model of `architecture`) on the user's data and
    writes a preset folder at `out` that `vae_zoo.load(out)` reads.

    A held-out part of the data (`holdout`, split by `recipe.seed`) is measured every few
    epochs and at the end; the card records the source preset and its weights' sha256, the
    data's description and fingerprint, the split, the recipe, the log and the held-out
    metrics (ELBO A and B, importance-weighted log p(x) with `k` samples on up to 1,000 rows;
    for fine-tuning also the source preset's numbers on the same rows).

    Args:
        data: what `user_data.read` returned (arrays in memory, or shards streamed from disk).
        out: the preset folder to create (refused if it exists, unless `overwrite`).
        recipe: optimizer, learning rate, epochs, batch size, seed.
        workdir: checkpoints go to workdir/<out's name>.
        preset: the preset (name or folder) to fine-tune; None trains `architecture` afresh.
        architecture: VAE keyword arguments of a fresh model (latent_dim, hidden_units, likelihood).
        freeze: "encoder" or "decoder": keep that network's weights fixed.
        binarize: train on x ~ Bernoulli(pixels), resampled every epoch (Bernoulli models of
            grey-level data); held-out rows get one fixed binarization.
        holdout: share of the data held out.
        resume: continue from the checkpoint in workdir.
        overwrite: replace an existing `out`.
        command: the command line, for the card.
        k: importance samples of the held-out log p(x) (0 skips it).
        verbose: 0 for silence, else a line per measured epoch (the held-out ELBO and the ETA).
        cluster: train data-parallel across these workers (`distributed.fit`; every worker calls
            this with the same arguments, having called `distributed.connect` first thing).
        peer_timeout: seconds a worker waits for its peers before it stops with an error.

    Returns:
        The preset folder (None on workers other than the chief, which writes it).
    """
    out = Path(out)
    overlap({"--out": out, "run folder (--workdir)": Path(workdir) / out.name},
            {"--data": data.folder if isinstance(data, Shards) else data.source,
             "preset": preset_path(preset) if preset is not None else None})
    if os.path.lexists(out) and not overwrite:
        raise OutputExistsError(f"{out} already exists. Choose another --out, or pass --overwrite to replace it.")
    if overwrite and os.path.lexists(out):
        check_replaceable(out, preset_files, "preset")  # before training, not after
    if (preset is None) == (architecture is None):
        raise InvalidArgumentError("Give either a preset to fine-tune or the architecture of a fresh model.")
    if freeze is not None:
        check_choice("freeze", freeze, ("encoder", "decoder"))
    source = None
    if preset is not None:
        model = VAE.from_preset(preset, compile=False)
        folder = preset_path(preset)
        source = {"preset": str(preset), "weights_sha256": file_sha256(folder / WEIGHTS)}
        if data.input_dim != model.input_dim:
            shape = "x".join(map(str, data.image_shape[::-1])) + " = " if data.image_shape else ""
            raise InvalidArgumentError(
                f"{data.describe()['source']} has {shape}{data.input_dim} pixels per image but {preset} takes "
                f"{model.input_dim}"
                f"{_images_of(model)}. Resize the images to the preset's size, or train a fresh model: "
                "vae-zoo train --data PATH --latent-dim Z.")
        check_image_shape(data.describe()["source"], data.image_shape, image_shape(preset, model.input_dim), preset)
        model.seed = recipe.seed
    likelihood = model.likelihood if preset is not None else architecture.get("likelihood", "bernoulli")
    source_name = data.describe()["source"]
    if likelihood == "bernoulli" and not data.binary and not binarize:
        raise InvalidArgumentError(
            f"{source_name} has grey levels (values between 0 and 1) but the model's decoder is Bernoulli (binary "
            "pixels). Pass --binarize to train on x ~ Bernoulli(pixel) as the MNIST presets do"
            + (", or train a Gaussian decoder (--likelihood gaussian)." if preset is None else "."))
    if binarize and likelihood != "bernoulli":
        raise InvalidArgumentError("--binarize is for Bernoulli decoders; a Gaussian decoder models grey levels.")
    x_train, x_held, split = data.split(holdout, recipe.seed)
    if len(x_train) < recipe.batch_size:
        raise InvalidArgumentError(f"{len(x_train)} training examples after the hold-out are fewer than one batch "
                                   f"({recipe.batch_size}): lower --batch-size or give more data.")
    # One binarization of held-out rows for every command (`evaluate`, `score` use the same seed).
    x_held = data_lib.binarize(x_held, data_lib.TEST_BINARIZATION_SEED) if binarize else x_held
    before = _held_out_log_likelihood(model, x_held, k, recipe.seed, cluster) if preset is not None and k else None
    if preset is None:
        model = build_model({**architecture, "input_dim": data.input_dim}, recipe, len(x_train))
    if freeze is not None:
        getattr(model, freeze).trainable = False

    def held_out_elbo(m):
        return {"heldout_elbo": np.mean(m.elbo(x_held, "B", 1, seed=recipe.seed))}

    # The checkpoint (weights and Adagrad/Adam state, staged beside the previous one) and the
    # preset: about 8 copies of the weights, plus room for the card and the log.
    require_free_space({"--out": out, "--workdir": workdir}, 8 * 4 * model.count_params() + (16 << 20))
    fit = fit_with_checkpoints if cluster is None else functools.partial(distributed.fit, cluster=cluster,
                                                                          timeout=peer_timeout)
    identity = {"data_sha256": data.describe()["sha256"], "split": split, "binarize": binarize, "freeze": freeze,
                "source": source, "architecture": {k: getattr(model, k) for k in
                                                   ("input_dim", "latent_dim", "hidden_units", "likelihood")}}
    model, state = fit(model, x_train, recipe, Path(workdir) / out.name, binarize, resume=resume,
                       evaluate=held_out_elbo, evaluate_at=lambda e: e % max(1, recipe.epochs // 10) == 0,
                       identity=identity, **({"verbose": 0, "report": verbose != 0} if cluster is None else {}))
    held_out_ll = _held_out_log_likelihood(model, x_held, k, recipe.seed, cluster) if k else None
    if cluster is not None:
        distributed.done()
        if not cluster.is_chief:
            return None
    n = TRAIN_ROWS_MEASURED
    x_train_eval = x_train.head(n) if isinstance(x_train, Shards) else x_train[:n]
    x_train_eval = data_lib.binarize(x_train_eval, recipe.seed + 1) if binarize else x_train_eval
    metrics = evaluation.measure(model, x_held, x_train_eval, 0, recipe.seed,
                                 test_set=f"{len(x_held)} held-out rows of {source_name}",
                                 train_set=f"the first {len(x_train_eval)} of the {len(x_train)} training rows")
    if k:
        metrics["test_log_likelihood"] = held_out_ll
    if before is not None:
        metrics["source_preset_test_log_likelihood"] = before
    card = {
        "name": out.name,
        "description": (f"{preset} fine-tuned on {source_name}" if preset else
                        f"A fresh {model.input_dim}-{model.hidden_units}-{model.latent_dim} VAE trained on "
                        f"{source_name}") + (f" ({freeze} frozen)" if freeze else ""),
        "source": source,
        "data": {**data.describe(), "path": str(Path(data.describe()["source"]).resolve()), "split": split,
                 "holdout": holdout, "split_seed": recipe.seed,
                 "binarization": ("training: dynamic, x ~ Bernoulli(pixel) every epoch; held out: numpy "
                                  f"default_rng({data_lib.TEST_BINARIZATION_SEED}), as evaluate and score "
                                  "binarize them") if binarize else "none"},
        "recipe": recipe.to_dict(),
        "freeze": freeze,
        "training": {"epochs": state["epoch"], "samples_seen": state["epoch"] * state["samples_per_epoch"],
                     "wall_seconds": round(state["wall_seconds"], 1), "command": command, "log": state["log"],
                     "machine": f"{platform.machine()}, {os.cpu_count()} cores"},
        "metrics": metrics,
    }
    return model.save_to_preset(out, card, overwrite=overwrite)


def _held_out_log_likelihood(model: VAE, x: np.ndarray, k: int, seed: int,
                             cluster: Cluster | None = None) -> dict:
    """Importance-weighted log p(x) (k samples) of the first 1,000 held-out rows: mean, standard error
    (shared out across the `cluster`'s workers, if given)."""
    ll = (model.log_likelihood(x[:1000], num_samples=k, seed=seed) if cluster is None
          else distributed.log_likelihood(model, x[:1000], k, seed, cluster))
    return {"mean": round(float(ll.mean()), 3), "standard_error": round(float(ll.std() / np.sqrt(len(ll))), 3),
            "k": k, "n": len(ll)}


def _images_of(model: VAE) -> str:
    """" (28x28 mnist images)" for a model of a data set of the zoo, else ""."""
    try:
        name = dataset_of(model)
    except InvalidArgumentError:
        return ""
    h, w = data_lib.DATASETS[name].image_shape
    return f" ({w}x{h} {name} images)"
