"""Exporters: encoders and decoders as SavedModel, ONNX and TFLite, parity-checked against Keras.

Graphs (float32, dynamic batch, no random ops inside) are those of `graphs`; quantized ones are
measured by `quantized_export`.

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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vae_zoo.core.errors import IntegrityError, OutputExistsError, ParityError
from vae_zoo.core.io import (
    atomic_write_text,
    check_replaceable,
    confined,
    files_in,
    overlap,
    replace_dir,
    staged_dir,
    tree_sha256,
)
from vae_zoo.core.preset_format import preset_path
from vae_zoo.core.validation import check_choices, check_positive_float, check_positive_int, check_seed
from vae_zoo.deploy import quantization, runtimes
from vae_zoo.deploy.graphs import ONNX_OPSET, WRITERS, io_spec, part_function, probe_inputs
from vae_zoo.deploy.quantized_export import PAIR, export_quantized
from vae_zoo.model.vae import VAE
from vae_zoo.zoo import registry

FORMATS = ("saved_model", "onnx", "tflite")
PARTS = ("encoder", "decoder", "sampling_encoder")
TOLERANCE = 1e-5
MANIFEST = "manifest.json"



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
    progress: Callable[[str], None] | None = None,
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
        progress: called with a line before each step that takes time (conversion, calibration,
            measurement); the command line prints them.

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
    report = progress or (lambda message: None)
    out_dir = Path(out_dir)
    overlap({"folder": out_dir}, {"preset": None if isinstance(model_or_name, VAE) else preset_path(model_or_name),
                                  "data": data})
    with staged_dir(out_dir, overwrite, export_files, "export") as tmp, \
            tempfile.TemporaryDirectory(dir=tmp.parent) as scratch:
        source = _source(model_or_name)
        model = source.pop("model")
        manifest = {"source": source, "latent_dim": model.latent_dim, "input_dim": model.input_dim,
                    "likelihood": model.likelihood, "tolerance": tolerance, "artifacts": []}
        # Float32 graphs: written out when asked for, else kept in scratch as the reference.
        floats = {}
        for part in tuple(dict.fromkeys((*parts, *PAIR))) if quantized else parts:
            for fmt in formats:
                folder = tmp if "none" in modes and part in parts else Path(scratch)
                report(f"converting the {part} to {fmt} and checking it against Keras")
                artifact = _export_one(model, part, fmt, folder, tolerance)
                floats[fmt, part] = folder / artifact["file"]
                if folder == tmp:
                    manifest["artifacts"].append(artifact)
        if quantized:
            measured = export_quantized(model, formats, parts, quantized, floats, tmp, data, max_drop, seed,
                                        quality_k, quality_points, source["preset"], report)
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
    inputs = probe_inputs(model, part)
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
    ins, outs = io_spec(fn)
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


def export_files(folder: Path) -> set[str] | None:
    """The files of an export folder vae-zoo wrote (its manifest lists them; a SavedModel is a
    folder of files), or None if it is not one."""
    try:
        artifacts = json.loads((Path(folder) / MANIFEST).read_text())["artifacts"]
        names = [confined(folder, a["file"], folder / MANIFEST) for a in artifacts]
    except (OSError, ValueError, KeyError, TypeError, IntegrityError):
        return None
    files = {MANIFEST}
    for path in names:
        files |= files_in(folder, path) if path.is_dir() else {str(path.relative_to(folder))}
    return files


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
    try:
        entries = list(manifest["presets"].values()) if "presets" in manifest else [manifest]
        artifacts = [(a["file"], a["sha256"]) for entry in entries for a in entry["artifacts"]]
    except (AttributeError, KeyError, TypeError) as err:
        raise IntegrityError(f"{folder / MANIFEST} is not a manifest of vae-zoo ({type(err).__name__}: {err}); "
                             "export again with vae-zoo export.") from None
    for name, sha256 in artifacts:
        path = confined(folder, name, folder / MANIFEST)
        actual = tree_sha256(path) if path.exists() else "missing"
        if actual != sha256:
            raise IntegrityError(f"{path} is corrupt or was changed: sha256 {actual}, expected "
                                 f"{sha256} (from {folder / MANIFEST}). Export it again.")
    if "presets" not in manifest:  # an export folder holds what its manifest lists, nothing else
        unlisted = sorted(files_in(folder) - (export_files(folder) or set()))
        if unlisted:
            raise IntegrityError(f"{folder} holds files its {MANIFEST} does not list ({', '.join(unlisted[:3])}"
                                 f"{' ...' if len(unlisted) > 3 else ''}): added or left from another export. "
                                 "Export again into an empty folder.")
    return manifest


def _is_bundle_manifest(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()).get("presets"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def build_bundle(out_dir: str | os.PathLike = "export", names=None, quantize="none", overwrite: bool = False) -> dict:
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
        overwrite: replace the presets' folders and the manifest of an existing bundle (only
            folders of exports vae-zoo wrote, holding nothing else).

    Returns:
        The bundle manifest.

    Raises:
        OutputExistsError: a preset's folder or the manifest exists and not `overwrite`, or a
            folder in the way is not an export of vae-zoo; checked before any work.
    """
    modes = [m for m in check_choices("quantize", quantize, quantization.MODES, "quantization mode") if m != "none"]
    out_dir = Path(out_dir)
    names = names or registry.shipped_presets()
    overlap({"folder": out_dir}, {f"preset {name}": preset_path(name) for name in names})
    in_the_way = [p for p in [out_dir / MANIFEST, *(out_dir / name for name in names)] if os.path.lexists(p)]
    if in_the_way and not overwrite:
        raise OutputExistsError(f"{', '.join(map(str, in_the_way[:3]))}{' ...' if len(in_the_way) > 3 else ''} "
                                "already exist. Pass overwrite=True (--overwrite) to replace the bundle's files.")
    for path in in_the_way:
        if path.name != MANIFEST:
            check_replaceable(path, export_files, "export")
        elif not _is_bundle_manifest(path):
            raise OutputExistsError(f"{path} is not the manifest of a vae-zoo bundle; --overwrite replaces only "
                                    "such a manifest. Choose another output.")
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
    bundle = {"command": f"vae-zoo export --all-presets{flags} -o {out_dir}{' --overwrite' * overwrite}",
              "onnx_opset": ONNX_OPSET,
              "presets": presets}
    atomic_write_text(out_dir / MANIFEST, json.dumps(bundle, indent=1))
    return bundle
