"""This machine's speed in one run, each number beside the matrix-product rate it is bounded by.

1. Training paths (2 cores, 784-500-20, batch 100, Adam): `train_speed.py`'s table, each path's share
   of the step's matrix-product ceiling.
2. The figure runs' training loops, one thread each, as `vae-zoo reproduce` runs them side by side:
   minutes per million training samples of Figure 2's MNIST curve (784-500-20) by AEVB and by
   wake-sleep, and of Figure 3's batch MCEM (784-100-3, N = 1,000), each beside the single-thread
   floor of its step: its matrix products (counted below) at the single-thread rate measured for
   that architecture's products in the same process.
3. The importance-weighted evaluation (mnist-z20, k = 5,000, 2 cores): the decoder's product rate
   beside a 2048^3 matrix product's (the better of TensorFlow's and XLA's).

    python benchmarks/speed.py [--samples 600000] [--ll-points 500]

Run it on an otherwise idle machine: every ratio is taken within this one run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CURVES = {  # method -> (figure, curve)
    "aevb": ("figure2", "mnist-n60000-z20-aevb"),
    "wake-sleep": ("figure2", "mnist-n60000-z20-wake-sleep"),
    "mcem": ("figure3", "mnist-n1000-z3-mcem"),
}


def products(layers, forward=True, weights=True, inputs=True, first_input=False) -> int:
    """Multiply-adds per sample of dense `layers` [(d_in, d_out), ...]: forward, weight gradients,
    input gradients (of the first layer only with `first_input`)."""
    macs = sum(a * b for a, b in layers)
    return (forward + weights) * macs + inputs * (macs - (0 if first_input else layers[0][0] * layers[0][1]))


def flop_per_sample(method: str, d: int, h: int, z: int, leapfrog: int = 10, m_steps: int = 5) -> int:
    """Matrix-product FLOP of one training sample of `method` (2 per multiply-add)."""
    enc, dec = [(d, h), (h, 2 * z)], [(z, h), (h, d)]
    if method == "aevb":  # encoder and decoder forward and backward; no gradient into the data
        macs = products(enc) + products(dec, first_input=True)
    elif method == "wake-sleep":
        wake = products(enc, weights=False, inputs=False) + products(dec)  # z ~ q, no gradient into q
        sleep = products(dec, weights=False, inputs=False) + products(enc)  # fantasy, then q's gradients
        bound = products(enc, weights=False, inputs=False) + products(dec, weights=False, inputs=False)
        macs = wake + sleep + bound
    else:  # mcem: an HMC transition (log p(x, z) and its z-gradient at the start and per leapfrog step)
        e_step = (leapfrog + 1) * products(dec, weights=False, first_input=True)
        macs = e_step + m_steps * products(dec)
    return 2 * macs


def single_thread_rate(d: int, h: int, z: int, batch: int, seconds: float = 5.0) -> float:
    """FLOP/s of this architecture's matrix products at `batch` rows (forward, weight and input
    gradient of each layer), compiled by XLA, in this process."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    layers = [(d, h), (h, 2 * z), (z, h), (h, d)]
    ws = [tf.Variable(rng.normal(s)) for s in layers]
    xs = [rng.normal((batch, a)) for a, _ in layers]
    gs = [rng.normal((batch, b)) for _, b in layers]
    outs = [tf.Variable(tf.zeros(shape)) for a, b in layers for shape in ((batch, b), (a, b), (batch, a))]

    @tf.function(jit_compile=True)
    def step():
        for i, (w, x, g) in enumerate(zip(ws, xs, gs)):
            outs[3 * i].assign(x @ w)
            outs[3 * i + 1].assign(tf.transpose(x) @ g)
            outs[3 * i + 2].assign(g @ tf.transpose(w))

    step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n * 2 * 3 * batch * sum(a * b for a, b in layers) / (time.perf_counter() - start)


def figure_worker(method: str, samples: int, out: str) -> None:
    from vae_zoo.paper import reproduce

    figure, name = CURVES[method]
    curve = next(c for c in reproduce.curves(figure, methods=list(reproduce.METHODS) if figure == "figure3" else None)
                 if c.name == name)
    settings = reproduce.Settings(figure, learning_rate=0.02, eval_points=100)
    with tempfile.TemporaryDirectory() as workdir:
        record = reproduce.train_curve(curve, settings, samples, reproduce.Path(workdir))
    d, h, z = 784, curve.hidden_units, curve.latent_dim
    train_seconds = record["wall_seconds"] - sum(p.get("measure_seconds", 0.0) for p in record["points"])
    rate = single_thread_rate(d, h, z, curve.batch_size)
    with open(out, "w") as f:
        json.dump({"method": method, "curve": name, "samples": record["samples"], "train_seconds": train_seconds,
                   "flop_per_sample": flop_per_sample(method, d, h, z), "rate": rate}, f)


def ll_worker(points: int, out: str) -> None:
    import numpy as np
    import tensorflow as tf

    import vae_zoo
    from vae_zoo import data

    model = vae_zoo.load("mnist-z20", compile=False)
    x = data.test_set("mnist", True)
    model.log_likelihood(x[:100], num_samples=5000)  # traces and compiles
    start = time.perf_counter()
    model.log_likelihood(x[:points], num_samples=5000, seed=0)
    seconds = time.perf_counter() - start
    flop = 2 * (model.latent_dim * model.hidden_units[0] + model.hidden_units[0] * model.input_dim) * 5000 * points
    a, b = (tf.constant(np.random.default_rng(i).normal(size=(2048, 2048)).astype(np.float32)) for i in (0, 1))
    rates = {}
    for name, fn in (("tensorflow", tf.function(lambda: a @ b)), ("xla", tf.function(lambda: a @ b,
                                                                                      jit_compile=True))):
        fn()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 5:
            fn().numpy()
            n += 1
        rates[name] = n * 2 * 2048**3 / (time.perf_counter() - start)
    with open(out, "w") as f:
        json.dump({"points": points, "seconds": seconds, "rate": flop / seconds, "matmul": rates}, f)


def _run(args: list[str], threads: int | None) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        subprocess.run([sys.executable, __file__, *args, "--out", out], env=env, check=True)
        with open(out) as f:
            return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600_000, help="training samples per figure curve")
    parser.add_argument("--ll-points", type=int, default=500, help="test images of the k = 5,000 evaluation")
    parser.add_argument("--worker", choices=[*CURVES, "ll"])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker == "ll":
        return ll_worker(args.ll_points, args.out)
    if args.worker:
        return figure_worker(args.worker, args.samples, args.out)

    print("## 1. Training paths (2 cores)\n", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, "train_speed.py")], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    print("\n## 2. Figure runs' training, one thread each\n")
    print("| method | curve | min / 10^6 samples | single-thread floor | ratio | product GFLOP/s (1 thread) |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    for method in CURVES:
        r = _run(["--worker", method, "--samples", str(args.samples)], threads=1)
        minutes = r["train_seconds"] / 60 / (r["samples"] / 1e6)
        floor = r["flop_per_sample"] * 1e6 / r["rate"] / 60
        print(f"| {method} | {r['curve']} | {minutes:.2f} | {floor:.2f} | {minutes / floor:.2f}x | "
              f"{r['rate'] / 1e9:.0f} |", flush=True)
    print("\n## 3. Importance-weighted evaluation, k = 5,000 (2 cores)\n")
    r = _run(["--worker", "ll", "--ll-points", str(args.ll_points)], threads=None)
    best = max(r["matmul"].values())
    print("| test images | seconds | decoder GFLOP/s | 2048^3 matmul GFLOP/s (TensorFlow / XLA) | share |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {r['points']} | {r['seconds']:.1f} | {r['rate'] / 1e9:.0f} | {r['matmul']['tensorflow'] / 1e9:.0f} / "
          f"{r['matmul']['xla'] / 1e9:.0f} | {r['rate'] / best:.2f} |")


if __name__ == "__main__":
    main()
