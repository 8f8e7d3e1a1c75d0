"""Data-parallel training on 1, 2 and 3 worker processes of this machine (127.0.0.1): samples/s,
time per all-reduce and bytes exchanged per step.

Each run starts W worker processes that train the 784-500-20 MNIST VAE (estimator B, L = 1,
Adam, global batch 102 = 2 x 3 x 17, so every W splits it) with `vae_zoo.training.distributed`'s step
(its slice of the batch and noise per worker, one ring all-reduce of the gradients and
statistics), for `--steps` steps after a warm-up; the chief prints samples/s. Then the workers
time `--reduces` all-reduces (eager calls) of a tensor the size of the gradients alone. Bytes per step are
measured: the loopback interface's byte counter (/proc/net/dev, all workers together) over the
training steps, divided by the steps. W = 1 runs the same loop on a one-worker cluster; the last
row is the single-process Keras `fit` the zoo uses without a cluster.

    python benchmarks/distributed.py [--workers 1 2 3] [--steps 300] [--reduces 50]

All workers share this machine's cores, so more workers do not make it faster here: the
numbers are for the cost of communication, not for the speed-up of separate machines.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BATCH = 102


def loopback_bytes() -> int:
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])  # received bytes (= sent, on loopback)
    return 0


def worker(index: int, workers: list[str], steps: int, reduces: int) -> None:
    from vae_zoo.training import distributed

    cluster = distributed.Cluster(tuple(workers), index)
    strategy = distributed.connect(cluster, timeout=120)
    import tensorflow as tf

    from vae_zoo import data
    from vae_zoo.model import recipes
    from vae_zoo.training import train as training
    from vae_zoo.zoo import presets

    spec = presets.PRESETS["mnist-z20"]
    recipe = recipes.Recipe(epochs=1, seed=0, batch_size=BATCH)
    x = data.load("mnist", "train")
    model = training.build_model(spec.architecture, recipe, len(x))
    recipes.compile_model(model, recipe, len(x) // BATCH)
    model.optimizer.build(model.trainable_variables)
    batches = iter(data.train_dataset(x, BATCH, True, 0, worker=cluster.shard))
    step = distributed._make_step(strategy, cluster, model, BATCH)
    for _ in range(20):  # warm-up: tracing, XLA compilation
        step(next(batches)).numpy()
    distributed._all_reduce(strategy, [tf.zeros([1])])  # all start together
    lo, start = loopback_bytes(), time.perf_counter()
    for _ in range(steps):
        step(next(batches)).numpy()
    seconds, exchanged = time.perf_counter() - start, loopback_bytes() - lo
    params = sum(int(tf.size(v)) for v in model.trainable_variables)
    grads = tf.zeros([params])
    def reduce(g):  # eager: one collective per call, as the step's
        return distributed._all_reduce(strategy, [g])

    reduce(grads)
    start = time.perf_counter()
    for _ in range(reduces):
        reduce(grads)[0].numpy()
    per_reduce = (time.perf_counter() - start) / reduces
    if cluster.is_chief:
        print(json.dumps({"workers": len(workers), "samples_per_s": steps * BATCH / seconds,
                          "ms_per_step": 1000 * seconds / steps, "ms_per_all_reduce": 1000 * per_reduce,
                          "parameters": params, "bytes_per_step": exchanged / steps}), flush=True)


def keras_fit(steps: int) -> dict:
    from vae_zoo import data
    from vae_zoo.model import recipes
    from vae_zoo.training import train as training
    from vae_zoo.zoo import presets

    recipe = recipes.Recipe(epochs=1, seed=0, batch_size=BATCH, steps_per_execution=50)
    x = data.load("mnist", "train")
    model = training.build_model(presets.PRESETS["mnist-z20"].architecture, recipe, len(x))
    recipes.compile_model(model, recipe, len(x) // BATCH)
    stream = data.train_dataset(x, BATCH, True, 0)
    model.fit(stream, steps_per_epoch=100, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    return {"workers": "1 (Keras fit)", "samples_per_s": steps * BATCH / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--reduces", type=int, default=50)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # INDEX HOST:PORT,... (internal)
    args = parser.parse_args()
    from vae_zoo.training import distributed

    if args.worker:
        worker(int(args.worker[0]), args.worker[1].split(","), args.steps, args.reduces)
        return
    rows = []
    for n in args.workers:
        addresses = ",".join(distributed.local_workers(n))
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(i), addresses, "--steps", str(args.steps),
                                   "--reduces", str(args.reduces)], stdout=subprocess.PIPE, text=True)
                 for i in range(n)]
        outputs = [p.communicate(timeout=1800)[0] for p in procs]
        if any(p.returncode for p in procs):
            sys.exit(f"a worker of the {n}-worker run failed")
        rows.append(json.loads(outputs[0].strip().splitlines()[-1]))
    rows.append(keras_fit(args.steps))
    print(f"{'workers':>14} {'samples/s':>10} {'ms/step':>8} {'ms/all-reduce':>14} {'MB/step (lo)':>13}")
    for r in rows:
        extra = (f"{r['ms_per_step']:>8.1f} {r['ms_per_all_reduce']:>14.2f} {r['bytes_per_step'] / 1e6:>13.2f}"
                 if "ms_per_step" in r else f"{'':>8} {'':>14} {'':>13}")
        print(f"{r['workers']:>14} {r['samples_per_s']:>10.0f} {extra}")
    print(f"parameters: {rows[0]['parameters']:,} ({rows[0]['parameters'] * 4 / 1e6:.2f} MB of float32 gradients)")


if __name__ == "__main__":
    main()
