"""The trade-off table of quantized exports: size, speed and cost in log-likelihood per preset,
format and mode, all measured through the exported graphs (`vae_zoo.export(..., quantize=...)`).

For each preset it exports the encoder and decoder as ONNX and TFLite in float32 and in every
quantized mode (without the quality gate, so refused modes are measured too) and prints, per
format and mode: the decoder's size and how much smaller it is, the decoder's batch-1 p50/p99
latency and batch-256 throughput in its runtime, and the change of the test ELBO (estimator B,
full test set) and of log p(x) (k = 1000, first 1,000 test images) for the quantized pair and
for the decoder alone (float32 encoder). Drops are float32 minus quantized (positive = worse),
paired (same noise), +- their standard errors. Run it on an otherwise idle machine.

    python benchmarks/quantized_exports.py [--presets mnist-z20 frey-z20] [--k 1000] [--points 1000]
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODES = ["float16", "int8-dynamic", "int8-static"]


def drop(entry: dict) -> str:
    return f"{entry['mean']:+.3f} +- {entry['standard_error']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["mnist-z20", "frey-z20"])
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()

    import vae_zoo

    header = (f"{'preset':<10} {'format':<7} {'mode':<13} {'decoder bytes':>13} {'smaller':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'batch-256/s':>11}  {'ELBO drop (pair)':>17}  {'log p(x) drop (pair)':>20}  "
              f"{'log p(x) drop (decoder only)':>28}")
    print(header)
    for name in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = vae_zoo.export(name, Path(tmp) / "out", formats=("onnx", "tflite"), quantize=["none", *MODES],
                                      max_drop=None, quality_k=args.k, quality_points=args.points)
        quality = manifest["quality"]["results"]
        decoders = {(a["format"], a.get("quantize", "none")): a
                    for a in manifest["artifacts"] if a["part"] == "decoder"}
        for fmt in ("onnx", "tflite"):
            reference = decoders[fmt, MODES[0]]  # holds the float32 graph's size and speed, measured with it
            for mode in ["none", *MODES]:
                a = decoders[fmt, mode]
                size = a["size_bytes"] if mode != "none" else reference["float32_size_bytes"]
                speed = a["speed"] if mode != "none" else reference["float32_speed"]
                if mode == "none":
                    measured = quality[fmt]["float32"]
                    cost = (f"ELBO {measured['elbo_B']['mean']:.2f}", f"log p(x) {measured['log_px']['mean']:.2f}", "")
                else:
                    pair, alone = quality[fmt][mode]["pair"], quality[fmt][mode]["decoder_only"]
                    cost = (drop(pair["elbo_B_drop"]), drop(pair["log_px_drop"]), drop(alone["log_px_drop"]))
                label = mode if mode != "none" else "float32"
                print(f"{name:<10} {fmt:<7} {label:<13} {size:>13,} {a.get('smaller_by', 1.0):>7.2f}x "
                      f"{speed['batch1_p50_ms']:>7.3f} {speed['batch1_p99_ms']:>7.3f} "
                      f"{speed['batch256_per_s']:>11,}  {cost[0]:>17}  {cost[1]:>20}  {cost[2]:>28}", flush=True)


if __name__ == "__main__":
    main()
