"""The two marginal-likelihood estimators against each other, and against the exact value where it exists.

For presets with a 2-D latent space log p(x) is computed exactly by quadrature on a grid; for
the others only the two estimates are compared. Prints, per preset, the mean of each estimate
over the first N binarized MNIST test images and how far they are from the exact value.

    python benchmarks/marginal_likelihood_check.py [--presets mnist-z2 mnist-z3] [--n 100]
        [--hmc-samples 400 --hmc-burnin 300 --hmc-leapfrog 10]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import vae_zoo  # noqa: E402
from vae_zoo import data  # noqa: E402
from vae_zoo.estimators import exact as exact_lib  # noqa: E402
from vae_zoo.estimators import marginal_likelihood  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["mnist-z2", "mnist-z3"])
    parser.add_argument("--n", type=int, default=100, help="test images")
    parser.add_argument("--k", type=int, default=5000, help="importance samples")
    parser.add_argument("--hmc-samples", type=int, default=400, help="App. D: L posterior samples, twice")
    parser.add_argument("--hmc-burnin", type=int, default=300)
    parser.add_argument("--hmc-leapfrog", type=int, default=10, help="leapfrog steps per HMC step (Figure 3 "
                        "measures with --hmc-samples 100 --hmc-burnin 100 --hmc-leapfrog 4)")
    args = parser.parse_args()
    x = data.test_set("mnist", binary=True)[: args.n]
    print(f"first {len(x)} binarized MNIST test images; nats per image (mean over images)")
    print(f"{'preset':<10} {'IW k=' + str(args.k):>12} {'App. D (HMC)':>13} {'exact':>9} "
          f"{'IW-exact':>17} {'HMC-exact':>17} {'HMC accept':>10} {'flagged':>7} {'HMC s':>6}")
    for name in args.presets:
        model = vae_zoo.load(name, compile=False)
        iw = model.log_likelihood(x, num_samples=args.k, seed=0)
        start = time.perf_counter()
        hmc, acceptance, disagreement = model.log_likelihood_hmc(
            x, num_samples=args.hmc_samples, num_burnin=args.hmc_burnin, num_leapfrog_steps=args.hmc_leapfrog, seed=0)
        seconds = time.perf_counter() - start
        row = f"{name:<10} {np.mean(iw):>12.2f} {np.mean(hmc):>13.2f}"
        if model.latent_dim == 2:
            exact = exact_lib.quadrature(model, x)
            row += (f" {np.mean(exact):>9.2f} {np.mean(iw - exact):>7.2f} (max {np.min(iw - exact):>6.1f})"
                    f" {np.mean(hmc - exact):>7.2f} (max {np.max(np.abs(hmc - exact)):>5.2f})")
        else:
            row += f" {'-':>9} {'-':>17} {'-':>17}"
        flagged = int(np.sum(~(disagreement <= marginal_likelihood.DISAGREEMENT_NATS)))
        print(row + f" {acceptance:>10.2f} {flagged:>7} {seconds:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
