"""App. D and AIS against the exact log p(x), where quadrature gives it (2- and 3-D latent spaces).

Three checks; each prints its table and writes it to results/app-d-CHECK.json, which docs/paper.md
renders (`<!-- app-d-CHECK-rows -->`):

- `training`: Figure 3's 784-100-3 models trained on the first 1,000 MNIST images with the paper's
  recipe (MCEM and wake-sleep, seed 0) to 10^4, 10^5 and 10^6 samples, on the first 20 binarized
  test images; App. D at Figure 3's settings (L = 100, 100 burn-in steps, 4 leapfrog steps) with
  four chains, beside one chain (the published Figure 3's estimator), and AIS.
- `preset`: a zoo preset (default mnist-z2) on the first 100 test images under several
  binarizations (default: the package's and seeds 1 and 2); App. D as `log_likelihood_hmc` runs it
  (four chains, the disagreement flag) and AIS as the model cards run it.
- `figure3`: the final models of `vae-zoo reproduce figure3` (their checkpoints in WORKDIR) on the
  20 lowest-scoring of the 1,000 training and 1,000 test images each point measures (ranked by the
  published estimator, one chain); App. D at Figure 3's settings with four chains, and AIS.

The exact value: per image, a box holding every cell of a wide grid within 40 nats of the image's
highest log p(x, z) and every chain start (`exact.posterior_boxes`), integrated on a fine grid and
on one 1.5 times finer; "refinement" is the largest change between the two (the grid's error).
Errors are estimate - exact, in nats; "missed" counts images more than a nat off and not flagged, and
each such error is listed (F where the image was flagged). AIS flags an image whose estimate falls by
more than 0.5 nats without its best chain (`mcmc.leave_best_out`). "One chain" is the paper's estimator
(`num_chains=1`: one chain per image, started at the most probable of the encoder's mean and 100 prior
draws) on the same images with the same seed. The `figure3` rows add App. D with one and with four
chains on all 1,000 images of the split: what the published single chain's means lose to misses.

    python benchmarks/estimator_validation.py training [--n 20] [--points 1e4 1e5 1e6] [--workdir runs/validation]
    python benchmarks/estimator_validation.py preset [--name mnist-z2] [--n 100] [--binarizations 20131220 1 2]
    python benchmarks/estimator_validation.py figure3 [--workdir runs/reproduce] [--n 20] [--curves NAME ...]
"""

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import vae_zoo  # noqa: E402
from vae_zoo import data  # noqa: E402
from vae_zoo.core.io import atomic_write_text  # noqa: E402
from vae_zoo.estimators import exact, marginal_likelihood  # noqa: E402
from vae_zoo.model.recipes import RECIPES, compile_model  # noqa: E402
from vae_zoo.training.checkpoints import load_checkpoint  # noqa: E402
from vae_zoo.training.train import build_model  # noqa: E402
from vae_zoo.zoo.evaluation import AIS_SETTINGS  # noqa: E402

ARCHITECTURE = dict(input_dim=784, latent_dim=3, hidden_units=100, likelihood="bernoulli")
N_TRAIN = 1000
FIGURE3 = dict(num_samples=100, num_burnin=100, num_leapfrog_steps=4)  # App. D's settings in Figure 3
GRID_POINTS = {2: (201, 201), 3: (41, 60)}  # per latent dimension: wide search grid, fine grid
COLUMNS = ["model", "images", "exact (mean)", "App. D mean abs err", "App. D worst", "flagged", "missed",
           "App. D errors > 1 nat (F: flagged)", "one chain mean abs err", "one chain worst", "App. D accept.",
           "AIS mean abs err", "AIS worst", "AIS flagged", "AIS missed", "refinement (max)", "s"]
FIGURE3_COLUMNS = ["all 1,000: one chain mean", "all 1,000: App. D mean", "all 1,000: flagged"]
RESULTS = Path(__file__).resolve().parents[1] / "results"


def exact_log_px(model, x: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact log p(x) per image (float64) and the largest change on refining the grid 1.5x."""
    search, fine = GRID_POINTS[model.latent_dim]
    boxes = exact.posterior_boxes(model, x, points=search)
    step = 10.0 / (search - 1)
    boxes[..., 0] = np.minimum(boxes[..., 0], starts.min(axis=0) - step)
    boxes[..., 1] = np.maximum(boxes[..., 1], starts.max(axis=0) + step)
    value = exact.quadrature_in_boxes(model, x, boxes, points=fine)
    refined = exact.quadrature_in_boxes(model, x, boxes, points=int(1.5 * fine))
    return refined, float(np.max(np.abs(refined - value)))


def compare(model, x: np.ndarray, label: str, images: str, chains: int, settings: dict) -> list:
    """One table row: App. D (with `chains` chains) and AIS against the exact value on `x`."""
    start = time.perf_counter()
    estimate = marginal_likelihood.app_d(model, x, **settings, seed=0, batch_size=len(x), num_chains=chains)
    one = marginal_likelihood.app_d(model, x, **settings, seed=0, batch_size=len(x), num_chains=1)
    ais = marginal_likelihood.ais(model, x, seed=0, batch_size=len(x), **AIS_SETTINGS)
    ais_flagged = np.isin(np.arange(len(x)), marginal_likelihood.flagged(ais))
    starts = marginal_likelihood.chain_starts(model, tf.constant(x), tf.constant([0, 0]), max(chains, 1)).numpy()
    truth, refinement = exact_log_px(model, x, starts)
    d_err, a_err = np.asarray(estimate.log_likelihood) - truth, np.asarray(ais.log_likelihood) - truth
    one_err = np.asarray(one.log_likelihood) - truth
    flagged = marginal_likelihood.flagged(estimate) if chains > 1 else np.array([], int)
    is_flagged = np.isin(np.arange(len(x)), flagged)
    missed = int(np.sum((np.abs(d_err) > 1.0) & ~is_flagged))
    large = ", ".join(f"{d_err[i]:+.1f}{' F' if is_flagged[i] else ''}" for i in np.flatnonzero(np.abs(d_err) > 1.0))

    def worst(err):
        return round(float(err[np.argmax(np.abs(err))]), 2)

    return [label, images, round(float(truth.mean()), 2), round(float(np.abs(d_err).mean()), 3), worst(d_err),
            len(flagged) if chains > 1 else "-", missed, large or "-", round(float(np.abs(one_err).mean()), 3),
            worst(one_err), round(float(np.mean(estimate.acceptance)), 3), round(float(np.abs(a_err).mean()), 3),
            worst(a_err), int(ais_flagged.sum()), int(np.sum((np.abs(a_err) > 1.0) & ~ais_flagged)),
            round(refinement, 4),
            round(time.perf_counter() - start)]


def trained(method: str, samples: int, workdir: Path):
    """Figure 3's model trained by `method` to `samples` training samples (kept in workdir)."""
    path = workdir / f"{method}-{samples}.weights.h5"
    recipe = RECIPES["paper"].replace(seed=0, epochs=max(1, samples // N_TRAIN))
    model = build_model(ARCHITECTURE, recipe, N_TRAIN, method)
    if path.exists():
        model.load_weights(path)
        return model
    x = data.load("mnist", "train")[:N_TRAIN]
    compile_model(model, recipe, N_TRAIN // recipe.batch_size)
    ds = data.train_dataset(x, batch_size=recipe.batch_size, seed=0, epochs=recipe.epochs, binarize_dynamically=True,
                            with_indices=model.uses_example_indices)
    model.fit(ds, epochs=recipe.epochs, steps_per_epoch=N_TRAIN // recipe.batch_size, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(path)
    return model


def check_training(args) -> list[list]:
    x = data.test_set("mnist", binary=True)[: args.n]
    return [compare(trained(method, samples, args.workdir), x, f"{method} at {samples:.0e}",
                    f"first {len(x)} test", marginal_likelihood.APP_D_CHAINS, FIGURE3)
            for method in args.methods for samples in map(int, args.points)]


def check_preset(args) -> list[list]:
    model = vae_zoo.load(args.name)
    grey = data.load("mnist", "test")[: args.n]
    return [compare(model, data.binarize(grey, seed), args.name, f"first {args.n} test, binarization {seed}",
                    marginal_likelihood.APP_D_CHAINS, {}) for seed in args.binarizations]


def check_figure3(args) -> list[list]:
    rows = []
    folders = sorted(args.workdir.glob("figure3-*/mnist-*"))
    missing = set(args.curves or []) - {folder.name for folder in folders}
    if missing:
        sys.exit(f"No checkpoint of {', '.join(sorted(missing))} in {args.workdir}: run `vae-zoo reproduce figure3` "
                 "for it first.")
    for folder in folders:
        if args.curves and folder.name not in args.curves:
            continue
        chosen = json.loads((folder / "step_size.json").read_text())["chosen"]
        model, state = load_checkpoint(folder / f"lr-{chosen:g}")
        samples = state["epoch"] * state["samples_per_epoch"]
        n_train = int(folder.name.split("-n")[1].split("-")[0])
        train = data.binarize(data.load("mnist", "train")[: min(n_train, 1000)], 0)
        for split, x in (("training", train), ("test", data.test_set("mnist", binary=True)[:1000])):
            one, every = (marginal_likelihood.app_d(model, x, **FIGURE3, seed=0, batch_size=len(x), num_chains=chains)
                          for chains in (1, marginal_likelihood.APP_D_CHAINS))
            lowest = np.argsort(np.asarray(one.log_likelihood))[: args.n]
            rows.append(compare(model, x[lowest], f"{folder.name} at {samples:.1e}", f"{args.n} lowest {split}",
                                marginal_likelihood.APP_D_CHAINS, FIGURE3)
                        + [round(float(np.mean(one.log_likelihood)), 2), round(float(np.mean(every.log_likelihood)), 2),
                           len(marginal_likelihood.flagged(every))])
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    checks = parser.add_subparsers(dest="check", required=True)
    training = checks.add_parser("training", help="Figure 3's models early in training")
    training.add_argument("--n", type=int, default=20, help="test images")
    training.add_argument("--points", type=float, nargs="+", default=[1e4, 1e5, 1e6],
                          help="training samples of the early, middle and late models")
    training.add_argument("--methods", nargs="+", default=["mcem", "wake-sleep"])
    training.add_argument("--workdir", type=Path, default=Path("runs/validation"))
    preset = checks.add_parser("preset", help="a 2- or 3-D preset under several binarizations")
    preset.add_argument("--name", default="mnist-z2")
    preset.add_argument("--n", type=int, default=100, help="test images")
    preset.add_argument("--binarizations", type=int, nargs="+", default=[data.TEST_BINARIZATION_SEED, 1, 2])
    figure3 = checks.add_parser("figure3", help="the final models of vae-zoo reproduce figure3")
    figure3.add_argument("--workdir", type=Path, default=Path("runs/reproduce"))
    figure3.add_argument("--n", type=int, default=20, help="lowest-scoring images per split")
    figure3.add_argument("--curves", nargs="+", help="only these curves (e.g. mnist-n1000-z3-mcem): their rows "
                         "replace their earlier ones in results/app-d-figure3.json, the other curves' rows are kept")
    args = parser.parse_args()
    rows = {"training": check_training, "preset": check_preset, "figure3": check_figure3}[args.check](args)
    argv = sys.argv[1:]
    if getattr(args, "curves", None):  # one curve at a time: each row is what the command without --curves gives
        start = argv.index("--curves")
        argv = argv[:start] + argv[start + 1 + len(args.curves):]
        earlier = RESULTS / f"app-d-{args.check}.json"
        if earlier.exists():
            measured = {row[0].split(" at ")[0] for row in rows}
            rows = sorted([row for row in json.loads(earlier.read_text())["rows"]
                           if row[0].split(" at ")[0] not in measured] + rows, key=lambda row: row[0])
    columns = COLUMNS + (FIGURE3_COLUMNS if args.check == "figure3" else [])
    table = {"command": shlex.join(["python", "benchmarks/estimator_validation.py", *argv]),
             "columns": columns, "rows": rows}
    atomic_write_text(RESULTS / f"app-d-{args.check}.json", json.dumps(table, indent=1) + "\n")
    print(f"| {' | '.join(columns)} |\n|{' --- |' * len(columns)}")
    print("\n".join(f"| {' | '.join(map(str, row))} |" for row in rows))


if __name__ == "__main__":
    main()
