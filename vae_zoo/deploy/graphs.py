"""The exported graphs: one part of a VAE as a tf.function with a named signature, and its
writers (SavedModel, ONNX, TFLite).

- `encoder`: `x` (None, D) -> `z_mean`, `z_log_var` (None, Z)
- `decoder`: `z` (None, Z) -> `x_mean` (None, D) [+ `x_log_var` for Gaussian decoders]
- `sampling_encoder`: `x` (None, D), `eps` (None, Z) -> `z` = z_mean + exp(z_log_var / 2) * eps,
  plus `z_mean` and `z_log_var`
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.model.vae import VAE

ONNX_OPSET = 17


def part_function(model: VAE, part: str) -> tf.types.experimental.GenericFunction:
    """A tf.function with a named input signature computing one part's outputs."""
    x_spec = tf.TensorSpec([None, model.input_dim], tf.float32, name="x")
    z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
    eps_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="eps")
    if part == "encoder":
        return tf.function(lambda x: model.encoder.outputs(x), input_signature=[x_spec])
    if part == "decoder":
        return tf.function(lambda z: model.decoder.outputs(z), input_signature=[z_spec])

    def sampling_encoder(x, eps):
        out = model.encoder.outputs(x)
        return {**out, "z": out["z_mean"] + tf.exp(0.5 * out["z_log_var"]) * eps}

    return tf.function(sampling_encoder, input_signature=[x_spec, eps_spec])


def probe_inputs(model: VAE, part: str, batch: int = 16) -> dict[str, np.ndarray]:
    """Fixed inputs of a part (seed 0) on which a graph is compared with Keras."""
    rng = np.random.default_rng(0)
    inputs = {}
    if part in ("encoder", "sampling_encoder"):
        inputs["x"] = rng.random((batch, model.input_dim), dtype=np.float32)
    if part == "decoder":
        inputs["z"] = rng.standard_normal((batch, model.latent_dim), dtype=np.float32)
    if part == "sampling_encoder":
        inputs["eps"] = rng.standard_normal((batch, model.latent_dim), dtype=np.float32)
    return inputs


def _write_saved_model(fn, path: Path, model: VAE) -> None:
    module = tf.Module()
    module.weights = [v.value for v in model.weights]  # track what the function captures
    module.serve = fn
    tf.saved_model.save(module, str(path), signatures={"serving_default": fn.get_concrete_function()})


def _write_onnx(fn, path: Path, model: VAE) -> None:
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=ONNX_OPSET)
    # tf2onnx numbers the traced function and the unknown dimensions with
    # process-wide counters; fixed names make the same weights give the same
    # bytes, and tell runtimes that inputs and outputs share one batch size.
    proto.graph.doc_string = f"vae-zoo {path.stem}"
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = "batch"
    for key, value in graph_metadata(model, path.stem).items():  # what a runtime needs to show the images
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path.write_bytes(proto.SerializeToString())


def graph_metadata(model: VAE, part: str) -> dict[str, str]:
    """The ONNX graphs' metadata_props: the part, the model's sizes, likelihood, image shape and
    source preset (empty where unknown)."""
    from vae_zoo import __version__

    source = getattr(model, "source_preset", None) or {}
    shape = getattr(model, "image_shape", None)
    return {"vae_zoo.part": part, "vae_zoo.preset": str(source.get("preset", "")),
            "vae_zoo.likelihood": model.likelihood, "vae_zoo.input_dim": str(model.input_dim),
            "vae_zoo.latent_dim": str(model.latent_dim),
            "vae_zoo.image_shape": "x".join(map(str, shape)) if shape else "", "vae_zoo.version": __version__}


def _write_tflite(fn, path: Path, model: VAE) -> None:
    # Converting from a SavedModel keeps the signature's input and output names.
    with tempfile.TemporaryDirectory(dir=path.parent) as saved:
        _write_saved_model(fn, Path(saved) / "m", model)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(saved) / "m"), ["serving_default"])
        path.write_bytes(_convert_builtin_only(converter))


def _convert_builtin_only(converter) -> bytes:
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex (Select TF) ops
    return converter.convert()


WRITERS = {"saved_model": (_write_saved_model, ""), "onnx": (_write_onnx, ".onnx"),
           "tflite": (_write_tflite, ".tflite")}


def io_spec(fn) -> tuple[dict, dict]:
    """The names and shapes of a part function's inputs and outputs (None: any size)."""
    concrete = fn.get_concrete_function()
    inputs = {s.name: [None if d is None else int(d) for d in s.shape] for s in fn.input_signature}
    outputs = {k: [None if d is None else int(d) for d in v.shape] for k, v in concrete.structured_outputs.items()}
    return inputs, outputs
