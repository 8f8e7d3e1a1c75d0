"""Training from shards on disk against training from memory: samples/s and peak RSS per data size.

For each size (GB of uint8 784-pixel images on disk) it writes a shard folder (MNIST training
images repeated, through a numpy memmap and `shards.write`, so the writer's memory does not grow
either), then trains the 784-500-20 MNIST VAE (estimator B, L = 1, Adam, batch 100, the preset
path: `training.build_model` + `recipes.compile_model`) for `--steps` steps streamed from it in a
fresh process, and reports the steady-state samples/s (after one warm-up call) and the process's
peak RSS. The first row trains from the 60,000 MNIST images in memory (`data.train_dataset`),
the same way. The data is removed afterwards. Run it on an otherwise idle machine.

    python benchmarks/streaming.py [--sizes 0.5 2 8] [--steps 3000] [--workdir /tmp]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

D = 784


def child(source: str, steps: int) -> dict:
    """Runs in a fresh process: trains for `steps` steps from `source` ("memory" or a shard folder)."""
    import keras

    from vae_zoo import data
    from vae_zoo.data import shards
    from vae_zoo.model import recipes
    from vae_zoo.training import train as training

    recipe = recipes.Recipe(epochs=1, seed=0, steps_per_execution=50)
    if source == "memory":
        x = data.load("mnist", "train")
        stream = data.train_dataset(x, 100, True, 0)
    else:
        stream = shards.Shards(source).train_dataset(100, True, 0)
    model = training.build_model(dict(input_dim=D, latent_dim=20, hidden_units=500), recipe, 60_000)
    recipes.compile_model(model, recipe, steps)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    timer = Timer()
    model.fit(stream, epochs=1, steps_per_epoch=50, verbose=0)  # warm-up: tracing, XLA
    model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return {"samples_per_s": steps * 100 / timer.seconds, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss, which Linux
    carries over from the parent through fork and exec, it starts afresh with the program)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def make_shards(gb: float, folder: Path) -> int:
    import numpy as np

    from vae_zoo import data
    from vae_zoo.data import shards

    n = int(gb * 1e9) // D
    mnist = np.round(data.load("mnist", "train") * 255).astype(np.uint8)
    array = np.lib.format.open_memmap(folder / "pixels.npy", "w+", np.uint8, (n, D))
    for start in range(0, n, len(mnist)):
        array[start:start + len(mnist)] = mnist[: n - start]
    array.flush()
    shards.write(array, folder / "shards", (28, 28), shard_size=100_000, holdout=0.001, seed=0)
    del array
    (folder / "pixels.npy").unlink()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2, 8], help="GB on disk")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return

    def measure(source: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--child", source, str(args.steps)], check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"784-500-20 VAE, batch 100, {args.steps} steps after warm-up; peak RSS of the training process")
    print(f"{'data':<28} {'images':>12} {'samples/s':>10} {'vs memory':>10} {'peak RSS MB':>12}")
    base = measure("memory")
    print(f"{'in memory (MNIST 60,000)':<28} {60_000:>12,} {base['samples_per_s']:>10,.0f} {'100 %':>10} "
          f"{base['peak_rss_mb']:>12,.0f}", flush=True)
    for gb in args.sizes:
        folder = Path(tempfile.mkdtemp(dir=args.workdir, prefix="vae-zoo-shards-"))
        try:
            start = time.perf_counter()
            n = make_shards(gb, folder)
            written = time.perf_counter() - start
            row = measure(str(folder / "shards"))
            print(f"{f'shards, {gb:g} GB (written in {written:.0f} s)':<28} {n:>12,} {row['samples_per_s']:>10,.0f} "
                  f"{row['samples_per_s'] / base['samples_per_s']:>10.0%} {row['peak_rss_mb']:>12,.0f}", flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
