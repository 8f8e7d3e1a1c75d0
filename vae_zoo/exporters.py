"""Exporters: encoders and decoders as SavedModel, ONNX and TFLite, parity-checked against Keras.

Graphs (float32, dynamic batch, no random ops inside):

- `encoder`: `x` (None, D) -> `z_mean`, `z_log_var` (None, Z)
- `decoder`: `z` (None, Z) -> `x_mean` (None, D) [+ `x_log_var` for Gaussian decoders]
- `sampling_encoder`: `x` (None, D), `eps` (None, Z) -> `z` = z_mean + exp(z_log_var / 2) * eps,
  plus `z_mean` and `z_log_var`

Every artifact is run in its runtime (TF SavedModel loaded back, onnxruntime,
the LiteRT interpreter) on a fixed batch and compared with the Keras model;
the measured max abs differences go in `manifest.json`, and export fails if
one exceeds `tolerance`. Files are written to a temp folder that is renamed
into place only when everything passed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo import registry
from vae_zoo.errors import IntegrityError, ParityError
from vae_zoo.io import atomic_write_text, staged_dir, tree_sha256
from vae_zoo.model import VAE
from vae_zoo.validation import check_choices

FORMATS = ("saved_model", "onnx", "tflite")
PARTS = ("encoder", "decoder", "sampling_encoder")
ONNX_OPSET = 17
TOLERANCE = 1e-5
MANIFEST = "manifest.json"



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


def _probe_inputs(model: VAE, part: str, batch: int = 16) -> dict[str, np.ndarray]:
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


def _run_saved_model(path: Path, inputs):
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


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
    path.write_bytes(proto.SerializeToString())


def _run_onnx(path: Path, inputs):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def _write_tflite(fn, path: Path, model: VAE) -> None:
    # Converting from a SavedModel keeps the signature's input and output names.
    with tempfile.TemporaryDirectory(dir=path.parent) as saved:
        _write_saved_model(fn, Path(saved) / "m", model)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(saved) / "m"), ["serving_default"])
        path.write_bytes(_convert_builtin_only(converter))


def _convert_builtin_only(converter) -> bytes:
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex (Select TF) ops
    return converter.convert()


def _run_tflite(path: Path, inputs):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    return {k: np.asarray(v) for k, v in runner(**inputs).items()}


WRITERS = {"saved_model": (_write_saved_model, _run_saved_model, ""),
           "onnx": (_write_onnx, _run_onnx, ".onnx"),
           "tflite": (_write_tflite, _run_tflite, ".tflite")}


def _io_spec(fn) -> tuple[dict, dict]:
    concrete = fn.get_concrete_function()
    inputs = {s.name: [None if d is None else int(d) for d in s.shape] for s in fn.input_signature}
    outputs = {k: [None if d is None else int(d) for d in v.shape] for k, v in concrete.structured_outputs.items()}
    return inputs, outputs


def export(
    model_or_name: VAE | str,
    out_dir: str | os.PathLike,
    formats=FORMATS,
    parts=("encoder", "decoder"),
    overwrite: bool = False,
    tolerance: float = TOLERANCE,
) -> dict:
    """Exports a model's encoder and/or decoder and checks each file against Keras.

    Args:
        model_or_name: a `VAE`, a preset name or a preset folder.
        out_dir: folder to create (refused if it exists and is not empty,
            unless `overwrite`).
        formats: any of "saved_model", "onnx", "tflite".
        parts: any of "encoder", "decoder", "sampling_encoder".
        overwrite: replace an existing non-empty `out_dir`.
        tolerance: the largest max abs difference from Keras accepted.

    Returns:
        The manifest (also written to `out_dir/manifest.json`).

    Raises:
        InvalidArgumentError: unknown format or part.
        OutputExistsError: `out_dir` is not empty and `overwrite` is False.
        ParityError: an exported graph differs from Keras by more than `tolerance`.
    """
    formats = check_choices("formats", formats, FORMATS, "format")
    parts = check_choices("parts", parts, PARTS, "part")
    out_dir = Path(out_dir)
    with staged_dir(out_dir, overwrite) as tmp:  # refuses a non-empty out_dir before the model loads
        source = _source(model_or_name)
        model = source.pop("model")
        artifacts = [_export_one(model, part, fmt, tmp, tolerance) for part in parts for fmt in formats]
        manifest = {
            "source": source,
            "latent_dim": model.latent_dim,
            "input_dim": model.input_dim,
            "likelihood": model.likelihood,
            "tolerance": tolerance,
            "artifacts": artifacts,
        }
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _source(model_or_name) -> dict:
    from vae_zoo import __version__

    if isinstance(model_or_name, VAE):
        return {"model": model_or_name, "preset": None, "weights_sha256": None, "package_version": __version__}
    model = registry.load(model_or_name, compile=False)
    card = registry.read_card(model_or_name)
    return {"model": model, "preset": str(model_or_name), "weights_sha256": card["weights_sha256"],
            "package_version": __version__}


def _export_one(model: VAE, part: str, fmt: str, folder: Path, tolerance: float) -> dict:
    write, run, suffix = WRITERS[fmt]
    fn = part_function(model, part)
    name = f"{part}{suffix}"
    path = folder / name
    write(fn, path, model)
    inputs = _probe_inputs(model, part)
    expected = {k: v.numpy() for k, v in fn(**inputs).items()}
    got = run(path, inputs)
    if set(got) != set(expected):
        raise ParityError(f"{name}: outputs {sorted(got)} differ from Keras' {sorted(expected)}.")
    error = max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
    if not error <= tolerance:
        raise ParityError(
            f"{name} ({fmt}) differs from the Keras model by {error:.3g} (max abs), above the tolerance "
            f"{tolerance:g}. Nothing was written."
        )
    ins, outs = _io_spec(fn)
    return {
        "file": name,
        "format": fmt,
        "part": part,
        "sha256": tree_sha256(path),
        "inputs": ins,
        "outputs": outs,
        "opset": ONNX_OPSET if fmt == "onnx" else None,
        "runtime": {"saved_model": f"tensorflow {tf.__version__}", "onnx": _onnxruntime_version(),
                    "tflite": "ai-edge-litert"}[fmt],
        "max_abs_error": error,
        "probe_batch": len(next(iter(inputs.values()))),
    }


def _onnxruntime_version() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def verify(folder: str | os.PathLike) -> dict:
    """Checks every file of an export (or of the edge bundle) against its manifest.json.

    Args:
        folder: a folder written by `export` or `build_bundle`.

    Returns:
        The manifest.

    Raises:
        IntegrityError: no readable manifest, or a file that is missing or
            whose sha256 differs from the manifest's.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise IntegrityError(f"No readable {MANIFEST} in {folder} ({err}); export again with vae-zoo export.") from None
    entries = manifest["presets"].values() if "presets" in manifest else [manifest]
    for entry in entries:
        for artifact in entry["artifacts"]:
            path = folder / artifact["file"]
            actual = tree_sha256(path) if path.exists() else "missing"
            if actual != artifact["sha256"]:
                raise IntegrityError(f"{path} is corrupt or was changed: sha256 {actual}, expected "
                                     f"{artifact['sha256']} (from {folder / MANIFEST}). Export it again.")
    return manifest


def build_bundle(out_dir: str | os.PathLike = "export", names=None) -> dict:
    """Writes the ONNX encoder and decoder of every shipped preset, and one manifest.

    Each preset goes to `out_dir/NAME/` (replaced if present, other files in
    `out_dir` are kept) and `out_dir/manifest.json` lists every artifact with
    its path relative to `out_dir`.

    Args:
        out_dir: the bundle folder (the repository's `export/`).
        names: presets to include (default: every preset with a model card).

    Returns:
        The bundle manifest.
    """
    out_dir = Path(out_dir)
    names = names or registry.shipped_presets()
    presets = {}
    for name in names:
        manifest = export(name, out_dir / name, formats=("onnx",), parts=("encoder", "decoder"), overwrite=True)
        for artifact in manifest["artifacts"]:
            artifact["file"] = f"{name}/{artifact['file']}"
        presets[name] = manifest
    bundle = {"command": f"vae-zoo export --all-presets -o {out_dir}", "onnx_opset": ONNX_OPSET, "presets": presets}
    atomic_write_text(out_dir / MANIFEST, json.dumps(bundle, indent=1))
    return bundle
