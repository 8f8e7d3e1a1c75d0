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

from vae_zoo import data as data_lib
from vae_zoo import graph_metrics, quantization, registry, runtimes, shards, user_data
from vae_zoo.errors import IntegrityError, InvalidArgumentError, ParityError, QualityGateError
from vae_zoo.evaluation import dataset_of, mean_and_se
from vae_zoo.io import atomic_write_text, replace_dir, staged_dir, tree_sha256
from vae_zoo.model import VAE
from vae_zoo.validation import check_choices, check_positive_float, check_positive_int, check_seed

FORMATS = ("saved_model", "onnx", "tflite")
PARTS = ("encoder", "decoder", "sampling_encoder")
ONNX_OPSET = 17
TOLERANCE = 1e-5
MANIFEST = "manifest.json"
PAIR = ("encoder", "decoder")
CALIBRATION_SIZE = 1000  # training images that calibrate int8-static graphs
PROBE_ROWS = 256



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


def _io_spec(fn) -> tuple[dict, dict]:
    concrete = fn.get_concrete_function()
    inputs = {s.name: [None if d is None else int(d) for d in s.shape] for s in fn.input_signature}
    outputs = {k: [None if d is None else int(d) for d in v.shape] for k, v in concrete.structured_outputs.items()}
    return inputs, outputs


def export(
    model_or_name: VAE | str,
    out_dir: str | os.PathLike,
    formats=None,
    parts=("encoder", "decoder"),
    overwrite: bool = False,
    tolerance: float = TOLERANCE,
    quantize="none",
    data: str | os.PathLike | None = None,
    max_drop: float | None = quantization.MAX_DROP,
    seed: int = 0,
    quality_k: int = quantization.QUALITY_K,
    quality_points: int = quantization.QUALITY_POINTS,
) -> dict:
    """Exports a model's encoder and/or decoder and checks each file: float32 graphs against
    Keras, quantized graphs by what they cost in log-likelihood.

    Args:
        model_or_name: a `VAE`, a preset name or a preset folder.
        out_dir: folder to create (refused if it exists and is not empty,
            unless `overwrite`).
        formats: any of "saved_model", "onnx", "tflite" (default: all three, or the two that
            can be quantized when `quantize` asks for a quantized mode).
        parts: any of "encoder", "decoder", "sampling_encoder".
        overwrite: replace an existing non-empty `out_dir`.
        tolerance: the largest max abs difference from Keras accepted (float32 graphs).
        quantize: one or more of "none" (float32), "float16", "int8-dynamic", "int8-static"
            (ONNX and TFLite only; see `quantization`). Each quantized graph is measured through
            the exported graphs themselves: file size, difference from the float32 graph, speed
            in its runtime, and the test ELBO (estimator B) and importance-weighted log p(x) of
            the quantized encoder + decoder pair, the decoder-only quantized pair and the float
            pair (`manifest["quality"]`).
        data: images that calibrate int8-static graphs (the training part) and measure the cost
            (the held-out part): a path `user_data.read` accepts, split 90/10 with `seed`.
            Default: the zoo data set of the model's input size (its training and test sets).
        max_drop: the quality gate: refuse the export when quantizing lowers the test
            log p(x) by more than this many nats per image (`quantization.MAX_DROP` says why 1);
            None measures without refusing.
        seed: seed of the calibration sample and of the measurement's noise.
        quality_k, quality_points: importance samples and test images of the log p(x) measurement.

    Returns:
        The manifest (also written to `out_dir/manifest.json`).

    Raises:
        InvalidArgumentError: unknown format, part or mode; a mode the format cannot hold;
            quantizing with no data to calibrate and measure on.
        OutputExistsError: `out_dir` is not empty and `overwrite` is False.
        ParityError: a float32 graph differs from Keras by more than `tolerance`.
        QualityGateError: a quantized pair loses more than `max_drop` nats of log p(x).
    """
    modes = check_choices("quantize", quantize, quantization.MODES, "quantization mode")
    quantized = [m for m in modes if m != "none"]
    if formats is None:
        formats = quantization.FORMATS if quantized else FORMATS
    formats = check_choices("formats", formats, FORMATS, "format")
    parts = check_choices("parts", parts, PARTS, "part")
    quantization.check_supported(modes, formats, parts)
    if quantized:
        max_drop = None if max_drop is None else check_positive_float("max_drop", max_drop, allow_zero=True)
        quality_k = check_positive_int("quality_k", quality_k)
        quality_points = check_positive_int("quality_points", quality_points)
    seed = check_seed("seed", seed, allow_none=False)
    out_dir = Path(out_dir)
    with staged_dir(out_dir, overwrite) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as scratch:
        source = _source(model_or_name)
        model = source.pop("model")
        manifest = {"source": source, "latent_dim": model.latent_dim, "input_dim": model.input_dim,
                    "likelihood": model.likelihood, "tolerance": tolerance, "artifacts": []}
        # Float32 graphs: written out when asked for, else kept in scratch as the reference.
        floats = {}
        for part in tuple(dict.fromkeys((*parts, *PAIR))) if quantized else parts:
            for fmt in formats:
                folder = tmp if "none" in modes and part in parts else Path(scratch)
                artifact = _export_one(model, part, fmt, folder, tolerance)
                floats[fmt, part] = folder / artifact["file"]
                if folder == tmp:
                    manifest["artifacts"].append(artifact)
        if quantized:
            measured = _export_quantized(model, formats, parts, quantized, floats, tmp, data, max_drop, seed,
                                         quality_k, quality_points)
            manifest["artifacts"] += measured.pop("artifacts")
            manifest["quality"] = measured
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
    write, suffix = WRITERS[fmt]
    fn = part_function(model, part)
    name = f"{part}{suffix}"
    path = folder / name
    write(fn, path, model)
    inputs = _probe_inputs(model, part)
    expected = {k: v.numpy() for k, v in fn(**inputs).items()}
    got = runtimes.open_graph(fmt, path)(inputs)
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
        "runtime": runtimes.runtime_version(fmt),
        "max_abs_error": error,
        "probe_batch": len(next(iter(inputs.values()))),
    }


def _export_quantized(model: VAE, formats, parts, modes, floats: dict, folder: Path, data, max_drop: float | None,
                      seed: int, k: int, points: int) -> dict:
    """Writes the quantized graphs of `parts` into `folder` and measures them against the
    float32 graphs `floats` ((format, part) -> path). Returns the manifest's "quality" section
    with the quantized artifacts under "artifacts"."""
    images = _evaluation_data(model, data, seed, modes)
    x_test = images.pop("test")
    x_iw = x_test[:points]
    calibration = images.pop("calibration")
    z_calibration = _posterior_samples(model, calibration, seed)
    probes = {"encoder": {"x": x_test[:PROBE_ROWS]},
              "decoder": {"z": np.random.default_rng(seed).standard_normal((PROBE_ROWS, model.latent_dim),
                                                                             dtype=np.float32)}}

    def inputs_of(part):  # the probe rows, repeated to the batch size asked for
        return lambda n: {k: np.resize(v, (n, v.shape[1])) for k, v in probes[part].items()}

    def quality(encoder, decoder) -> tuple[np.ndarray, np.ndarray]:
        return (graph_metrics.elbo_b(encoder, decoder, model.likelihood, x_test, seed),
                graph_metrics.log_likelihood(encoder, decoder, model.likelihood, x_iw, k, seed))

    artifacts, results = [], {}
    for fmt in formats:
        graphs = {part: runtimes.open_graph(fmt, floats[fmt, part]) for part in PAIR}
        float_speed = {part: graph_metrics.speed(graphs[part], inputs_of(part)) for part in parts}
        reference = quality(graphs["encoder"], graphs["decoder"])
        results[fmt] = {"float32": _summary(reference)}
        for mode in modes:
            quantized = {}
            for part in parts:
                name = quantization.file_name(part, mode, WRITERS[fmt][1])
                tool = quantization.quantize(fmt, mode, floats[fmt, part], folder / name,
                                             {"x": calibration} if part == "encoder" else {"z": z_calibration})
                quantized[part] = runtimes.open_graph(fmt, folder / name)
                size, float_size = (folder / name).stat().st_size, floats[fmt, part].stat().st_size
                ins, outs = _io_spec(part_function(model, part))
                artifacts.append({
                    "file": name, "format": fmt, "part": part, "quantize": mode, "tool": tool,
                    "sha256": tree_sha256(folder / name), "inputs": ins, "outputs": outs,
                    "runtime": runtimes.runtime_version(fmt), "size_bytes": size, "float32_size_bytes": float_size,
                    "smaller_by": round(float_size / size, 2),
                    "difference_from_float32": graph_metrics.differences(quantized[part], graphs[part], probes[part]),
                    "speed": graph_metrics.speed(quantized[part], inputs_of(part)),
                    "float32_speed": float_speed[part],
                })
            pairs = {"pair": {**graphs, **quantized}}
            if len(quantized) == 2:
                pairs["decoder_only"] = {**graphs, "decoder": quantized["decoder"]}
            results[fmt][mode] = {kind: _summary(quality(p["encoder"], p["decoder"]), reference)
                                  for kind, p in pairs.items()}
            measured = results[fmt][mode]["pair"]
            drop = measured["log_px_drop"]
            if max_drop is not None and drop["mean"] > max_drop:
                raise QualityGateError(
                    f"The {mode} {fmt} {' + '.join(parts)} lower the test log p(x) by {drop['mean']:.3f} "
                    f"+- {drop['standard_error']:.3f} nats per image (float32 "
                    f"{results[fmt]['float32']['log_px']['mean']:.3f}, quantized {measured['log_px']['mean']:.3f}; "
                    f"k={k}, {len(x_iw)} test images), more than max_drop={max_drop:g}. Nothing was written. "
                    "Choose another mode (float16 costs least) or allow a larger drop (--max-drop).")
    return {"artifacts": artifacts, "max_drop": max_drop,
            "protocol": {"elbo_B": f"estimator B (eq. 7), L = 1, all {len(x_test)} test images",
                         "log_px": f"importance-weighted, k = {k}, the first {len(x_iw)} test images",
                         "seed": seed, "noise": "numpy default_rng([seed, first row]): the same eps for every pair",
                         "units": "nats per image; drops are float32 minus quantized, paired, with their standard "
                                  "errors", "graphs": "measured through the exported graphs in their runtimes",
                         "pairs": "pair: the exported parts quantized, any other part float32; decoder_only: "
                                  "float32 encoder + quantized decoder",
                         "probe": f"differences: the first {len(probes['encoder']['x'])} test images (encoder), "
                                  f"{PROBE_ROWS} z ~ N(0, I) from default_rng({seed}) (decoder)",
                         "speed": "batch-1 latency over 300 runs and batch-256 throughput over 30 (probe rows), "
                                  "after warm-up, in one process on this machine, each runtime with its default "
                                  "threads"},
            **images, "results": results}


def _summary(values: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    elbo, log_px = values
    out = {"elbo_B": mean_and_se(elbo), "log_px": mean_and_se(log_px)}
    if reference is not None:
        out["elbo_B_drop"] = mean_and_se(reference[0] - elbo)
        out["log_px_drop"] = mean_and_se(reference[1] - log_px)
    return out


def _evaluation_data(model: VAE, path, seed: int, modes) -> dict:
    """Calibration images (up to CALIBRATION_SIZE training images, drawn with `seed`) and test
    images, binarized for Bernoulli models, with what they are."""
    if path is None:
        try:
            name = dataset_of(model)
        except InvalidArgumentError as err:
            need = "calibrate int8-static graphs and measure" if "int8-static" in modes else "measure"
            raise InvalidArgumentError(
                f"Quantized exports need images to {need} them on, and no data set of the zoo fits this model "
                f"({err}). Pass data=PATH (vae-zoo export --data PATH) with images like its training data.") from None
        train, test = data_lib.load(name, "train"), data_lib.test_set(name, model.is_binary)
        described = {"data": name, "test_set": f"the {len(test)} {name} test images" + (
            ", fixed binarization (see data)" if model.is_binary else "")}
    else:
        source = user_data.read(path)
        if source.input_dim != model.input_dim:
            raise InvalidArgumentError(f"{path} holds images of {source.input_dim} pixels; the model takes "
                                       f"{model.input_dim}. Pass images like its training data.")
        train, test, split = source.split(0.1, seed)
        if isinstance(train, shards.Shards):
            train = train.head(CALIBRATION_SIZE * 10)
        described = {"data": source.describe(), "test_set": split.split(";")[0] + "; calibration rows from the rest"}
        if model.is_binary:
            test = data_lib.binarize(test, seed + 1)
            described["test_set"] += f"; binarized with numpy default_rng({seed + 1})"
    rows = np.sort(np.random.default_rng(seed).choice(len(train), min(CALIBRATION_SIZE, len(train)), replace=False))
    calibration = data_lib.binarize(train[rows], seed) if model.is_binary else train[rows]
    out = {**described, "test": test, "calibration": calibration}
    if "int8-static" in modes:
        out["calibration_set"] = {
            "encoder": f"{len(rows)} training images, rows numpy default_rng({seed}).choice({len(train)}, "
                       f"{len(rows)}, replace=False)"
                       + (f", binarized with default_rng({seed})" if model.is_binary else ""),
            "decoder": f"z ~ q(z|x) of those images under the float32 model, eps from default_rng([{seed}, 1])",
            "size": len(rows), "seed": seed}
    return out


def _posterior_samples(model: VAE, x: np.ndarray, seed: int) -> np.ndarray:
    out = model.encoder.outputs(tf.constant(x))
    eps = np.random.default_rng([seed, 1]).standard_normal(out["z_mean"].shape, dtype=np.float32)
    return (out["z_mean"].numpy() + np.exp(0.5 * out["z_log_var"].numpy()) * eps).astype(np.float32)


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


def build_bundle(out_dir: str | os.PathLike = "export", names=None, quantize="none") -> dict:
    """Writes the ONNX encoder and decoder of every shipped preset, its quantized decoders
    where they cost little, and one manifest.

    Each preset goes to `out_dir/NAME/` (replaced if present, other files in `out_dir` are
    kept). For each quantized mode of `quantize`, the preset's decoder is quantized and
    measured (float32 encoder + quantized decoder against the float32 pair) and shipped as
    `NAME/decoder.MODE.onnx` when it lowers the test log p(x) by at most
    `quantization.MAX_DROP` nats per image; the others are listed under "not_shipped" with their
    measured drop. `out_dir/manifest.json` lists every artifact with its path relative to `out_dir`.

    Args:
        out_dir: the bundle folder (the repository's `export/`).
        names: presets to include (default: every preset with a model card).
        quantize: quantization modes of the decoders, besides float32 ("none").

    Returns:
        The bundle manifest.
    """
    modes = [m for m in check_choices("quantize", quantize, quantization.MODES, "quantization mode") if m != "none"]
    out_dir = Path(out_dir)
    names = names or registry.shipped_presets()
    presets = {}
    for name in names:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
            folder = Path(scratch) / name
            manifest = export(name, folder, formats=("onnx",), parts=("encoder", "decoder"))
            if modes:
                measured = export(name, Path(scratch) / "quantized", formats=("onnx",), parts=("decoder",),
                                  quantize=modes, max_drop=None)
                manifest["quality"] = {**measured["quality"], "shipped_if": "the decoder lowers the test log p(x) "
                                       f"by at most {quantization.MAX_DROP:g} nats per image"}
                manifest["not_shipped"] = []
                for artifact in measured["artifacts"]:
                    drop = measured["quality"]["results"]["onnx"][artifact["quantize"]]["pair"]["log_px_drop"]
                    if drop["mean"] <= quantization.MAX_DROP:
                        os.replace(Path(scratch) / "quantized" / artifact["file"], folder / artifact["file"])
                        manifest["artifacts"].append(artifact)
                    else:
                        manifest["not_shipped"].append({"file": artifact["file"], "log_px_drop": drop})
                atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1))
            replace_dir(folder, out_dir / name)
        for artifact in manifest["artifacts"]:
            artifact["file"] = f"{name}/{artifact['file']}"
        presets[name] = manifest
    flags = f" --quantize none {' '.join(modes)}" if modes else ""
    bundle = {"command": f"vae-zoo export --all-presets{flags} -o {out_dir}", "onnx_opset": ONNX_OPSET,
              "presets": presets}
    atomic_write_text(out_dir / MANIFEST, json.dumps(bundle, indent=1))
    return bundle
