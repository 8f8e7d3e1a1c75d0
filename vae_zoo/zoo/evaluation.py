"""Measured metrics of a model card: test and train ELBO, importance-weighted log-likelihood."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.progress import ProgressFile
from vae_zoo.core.summaries import mean_and_se, plus_minus  # noqa: F401 (plus_minus: the cards' format)
from vae_zoo.core.validation import check_positive_int, check_seed
from vae_zoo.data import datasets as data
from vae_zoo.data import shapes
from vae_zoo.model.vae import VAE

# Fixed binarization of the *training* set for the train ELBO of Bernoulli models.
TRAIN_BINARIZATION_SEED = data.TEST_BINARIZATION_SEED + 1


def _elbo(model: VAE, x: np.ndarray, estimator: str, seed: int) -> dict:
    """Mean and standard error of the per-datapoint bound (L = 1), 1,000 datapoints at a time."""
    values = [model.elbo(x[i:i + 1000], estimator, 1, seed=seed).numpy() for i in range(0, len(x), 1000)]
    return mean_and_se(np.concatenate(values))


def dataset_of(model: VAE) -> str:
    """The name of the data set whose images have the model's input size."""
    for name, info in data.DATASETS.items():
        if info.input_dim == model.input_dim:
            return name
    sizes = ", ".join(f"{name}: {info.input_dim}" for name, info in data.DATASETS.items())
    raise InvalidArgumentError(
        f"No data set of the zoo has input_dim={model.input_dim}; a model of your own data has no test set "
        f"here. Available: {sizes}. Received: input_dim={model.input_dim}"
    )


class EvaluationData(NamedTuple):
    """The images a model is measured on, as its likelihood needs them (binarized for Bernoulli)."""

    x_test: np.ndarray
    x_train: np.ndarray | None
    test_set: str
    train_set: str
    dataset: str


def evaluation_data(model: VAE, preset: str | os.PathLike | None = None,
                    data_path: str | os.PathLike | None = None, binarize: bool = True) -> EvaluationData:
    """What `model` (the preset `preset`) is measured on: the images at `data_path`; else, for a
    model of the user's data, the held-out rows its card records (re-read and checked against
    the card's fingerprint); else its data set's test split (MNIST, Frey Face).

    Grey levels are binarized with a fixed seed for a Bernoulli model (`binarize`), as the
    card's metrics measure them.

    Raises:
        InvalidArgumentError: data of another image shape, or recorded data that is gone or changed.
    """
    from vae_zoo.core import preset_format
    from vae_zoo.data import user_data
    from vae_zoo.data.shards import Shards

    card_data = preset_format.read_card(preset).get("data", {}) if preset is not None else {}
    recorded = card_data.get("kind") in ("npy", "npz", "images", "shards")
    if data_path is None and not recorded:
        name = dataset_of(model)
        x_train = data.load(name, "train")
        if model.is_binary:
            x_train = data.binarize(x_train, TRAIN_BINARIZATION_SEED)
        return EvaluationData(
            data.test_set(name, model.is_binary), x_train,
            f"{name} test images" + (", fixed binarization (see data)" if model.is_binary else ""),
            f"all {len(x_train)} training images" + (
                f", binarized with numpy default_rng({TRAIN_BINARIZATION_SEED})" if model.is_binary else ""), name)
    source = data_path if data_path is not None else card_data["source"]
    label = str(preset) if preset is not None else "the model"
    if data_path is None and "holdout" not in card_data:
        raise InvalidArgumentError(f"{label}'s card records its data ({source}) but not how it was split; pass the "
                                   "images to measure on with --data PATH.")
    if data_path is None:  # the recorded data, found from wherever the command runs (the fingerprint checks it)
        folder = preset_format.preset_path(preset)
        places = [card_data.get("path"), source, folder.parent / source, folder / source]
        source = next((str(p) for p in places if p and Path(p).exists()), source)
    try:
        read = user_data.read(source)
    except (InvalidArgumentError, FileNotFoundError) as err:
        if data_path is not None:
            raise
        raise InvalidArgumentError(f"{label} was trained on {source}, which cannot be read now ({err}); pass the "
                                   "images to measure on with --data PATH.") from None
    if data_path is None and read.describe()["sha256"] != card_data.get("sha256"):
        raise InvalidArgumentError(f"{source} differs from the data {label} was trained on (its sha256 is not the "
                                   "card's): pass the images to measure on with --data PATH.")
    if read.input_dim != model.input_dim:
        raise InvalidArgumentError(f"{source} has {read.input_dim} pixels per image but {label} takes "
                                   f"{model.input_dim}: give images of the model's size.")
    shapes.check_image_shape(str(source), read.image_shape, shapes.image_shape(preset, model.input_dim)
                                    if preset is not None else None, label)
    if data_path is None:  # the recorded split's held-out rows, as training measured them
        _, x_test, _ = read.split(card_data["holdout"], card_data.get("split_seed", 0))
        what = f"the {len(x_test)} held-out rows of {source} (the card's split)"
    else:
        x_test = read.heldout() if isinstance(read, Shards) else read.x
        what = f"{len(x_test)} images of {source}" + (" (the shards' held-out part)" if isinstance(read, Shards)
                                                       else "")
    if binarize and model.is_binary and not np.isin(x_test, (0.0, 1.0)).all():
        x_test = data.binarize(x_test, data.TEST_BINARIZATION_SEED)
        what += f", binarized with numpy default_rng({data.TEST_BINARIZATION_SEED})"
    return EvaluationData(x_test, None, what, "", str(source))


def evaluate(model: VAE, k: int = 5000, n_test: int | None = None, seed: int = 0, verbose: bool = True,
             log_likelihood=None, preset: str | os.PathLike | None = None,
             data_path: str | os.PathLike | None = None, n_train: int | None = None) -> dict:
    """Measures a model on its data set's test (and train) split, in nats per datapoint; or on
    the user's data (see `evaluation_data`).

    Args:
        model: a trained VAE of MNIST (784) or Frey Face (560) data, or of the user's data.
        k: importance samples of the log-likelihood estimate (0 to skip it).
        n_test: use only the first n test points (None: the full test set).
        n_train: the train ELBO on the first n training points only (None: the full training set).
        seed: seed of all Monte Carlo noise; same seed, same numbers.
        verbose: print progress.
        log_likelihood: (model, x, k, seed, verbose) -> per-row estimates, in place of
            `model.log_likelihood` (e.g. `distributed.log_likelihood`, shared out across workers).
        preset: the preset `model` was loaded from (its card says what a model of the user's data
            was trained on).
        data_path: measure on these images instead (a .npy/.npz file, an image folder, shards).

    Returns:
        A dict for the card's "metrics": test ELBO with estimators B and A
        (L = 1, mean and standard error over datapoints), importance-weighted
        log-likelihood with k samples, train ELBO (B), and the protocol.
    """
    chosen = evaluation_data(model, preset, data_path)
    x_test = chosen.x_test
    if n_test is not None and not 0 < check_positive_int("n_test", n_test) <= len(x_test):
        raise InvalidArgumentError(f"`n_test` must be at most the {len(x_test)} test images. Received: n_test={n_test}")
    x_test = x_test[:n_test]
    x_train, train_set = chosen.x_train, chosen.train_set
    if n_train is not None and x_train is not None:
        if not 0 < check_positive_int("n_train", n_train) <= len(x_train):
            raise InvalidArgumentError(f"`n_train` must be at most the {len(x_train)} training images. Received: "
                                       f"n_train={n_train}")
        x_train, train_set = x_train[:n_train], f"the first {n_train} of {chosen.train_set}"
    test_set = (f"{len(x_test)} {chosen.test_set}" if chosen.dataset in data.DATASETS else
                chosen.test_set if n_test is None else f"the first {len(x_test)} of {chosen.test_set}")
    return {"dataset": chosen.dataset, **measure(model, x_test, x_train, k, seed, verbose,
                                                 log_likelihood=log_likelihood, test_set=test_set,
                                                 train_set=train_set)}


def measure(model: VAE, x_test: np.ndarray, x_train: np.ndarray | None, k: int, seed: int = 0, verbose: bool = False,
            test_set: str = "", train_set: str = "", log_likelihood=None) -> dict:
    """The card's metrics of `model` on given test and training data (already binarized
    where the model is Bernoulli): ELBO B and A on `x_test`, ELBO B on `x_train` (if given), and the
    importance-weighted log p(x) of `x_test` with `k` samples (0 skips it)."""
    if k:
        check_positive_int("k", k)
    seed = check_seed("seed", seed, allow_none=False)
    metrics = {
        "n_test": len(x_test),
        "seed": seed,
        "test_elbo_B": _elbo(model, x_test, "B", seed),
        "test_elbo_A": _elbo(model, x_test, "A", seed),
    }
    if x_train is not None:
        metrics["train_elbo_B"] = _elbo(model, x_train, "B", seed)
    if k:
        start = time.time()
        ll = (log_likelihood(model, x_test, k, seed, verbose) if log_likelihood
              else model.log_likelihood(x_test, num_samples=k, seed=seed, verbose=verbose))
        metrics["test_log_likelihood"] = {**mean_and_se(ll), "k": k, "seconds": round(time.time() - start, 1)}
    metrics["units"] = "nats per datapoint (sum over pixels)"
    metrics["test_set"] = test_set
    if x_train is not None:
        metrics["train_set"] = train_set
    return metrics


EXACT_GRIDS = {2: 801, 3: 121}  # grid points per axis of the quadrature, by latent size
# When the shared grid is too coarse: grid points per axis of the grid that locates each image's
# posterior, of the grid over its own box, and of the coarser box grid that checks it (by latent
# size; a 3-D box costs about 1.5 s per image on one core).
EXACT_LOCATOR_POINTS = {2: 801, 3: 61}
EXACT_BOX_POINTS = {2: 201, 3: 41}
EXACT_BOX_CHECK_POINTS = {2: 101, 3: 31}
EXACT_TOLERANCE = 0.01  # nats: the largest change from halving the grid that is accepted


EXACT_BLOCK = 100  # images integrated on their own boxes between two saves of the progress file


def exact_log_likelihood(model: VAE, x: np.ndarray, test_set: str, verbose: bool = True,
                         progress: str | os.PathLike | None = None) -> dict:
    """log p(x) of a model with a 2-D or 3-D latent space by quadrature (`estimators.exact`): its
    mean over `x` with the standard error of that mean over the images, and the grid check (the
    largest change on a coarser grid: half the points per axis on the first 100 images for the
    shared grid, EXACT_BOX_CHECK_POINTS on every image for per-image boxes). A model whose posteriors are too narrow
    for the shared grid (a Gaussian decoder with small learned variances, a trained 3-D model) is
    integrated on a grid over each image's own box instead.

    Args:
        model: the model; x: its images; test_set: what `x` is, for the result.
        verbose: print progress.
        progress: a file (.npz) that keeps the per-image values every EXACT_BLOCK images, so that
            the same call continues where an interrupted one stopped (a 3-D model on 10,000 images
            takes hours); a file of another model, other images or other grids is refused.

    Raises:
        EstimateError: the grid check exceeds EXACT_TOLERANCE (use App. D or AIS), or a latent
            space that quadrature does not cover.
        InvalidArgumentError: `progress` belongs to another measurement.
    """
    from vae_zoo.core.errors import EstimateError
    from vae_zoo.estimators import exact

    points = EXACT_GRIDS.get(model.latent_dim)
    if points is None:
        raise EstimateError(f"Exact log p(x) by quadrature covers latent spaces of 2 or 3 dimensions; this model's "
                            f"has {model.latent_dim}.")
    side, z = exact.QUADRATURE_HALF_WIDTH, model.latent_dim
    locator, box_points, check_points = EXACT_LOCATOR_POINTS[z], EXACT_BOX_POINTS[z], EXACT_BOX_CHECK_POINTS[z]
    unmeasured = {"shared_check": np.array(np.nan), **{name: np.full(len(x), np.nan) for name in ("values", "checks")}}
    saved = ProgressFile(progress, "`evaluate --exact`", (points, locator, box_points, check_points),
                         [*model.get_weights(), x], unmeasured)
    saved.save()  # an unwritable progress file is refused before the work, not after it
    grid = f"{points}^{z} points over [-{side:g}, {side:g}]^{z} (rectangle rule)"
    if not saved["shared_check"] > EXACT_TOLERANCE:  # not measured (NaN), or passed (a passed check is never saved)
        values = exact.quadrature(model, x, points=points, verbose=verbose)
        check = float(np.max(np.abs(exact.quadrature(model, x[:100], points=points // 2 + 1) - values[:100])))
        saved["shared_check"] = np.array(check)
    else:
        check = float(saved["shared_check"])
    if check <= EXACT_TOLERANCE:
        saved.discard()  # nothing to continue: the shared grid is one pass
    else:
        if verbose:
            print(f"The shared grid is too coarse (halving it moves log p(x) by {check:.3g} nats): integrating on "
                  "a grid over each image's own box", flush=True)
        saved.save()
        boxes = exact.posterior_boxes(model, x, points=locator)

        def measure(rows):
            values = exact.quadrature_in_boxes(model, x[rows], boxes[rows], box_points)
            return {"values": values,
                    "checks": np.abs(exact.quadrature_in_boxes(model, x[rows], boxes[rows], check_points) - values)}

        _by_blocks(saved, len(x), EXACT_BLOCK, measure, "quadrature, each image on its own box" if verbose else None)
        values, check = saved["values"], float(np.max(saved["checks"]))
        grid = (f"per image, {box_points}^{z} points over a box holding its posterior (every cell of a "
                f"{locator}^{z} grid over [-{side:g}, {side:g}]^{z} within {exact.BOX_DROP:g} nats of its highest "
                "log p(x, z)), rectangle rule")
    if not check <= EXACT_TOLERANCE:
        raise EstimateError(f"The quadrature grid is too coarse for this model: halving it moves log p(x) by "
                            f"{check:.3g} nats (accepted: {EXACT_TOLERANCE}). Use App. D or AIS instead.")
    return {**mean_and_se(values), "n": len(values),
            "kind": "exact up to quadrature error (not a bound)", "grid": grid,
            "grid_check": round(check, 5), "test_set": test_set, "seconds": round(saved.elapsed(), 1)}


def _by_blocks(saved: ProgressFile, n: int, block: int, measure, label: str | None) -> None:
    """Measures the rows of `saved` not measured yet (NaN values), `block` at a time: `measure(rows)`
    -> {field: values of those rows}; the file is saved after each block, a line printed (label)."""
    for start in range(0, n, block):
        rows = slice(start, start + block)
        if np.isnan(saved["values"][rows]).any():
            for name, values in measure(rows).items():
                saved[name][rows] = values
            saved.save()
        if label:
            print(f"{label}: {min(start + block, n):,} of {n:,} images, {saved.elapsed():.0f} s", flush=True)


AIS_SETTINGS = {"num_chains": 16, "num_steps": 500, "num_leapfrog_steps": 10}  # the card's protocol
AIS_TEST_IMAGES = 1000  # the first N test images a card's AIS estimate covers
AIS_BLOCK = 100  # images estimated together (one batch of the estimator) between two saves of the progress file


def ais_log_likelihood(model: VAE, x: np.ndarray, test_set: str, seed: int = 0, verbose: bool = True,
                       progress: str | os.PathLike | None = None) -> dict:
    """log p(x) by annealed importance sampling (`marginal_likelihood.ais`, AIS_SETTINGS): its mean
    over `x` with the standard error of that mean over the images, and the mean HMC acceptance. Each
    image's value is a stochastic lower bound of its log p(x) (unbiased for p(x), not for log p(x)),
    independent of the encoder; it tightens as the number of steps grows.

    Args:
        model: the model; x: its images; test_set: what `x` is, for the result.
        seed: seed of the chains (an image's estimate depends on the seed and its row only).
        verbose: print progress.
        progress: a file (.npz) that keeps the per-image estimates every AIS_BLOCK images, so that
            the same call continues where an interrupted one stopped, to the same result; a file of
            another model, other images, seed or settings is refused.

    Raises:
        InvalidArgumentError: `progress` belongs to another measurement.
    """
    from vae_zoo.estimators import marginal_likelihood, mcmc

    fields = ("values", "acceptance", "disagreement")
    saved = ProgressFile(progress, "`evaluate --ais`", (AIS_SETTINGS, seed), [*model.get_weights(), x],
                         {name: np.full(len(x), np.nan) for name in fields})
    saved.save()  # an unwritable progress file is refused before the work, not after it

    def measure(rows):
        estimate = marginal_likelihood.ais(model, x[rows], seed=seed, batch_size=AIS_BLOCK, first_row=rows.start,
                                           **AIS_SETTINGS)
        return dict(zip(fields, (estimate.log_likelihood, estimate.acceptance, estimate.disagreement), strict=True))

    _by_blocks(saved, len(x), AIS_BLOCK, measure, "AIS" if verbose else None)
    estimate = mcmc.AIS(*(saved[name].astype(np.float32) for name in fields))
    result = {**mean_and_se(estimate.log_likelihood), "n": len(x),
              "kind": f"AIS estimate ({', '.join(f'{k[4:]} {v}' for k, v in AIS_SETTINGS.items())}): a stochastic "
                      "lower bound per image, encoder-free",
              "acceptance": round(float(np.mean(estimate.acceptance)), 3),
              "flagged": len(marginal_likelihood.flagged(estimate)), "seed": seed, "test_set": test_set,
              "seconds": round(saved.elapsed(), 1)}
    saved.discard()  # done: the result holds it
    return result
