"""Speed of the importance-weighted log p(x) estimate (`VAE.log_likelihood`), the long pole of a model card.

mnist-z20, k = 5,000 importance samples per test point, on the first N test images with their fixed
binarization (default 1,000; `--n 10000` is the card's full protocol). Prints the wall time, the time
projected to the full test set, the decoder's matrix-product rate it implies, and the estimate itself
(same seed, same number as the card when N = 10,000).

    python benchmarks/log_likelihood_speed.py [--n 1000] [--k 5000]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import vae_zoo  # noqa: E402
from vae_zoo import data
from vae_zoo.zoo import registry  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mnist-z20")
    parser.add_argument("--n", type=int, default=1000, help="test points (10000: the full MNIST test set)")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per test point")
    args = parser.parse_args()
    model = vae_zoo.load(args.preset, compile=False)
    dataset = registry.read_card(args.preset)["data"]["dataset"]
    x = data.test_set(dataset, model.is_binary)
    model.log_likelihood(x[:100], num_samples=args.k)  # traces and compiles
    x = x[: args.n]
    start = time.perf_counter()
    ll = model.log_likelihood(x, num_samples=args.k, seed=0)
    seconds = time.perf_counter() - start
    hidden = model.hidden_units[0]
    flop = 2 * (model.latent_dim * hidden + hidden * model.input_dim) * args.k * len(x)  # decoder products
    full = seconds * len(data.load(dataset, "test")) / len(x)
    print(f"{args.preset}: log p(x), k={args.k}, {len(x)} test points, {os.cpu_count()} cores")
    print(f"wall time {seconds:.1f} s; projected to the full test set {full:.0f} s; "
          f"decoder products {flop / seconds / 1e9:.0f} GFLOP/s")
    print(f"mean log p(x) {np.mean(ll):.3f} +- {np.std(ll) / np.sqrt(len(ll)):.3f} nats (seed 0)")


if __name__ == "__main__":
    main()
