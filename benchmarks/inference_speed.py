"""Decoder inference speed by runtime: batch-1 latency (p50, p99) and batch-256 throughput.

Exports the preset's decoder to SavedModel, ONNX and TFLite in a temp folder,
then times onnxruntime, the LiteRT (TFLite) interpreter, the reloaded
SavedModel and the Keras decoder called eagerly, all in this one process.

    python benchmarks/inference_speed.py [--preset mnist-z20] [--calls 2000]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

import vae_zoo  # noqa: E402
from vae_zoo.deploy.exporters import export  # noqa: E402


def runners(model, folder: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    session = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    tflite = Interpreter(model_path=str(folder / "decoder.tflite")).get_signature_runner()
    saved = tf.saved_model.load(str(folder / "decoder")).signatures["serving_default"]
    return {
        "onnxruntime": lambda z: session.run(["x_mean"], {"z": z})[0],
        "tflite (LiteRT)": lambda z: tflite(z=z)["x_mean"],
        "SavedModel (reloaded)": lambda z: saved(z=tf.constant(z))["x_mean"].numpy(),
        "Keras, eager": lambda z: model.decoder.outputs(tf.constant(z))["x_mean"].numpy(),
    }


def time_calls(fn, z: np.ndarray, calls: int) -> np.ndarray:
    for _ in range(20):
        fn(z)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn(z)
        times[i] = time.perf_counter() - start
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mnist-z20")
    parser.add_argument("--calls", type=int, default=2000, help="timed batch-1 calls per runtime")
    args = parser.parse_args()
    model = vae_zoo.load(args.preset, compile=False)
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((1, model.latent_dim), dtype=np.float32)
    z256 = rng.standard_normal((256, model.latent_dim), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        export(model, Path(tmp) / "m", parts=("decoder",))
        fns = runners(model, Path(tmp) / "m")
        print(f"{args.preset} decoder, {os.cpu_count()} cores; batch-1 latency over {args.calls} calls, "
              f"batch-256 throughput over {args.calls // 10} calls")
        print(f"{'runtime':<22} {'p50 (us)':>9} {'p99 (us)':>9} {'batch-256 images/s':>19}")
        results = {}
        for name, fn in fns.items():
            lat = time_calls(fn, z1, args.calls) * 1e6
            big = time_calls(fn, z256, max(20, args.calls // 10))
            results[name] = np.median(lat)
            print(f"{name:<22} {np.median(lat):>9.0f} {np.percentile(lat, 99):>9.0f} {256 / np.median(big):>19,.0f}",
                  flush=True)
    print(f"onnxruntime batch-1 p50 is {results['Keras, eager'] / results['onnxruntime']:.0f}x faster than Keras eager")


if __name__ == "__main__":
    main()
