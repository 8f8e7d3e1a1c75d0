"""The paper's figures as data: which curves each has (data set, N_z, hidden units, training-set
size, method), how a run of one is identified (`Settings`), and where its curves are measured.
`reproduce` trains and measures them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.validation import check_choice, check_choices, check_positive_int
from vae_zoo.data import datasets as data_lib
from vae_zoo.model.recipes import RECIPES


@dataclass(frozen=True)
class FigureSpec:
    """One of the paper's figures: which models, trained how, measured by what."""

    title: str
    methods: tuple[str, ...]
    latent_dims: dict[str, tuple[int, ...]]  # data set -> the paper's N_z
    hidden_units: dict[str, int]
    n_train: tuple[int, ...] | None  # training-set sizes (None: the full training set)
    metric: str  # "bound" or "marginal_likelihood"
    default_samples: int  # the paper's budget
    eval_points: int  # training (and test) points measured
    linear_every: int | None = None  # measure every this many samples too (a figure on a linear axis)
    extra_methods: tuple[str, ...] = ()  # available, not drawn by default


FIGURES = {
    "figure2": FigureSpec(
        "AEVB vs wake-sleep: lower bound", ("aevb", "wake-sleep"),
        {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}, {"mnist": 500, "frey": 200},
        None, "bound", 10**8, 10_000,
    ),
    "figure3": FigureSpec(
        "AEVB vs wake-sleep vs MCEM: marginal likelihood", ("aevb", "wake-sleep", "mcem"),
        {"mnist": (3,)}, {"mnist": 100}, (1000, 50_000), "marginal_likelihood", 6 * 10**7, 1000,
        linear_every=5 * 10**6, extra_methods=("mcem-online",),
    ),
}
EVALUATIONS_PER_DECADE = 4
# method -> (model class, a name of `training.METHODS`; minibatch size, None for the whole training set)
METHODS = {"aevb": ("aevb", 100), "wake-sleep": ("wake-sleep", 100), "mcem": ("mcem", None),
           "mcem-online": ("mcem", 100)}
STEP_SIZES = (0.01, 0.02, 0.1)  # the paper's grid of Adagrad step sizes


@dataclass(frozen=True)
class Curve:
    """One line pair (train, test) of a figure: a method on one model and training set."""

    dataset: str
    latent_dim: int
    hidden_units: int
    n_train: int
    method: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-n{self.n_train}-z{self.latent_dim}-{self.method}"

    @property
    def panel(self) -> tuple[str, int, int]:
        return self.dataset, self.latent_dim, self.n_train

    @property
    def batch_size(self) -> int:
        return METHODS[self.method][1] or self.n_train

    @property
    def samples_per_epoch(self) -> int:
        """Training samples evaluated per pass over the data (whole minibatches)."""
        return self.n_train // self.batch_size * self.batch_size

    @property
    def updates_per_batch(self) -> int:
        """Weight updates per minibatch: MCEM's M-step makes 5, the others 1."""
        return 5 if METHODS[self.method][0] == "mcem" else 1


@dataclass(frozen=True)
class Settings:
    """What makes two runs of a figure the same experiment (the budget may grow)."""

    figure: str
    seed: int = 0
    learning_rate: float | None = None  # None: chosen per curve from STEP_SIZES
    selection_updates: int = 500  # weight updates past Adagrad's warm-up after which the step size is chosen
    init_std: float = RECIPES["paper"].init_stddev
    eval_points: int = 1000
    ml_samples: int = 100  # App. D: L posterior samples per point, twice
    ml_burnin: int = 100
    ml_leapfrog: int = 4  # App. E measured MCEM's marginal likelihood with 4 leapfrog steps
    # The App. D sampler's version: 2 adapts a step size per chain and jitters it (points of version 1,
    # one shared step size, are not comparable and are not continued); 4 runs APP_D_CHAINS chains per
    # image from distinct posterior modes and records their disagreement (a missed mode shows). (3 started
    # them from prior draws and missed modes that 4 finds: not continued either.)
    ml_estimator: int = 2

    @property
    def key(self) -> str:
        """The run's work folder: the stem and a digest of every setting, so checkpoints measured
        or trained under other settings are never continued under these."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.stem}-{digest}"

    @property
    def stem(self) -> str:
        """The name of the run's results and work folder: the figure, and the initial scale when it
        is not the paper's."""
        default = self.init_std == RECIPES["paper"].init_stddev
        return self.figure if default else f"{self.figure}-init-std-{self.init_std:g}"


def curves(figure: str, datasets=None, latent_dims=None, n_train=None, methods=None) -> list[Curve]:
    """The curves of `figure`, optionally only some data sets, N_z, training-set sizes or methods.

    Raises:
        InvalidArgumentError: a choice the figure does not have, naming the ones it has.
    """
    spec = FIGURES[check_choice("figure", figure, FIGURES)]
    datasets = check_choices("dataset", datasets or list(spec.latent_dims), spec.latent_dims)
    methods = check_choices("method", methods or list(spec.methods), spec.methods + spec.extra_methods)
    available = sorted({z for d in datasets for z in spec.latent_dims[d]})
    if latent_dims:
        for z in latent_dims:
            if z not in available:
                raise InvalidArgumentError(f"{figure} has no model with N_z = {z} for {', '.join(datasets)}; "
                                           f"accepted: {available}")
    if spec.n_train is None:
        if n_train:
            raise InvalidArgumentError(f"{figure} trains on the full training sets; --n-train is for figure3")
        sizes = {d: [data_lib.DATASETS[d].train_size] for d in datasets}
    else:
        full = {d: data_lib.DATASETS[d].train_size for d in datasets}
        for n in n_train or ():
            if not 100 <= check_positive_int("n_train", n) <= min(full.values()):
                raise InvalidArgumentError(f"--n-train must be between 100 (one minibatch) and "
                                           f"{min(full.values())}. Received: {n}")
        sizes = {d: list(n_train or spec.n_train) for d in datasets}
    return [Curve(d, z, spec.hidden_units[d], n, m) for d in datasets for z in spec.latent_dims[d]
            if not latent_dims or z in latent_dims for n in sizes[d] for m in methods]


def evaluation_epochs(samples_per_epoch: int, epochs: int, linear_every: int | None = None) -> set[int]:
    """Epochs at which a curve is measured: EVALUATIONS_PER_DECADE per decade of samples, every
    `linear_every` samples (if given), and the last."""
    points = {max(1, round(10 ** (k / EVALUATIONS_PER_DECADE) / samples_per_epoch))
              for k in range(int(EVALUATIONS_PER_DECADE * math.log10(samples_per_epoch * epochs)) + 1)}
    if linear_every:
        points |= {round(k * linear_every / samples_per_epoch)
                   for k in range(1, samples_per_epoch * epochs // linear_every + 1)}
    return {e for e in points if e <= epochs} | {epochs}


def rounds(samples: int) -> list[int]:
    """The budgets of a run's rounds: 10^6, 10^7, ... below `samples`, then `samples`."""
    return [10**k for k in range(6, 12) if 10**k < samples] + [samples]
