"""App. D and AIS against exact log p(x) on the models of Figure 3 where App. D once broke.

Trains Figure 3's 784-100-3 models on the first 1,000 MNIST training images with the paper's
recipe (MCEM and wake-sleep, seed 0) and, at an early, a middle and a late point of training,
estimates log p(x) of the first N binarized test images three ways:

- App. D (`marginal_likelihood.app_d`) at Figure 3's settings (L = 100, 100 burn-in steps,
  4 leapfrog steps);
- AIS (`marginal_likelihood.ais`, 16 chains, 500 steps, 10 leapfrog steps);
- exact, by quadrature on a 3-D grid: a coarse grid (41^3) over [-5, 5]^3 finds where p(x, z)
  lives, a fine grid (60^3) over the box holding that region and every App. D chain start
  integrates it, and a 90^3 grid over the same box gives the value used; their difference (the
  refinement column) shows it has converged.

Prints one markdown row per model and point: mean and worst error of each estimator (nats),
the refinement change, App. D's acceptance. Models are kept in WORKDIR, so a rerun only measures.

    python benchmarks/estimator_validation.py [--n 20] [--points 1e4 1e5 1e6] [--workdir runs/validation]
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import scipy.special  # noqa: E402
import tensorflow as tf  # noqa: E402

from vae_zoo import data
from vae_zoo.estimators import marginal_likelihood  # noqa: E402
from vae_zoo.model.recipes import RECIPES, compile_model  # noqa: E402
from vae_zoo.training.train import build_model  # noqa: E402

ARCHITECTURE = dict(input_dim=784, latent_dim=3, hidden_units=100, likelihood="bernoulli")
N_TRAIN = 1000


def log_joint_on(model, x, z: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """log p(x, z) for one image x (1, D) at points z (m, 3)."""
    out = []
    for i in range(0, len(z), chunk):
        zc = tf.constant(z[i:i + chunk])
        out.append((model.decoder(zc).log_prob(x) + model.prior().log_prob(zc)).numpy())
    return np.concatenate(out)


def box_integral(model, x, low: np.ndarray, high: np.ndarray, points: int) -> float:
    """log of the midpoint-rule integral of p(x, z) over the box [low, high]."""
    axes = [low[d] + (np.arange(points) + 0.5) * (high[d] - low[d]) / points for d in range(3)]
    z = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1).astype(np.float32)
    cell = np.prod((high - low) / points)
    return float(scipy.special.logsumexp(log_joint_on(model, x, z)) + np.log(cell))


def exact(model, x, chains: np.ndarray, fine: int = 60) -> tuple[float, float]:
    """Exact log p(x) of one image by quadrature, and the change when the fine grid is refined 1.5x."""
    coarse = np.linspace(-5, 5, 41, dtype=np.float32)
    z = np.stack([g.ravel() for g in np.meshgrid(coarse, coarse, coarse, indexing="ij")], axis=1)
    lj = log_joint_on(model, x, z)
    keep = z[lj > lj.max() - 40.0]
    region = np.concatenate([keep, chains])
    step = coarse[1] - coarse[0]
    low, high = region.min(axis=0) - 2 * step, region.max(axis=0) + 2 * step
    value = box_integral(model, x, low, high, fine)
    refined = box_integral(model, x, low, high, int(1.5 * fine))
    return refined, abs(refined - value)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="test images")
    parser.add_argument("--points", type=float, nargs="+", default=[1e4, 1e5, 1e6],
                        help="training samples of the early, middle and late models")
    parser.add_argument("--methods", nargs="+", default=["mcem", "wake-sleep"])
    parser.add_argument("--workdir", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    x = data.test_set("mnist", binary=True)[: args.n]
    print(f"first {len(x)} binarized MNIST test images; errors in nats (estimate - exact)")
    print("| model | samples | exact (mean) | App. D mean err | App. D worst | App. D accept. | AIS mean err | "
          "AIS worst | refinement (max) | s |")
    print("|" + " --- |" * 10)
    for method in args.methods:
        for samples in map(int, args.points):
            start = time.perf_counter()
            model = trained(method, samples, args.workdir)
            # Figure 3's published points ran App. D's version 2: one chain per image.
            app_d, acceptance, _ = marginal_likelihood.app_d(model, x, 100, 100, 4, seed=0, batch_size=len(x),
                                                             num_chains=1)
            ais, _ = marginal_likelihood.ais(model, x, num_chains=16, num_steps=500, seed=0, batch_size=len(x))
            chains = marginal_likelihood.chain_starts(model, tf.constant(x), tf.constant([0, 0]))[0].numpy()
            exact_values, changes = zip(*(exact(model, x[i:i + 1], chains[i:i + 1]) for i in range(len(x))))
            truth = np.array(exact_values)
            d_err, a_err = app_d - truth, ais - truth
            print(f"| {method} | {samples:.0e} | {truth.mean():.2f} | {d_err.mean():+.3f} | "
                  f"{d_err[np.argmax(np.abs(d_err))]:+.2f} | {acceptance.mean():.3f} | {a_err.mean():+.3f} | "
                  f"{a_err[np.argmax(np.abs(a_err))]:+.2f} | {max(changes):.3f} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
