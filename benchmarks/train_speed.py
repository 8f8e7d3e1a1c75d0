"""Training throughput of the 784-500-20 MNIST VAE (estimator B, L = 1, Adam), three ways, in one run.

- plain idiom: `vae_zoo.VAE(...)`, `model.compile("adam")`, `model.fit(x, batch_size=B)` on a
  numpy array, i.e. what a Keras user writes (and `vae_zoo.load(name)` + `fit` for fine-tuning);
- preset path: `training.build_model` + `recipes.compile_model` + `data.train_dataset` (dynamic
  binarization in tf.data), exactly as `vae-zoo train NAME` trains the presets;
- PyTorch reference: a plain eager PyTorch loop of the same model, loss and optimizer (needs the
  optional `bench` extra, `pip install ".[bench]"`, i.e. torch==2.13.0; skipped when absent).

Each row is the best of `--epochs` timed epochs of the 60,000 training images after one warm-up
epoch (tracing, XLA compilation). Run it on an otherwise idle machine.

    python benchmarks/train_speed.py [--epochs 2] [--batch-sizes 100]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import vae_zoo  # noqa: E402
from vae_zoo import data
from vae_zoo.model import recipes
from vae_zoo.training import train as training  # noqa: E402

D, H, Z = 784, 500, 20
# Forward: 2 FLOP per multiply-add of the four weight matrices. Backward: the
# weight gradients (as many) plus the input gradients of all but the first layer.
FORWARD = 2 * (D * H + H * 2 * Z + Z * H + H * D)
FLOP_PER_SAMPLE = 2 * FORWARD + (FORWARD - 2 * D * H)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def _best_rate(n: int, fit) -> float:
    timer = _EpochTimer()
    fit(timer)
    return n / min(timer.seconds[1:])  # epoch 0 includes tracing and compilation


def plain_idiom(x_binary: np.ndarray, batch_size: int, epochs: int) -> float:
    model = vae_zoo.VAE(input_dim=D, latent_dim=Z, hidden_units=H, seed=0)
    model.compile("adam")
    return _best_rate(len(x_binary), lambda t: model.fit(x_binary, batch_size=batch_size, epochs=epochs + 1,
                                                         verbose=0, callbacks=[t]))


def fine_tune_preset(x_binary: np.ndarray, batch_size: int, epochs: int) -> float:
    model = vae_zoo.load("mnist-z20")
    return _best_rate(len(x_binary), lambda t: model.fit(x_binary, batch_size=batch_size, epochs=epochs + 1,
                                                         verbose=0, callbacks=[t]))


def preset_path(x: np.ndarray, batch_size: int, epochs: int) -> float:
    recipe = recipes.RECIPES["adam"].replace(batch_size=batch_size)
    model = training.build_model(dict(input_dim=D, latent_dim=Z, hidden_units=H), recipe, len(x))
    steps = len(x) // batch_size
    recipes.compile_model(model, recipe, steps)
    ds = data.train_dataset(x, batch_size, seed=0, epochs=epochs + 1)
    return _best_rate(steps * batch_size, lambda t: model.fit(ds, epochs=epochs + 1, steps_per_epoch=steps,
                                                              verbose=0, callbacks=[t]))


def gemm_ceiling(batch_size: int, steps: int = 600) -> float:
    """Samples/s if a step were only its matrix products (forward, weight and input
    gradients of the four layers, at these shapes): the ceiling of any implementation."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    layers = [(D, H), (H, 2 * Z), (Z, H), (H, D)]
    weights = [rng.normal(shape) for shape in layers]
    inputs = [rng.normal((batch_size, d_in)) for d_in, _ in layers]
    grads = [rng.normal((batch_size, d_out)) for _, d_out in layers]

    @tf.function(jit_compile=True)
    def products():
        total = 0.0
        for i, (w, a, g) in enumerate(zip(weights, inputs, grads)):
            total += tf.reduce_sum(a @ w) + tf.reduce_sum(tf.transpose(a) @ g)  # forward, weight gradient
            if i:
                total += tf.reduce_sum(g @ tf.transpose(w))  # input gradient (not of the data)
        return total

    products()
    start = time.perf_counter()
    for _ in range(steps):
        products()
    return steps * batch_size / (time.perf_counter() - start)


def pytorch_eager(x_binary: np.ndarray, batch_size: int, epochs: int) -> float | None:
    """The same model in a plain eager PyTorch loop; None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, 2 * Z))
    decoder = torch.nn.Sequential(torch.nn.Linear(Z, H), torch.nn.Tanh(), torch.nn.Linear(H, D))
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    xs = torch.from_numpy(x_binary)
    steps = len(xs) // batch_size
    seconds = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(xs))
        for i in range(steps):
            xb = xs[order[i * batch_size:(i + 1) * batch_size]]
            mean, log_var = encoder(xb).chunk(2, dim=-1)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)  # L = 1
            logits = decoder(z)
            reconstruction = -torch.nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
            kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(-1)  # eq. 7, App. B
            loss = (kl - reconstruction).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return steps * batch_size / min(seconds[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per row (the best is reported)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100])
    args = parser.parse_args()
    x = data.load("mnist", "train")
    x_binary = data.binarize(x, seed=0)
    print(f"784-500-20 Bernoulli VAE, estimator B, L=1, Adam; {FLOP_PER_SAMPLE / 1e6:.2f} MFLOP per training "
          f"sample; {os.cpu_count()} cores; best of {args.epochs} epochs of 60,000 images")
    print(f"{'batch':>6}  {'path':<52} {'samples/s':>10} {'GFLOP/s':>8} {'of ceiling':>10}")
    for batch_size in args.batch_sizes:
        rows = {
            "plain idiom: VAE + compile('adam') + fit(numpy)": plain_idiom(x_binary, batch_size, args.epochs),
            "fine-tuning: load('mnist-z20') + fit(numpy)": fine_tune_preset(x_binary, batch_size, args.epochs),
            "preset path: vae-zoo train (tf.data, recipe)": preset_path(x, batch_size, args.epochs),
            "PyTorch 2.13 eager loop, same model (reference)": pytorch_eager(x_binary, batch_size, args.epochs),
            "matrix products of a step alone (ceiling)": gemm_ceiling(batch_size),
        }
        ceiling = rows["matrix products of a step alone (ceiling)"]
        for name, rate in rows.items():
            shown = (f"{rate:>10.0f} {rate * FLOP_PER_SAMPLE / 1e9:>8.1f} {rate / ceiling:>10.0%}" if rate
                     else f"{'skipped':>10} (no torch)")
            print(f"{batch_size:>6}  {name:<52} {shown}", flush=True)
        plain, preset, torch_rate = (rows[k] for k in list(rows)[0:1] + list(rows)[2:4])
        print(f"{batch_size:>6}  plain idiom / preset path = {plain / preset:.0%}"
              + (f"; plain idiom / PyTorch eager = {plain / torch_rate:.2f}x" if torch_rate else ""))


if __name__ == "__main__":
    main()
