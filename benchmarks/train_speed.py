"""Training throughput of the 784-500-20 MNIST VAE (estimator B, L = 1).

Feeds real MNIST with dynamic binarization through `vae_zoo.data.train_dataset`
into `model.fit`, exactly as the presets are trained, and prints samples/s and
the FLOP/s they imply, for several batch sizes and with/without XLA.

    python benchmarks/train_speed.py [--epochs 3] [--batch-sizes 100 1000]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from vae_zoo import data, training  # noqa: E402

D, H, Z = 784, 500, 20
# Forward: 2 FLOP per multiply-add of the four weight matrices. Backward: the
# weight gradients (as many) plus the input gradients of all but the first layer.
FORWARD = 2 * (D * H + H * 2 * Z + Z * H + H * D)
FLOP_PER_SAMPLE = 2 * FORWARD + (FORWARD - 2 * D * H)


def measure(x, batch_size: int, jit: bool, epochs: int, steps_per_execution: int) -> float:
    recipe = training.RECIPES["adam"].replace(batch_size=batch_size, steps_per_execution=steps_per_execution)
    model = training.build_model(dict(input_dim=D, latent_dim=Z, hidden_units=H), recipe, len(x))
    steps = len(x) // batch_size
    training.compile_model(model, recipe, steps, jit_compile=jit)
    ds = data.train_dataset(x, batch_size, seed=0, epochs=epochs + 1)
    timer = _EpochTimer()
    model.fit(ds, epochs=epochs + 1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    best = min(timer.seconds[1:])  # epoch 0 includes tracing
    return steps * batch_size / best


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per setting (best is reported)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--steps-per-execution", type=int, default=50)
    args = parser.parse_args()
    x = data.load("mnist", "train")
    print(f"784-500-20 Bernoulli VAE, estimator B, L=1, Adam; {FLOP_PER_SAMPLE / 1e6:.2f} MFLOP per training sample")
    print(f"{'batch':>6} {'XLA':>5} {'samples/s':>10} {'GFLOP/s':>8}")
    for batch_size in args.batch_sizes:
        for jit in (False, True):
            rate = measure(x, batch_size, jit, args.epochs, args.steps_per_execution)
            print(f"{batch_size:>6} {str(jit):>5} {rate:>10.0f} {rate * FLOP_PER_SAMPLE / 1e9:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
