"""How to spend two cores on the paper's figures: minutes per million training samples of a
figure's curves, trained one at a time with every core, or side by side, one thread each.

Each curve trains `--samples` samples at a fixed step size with `reproduce.train_curve` (the
figure's own loop, checkpoints and measurements) in a temporary folder; the measurement (the
lower bound, or App. D's marginal likelihood for Figure 3) is timed apart from the training.

    python benchmarks/figure_throughput.py figure3 --curves mnist-n1000-z3-aevb mnist-n1000-z3-mcem \
        --samples 200000

Run it on an otherwise idle machine; both layouts are measured in the same run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def worker(figure: str, name: str, samples: int, out: str) -> None:
    from vae_zoo.paper import reproduce

    curve = next(c for c in reproduce.curves(figure, methods=list(reproduce.METHODS)
                                             if figure == "figure3" else None) if c.name == name)
    settings = reproduce.Settings(figure, learning_rate=0.02, eval_points=reproduce.FIGURES[figure].eval_points)
    with tempfile.TemporaryDirectory() as workdir:
        record = reproduce.train_curve(curve, settings, samples, reproduce.Path(workdir))
    measure = sum(p.get("measure_seconds", 0.0) for p in record["points"])
    with open(out, "w") as f:
        json.dump({"curve": name, "samples": record["samples"], "seconds": record["wall_seconds"],
                   "measure_seconds": measure, "points": len(record["points"])}, f)


def run(figure: str, curves: list[str], samples: int, threads: int, parallel: bool) -> list[dict]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": str(threads),
           "TF_NUM_INTEROP_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"{i}.json") for i in range(len(curves))]
        commands = [[sys.executable, __file__, figure, "--worker", name, "--samples", str(samples), "--out", out]
                    for name, out in zip(curves, outs)]
        start = time.perf_counter()
        if parallel:
            for process in [subprocess.Popen(c, env=env) for c in commands]:
                assert process.wait() == 0
        else:
            for c in commands:
                subprocess.run(c, env=env, check=True)
        total = time.perf_counter() - start
        rows = [json.load(open(o)) for o in outs]
    for row in rows:
        row["layout"] = f"{'side by side' if parallel else 'one at a time'}, {threads} thread(s) each"
        row["total_seconds"] = total
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", choices=["figure2", "figure3"])
    parser.add_argument("--curves", nargs="+", default=["mnist-n1000-z3-aevb", "mnist-n1000-z3-mcem"])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--worker")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        return worker(args.figure, args.worker, args.samples, args.out)
    rows = run(args.figure, args.curves, args.samples, 2, parallel=False)
    rows += run(args.figure, args.curves, args.samples, 1, parallel=True)
    print("| layout | curve | samples | train min / 1e6 samples | measurements (s) | all curves, wall (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        train = (r["seconds"] - r["measure_seconds"]) / 60 / (r["samples"] / 1e6)
        print(f"| {r['layout']} | {r['curve']} | {r['samples']:,} | {train:.2f} | "
              f"{r['measure_seconds']:.0f} ({r['points']} points) | {r['total_seconds']:.0f} |")


if __name__ == "__main__":
    main()
