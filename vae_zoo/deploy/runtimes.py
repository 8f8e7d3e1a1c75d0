"""Exported graphs opened in their own runtimes: TensorFlow (SavedModel), onnxruntime, LiteRT.

`open_graph(fmt, path)` returns a function from named float32 inputs to named outputs, the
one way the parity check, the quality measurement and the latency benchmark run a graph.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

Graph = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def open_graph(fmt: str, path: str | Path) -> Graph:
    """Loads the graph at `path` ("saved_model", "onnx" or "tflite") in its runtime.

    Returns:
        A function mapping {input name: array} to {output name: array}; any batch size.
    """
    return {"saved_model": _saved_model, "onnx": _onnx, "tflite": _tflite}[fmt](Path(path))


def _saved_model(path: Path) -> Graph:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda inputs: {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _onnx(path: Path) -> Graph:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda inputs: dict(zip(names, session.run(names, inputs)))


def _tflite(path: Path) -> Graph:
    from ai_edge_litert.interpreter import Interpreter

    with _native_stderr_muted():  # LiteRT's C++ logs an INFO line when it first applies its CPU delegate
        runner = Interpreter(model_path=str(path)).get_signature_runner()  # resizes to each input's batch
        runner(**{name: np.zeros([1, *detail["shape"][1:]], np.float32)
                  for name, detail in runner.get_input_details().items()})
    return lambda inputs: {k: np.asarray(v) for k, v in runner(**inputs).items()}


@contextlib.contextmanager
def _native_stderr_muted():
    """Sends what native code writes to file descriptor 2 to /dev/null for the block (Python's
    own exceptions still reach the caller)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def runtime_version(fmt: str) -> str:
    """The runtime and its version, as the manifest records it."""
    from importlib.metadata import version

    package = {"saved_model": "tensorflow", "onnx": "onnxruntime", "tflite": "ai-edge-litert"}[fmt]
    return f"{package} {version(package)}"
