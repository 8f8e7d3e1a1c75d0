"""Measured metrics of a model card: test and train ELBO, importance-weighted log-likelihood."""

from __future__ import annotations

import time

import numpy as np

from vae_zoo import data
from vae_zoo.errors import InvalidArgumentError
from vae_zoo.model import VAE
from vae_zoo.summaries import mean_and_se, plus_minus  # noqa: F401 (plus_minus: the cards' format)
from vae_zoo.validation import check_positive_int, check_seed

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


def evaluate(model: VAE, k: int = 5000, n_test: int | None = None, seed: int = 0, verbose: bool = True,
             log_likelihood=None) -> dict:
    """Measures a model on its data set's test (and train) split, in nats per datapoint.

    Args:
        model: a trained VAE of MNIST (784) or Frey Face (560) data.
        k: importance samples of the log-likelihood estimate (0 to skip it).
        n_test: use only the first n test points (None: the full test set).
        seed: seed of all Monte Carlo noise; same seed, same numbers.
        verbose: print progress.
        log_likelihood: (model, x, k, seed, verbose) -> per-row estimates, in place of
            `model.log_likelihood` (e.g. `distributed.log_likelihood`, shared out across workers).

    Returns:
        A dict for the card's "metrics": test ELBO with estimators B and A
        (L = 1, mean and standard error over datapoints), importance-weighted
        log-likelihood with k samples, train ELBO (B), and the protocol.
    """
    name = dataset_of(model)
    x_test = data.test_set(name, model.is_binary)
    if n_test is not None and not 0 < check_positive_int("n_test", n_test) <= len(x_test):
        raise InvalidArgumentError(f"`n_test` must be at most the {len(x_test)} test images. Received: n_test={n_test}")
    x_test = x_test[:n_test]
    x_train = data.load(name, "train")
    if model.is_binary:
        x_train = data.binarize(x_train, TRAIN_BINARIZATION_SEED)
    return {"dataset": name, **measure(
        model, x_test, x_train, k, seed, verbose, log_likelihood=log_likelihood,
        test_set=f"{len(x_test)} {name} test images" + (", fixed binarization (see data)" if model.is_binary else ""),
        train_set=f"all {len(x_train)} training images" + (
            f", binarized with numpy default_rng({TRAIN_BINARIZATION_SEED})" if model.is_binary else ""),
    )}


def measure(model: VAE, x_test: np.ndarray, x_train: np.ndarray, k: int, seed: int = 0, verbose: bool = False,
            test_set: str = "", train_set: str = "", log_likelihood=None) -> dict:
    """The card's metrics of `model` on given test and training data (already binarized
    where the model is Bernoulli): ELBO B and A on `x_test`, ELBO B on `x_train`, and the
    importance-weighted log p(x) of `x_test` with `k` samples (0 skips it)."""
    if k:
        check_positive_int("k", k)
    seed = check_seed("seed", seed, allow_none=False)
    metrics = {
        "n_test": len(x_test),
        "seed": seed,
        "test_elbo_B": _elbo(model, x_test, "B", seed),
        "test_elbo_A": _elbo(model, x_test, "A", seed),
        "train_elbo_B": _elbo(model, x_train, "B", seed),
    }
    if k:
        start = time.time()
        ll = (log_likelihood(model, x_test, k, seed, verbose) if log_likelihood
              else model.log_likelihood(x_test, num_samples=k, seed=seed, verbose=verbose))
        metrics["test_log_likelihood"] = {**mean_and_se(ll), "k": k, "seconds": round(time.time() - start, 1)}
    metrics["units"] = "nats per datapoint (sum over pixels)"
    metrics["test_set"] = test_set
    metrics["train_set"] = train_set
    return metrics
