"""Quantized exports measured through the graphs themselves: the quantized files beside the
float32 ones, their size, difference, speed, and the test ELBO and log p(x) they cost
(`exporters.export(..., quantize=...)` writes what `export_quantized` returns to the manifest).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.core.errors import InvalidArgumentError, QualityGateError
from vae_zoo.core.io import tree_sha256
from vae_zoo.core.summaries import mean_and_se
from vae_zoo.data import datasets as data_lib
from vae_zoo.data import shards, user_data
from vae_zoo.data.shapes import check_image_shape, image_shape
from vae_zoo.deploy import graph_metrics, quantization, runtimes
from vae_zoo.deploy.graphs import WRITERS, io_spec, part_function
from vae_zoo.model.vae import VAE
from vae_zoo.zoo.evaluation import dataset_of

PAIR = ("encoder", "decoder")
CALIBRATION_SIZE = 1000  # training images that calibrate int8-static graphs
PROBE_ROWS = 256
PROGRESS_SECONDS = 10.0  # the longest a measurement runs without a line of progress


def export_quantized(model: VAE, formats, parts, modes, floats: dict, folder: Path, data, max_drop: float | None,
                     seed: int, k: int, points: int, preset: str | None = None, report=lambda message: None) -> dict:
    """Writes the quantized graphs of `parts` into `folder` and measures them against the
    float32 graphs `floats` ((format, part) -> path). Returns the manifest's "quality" section
    with the quantized artifacts under "artifacts"."""
    images = _evaluation_data(model, data, seed, modes, preset)
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
        last = [time.monotonic()]

        def rows_done(n):  # a line at most every PROGRESS_SECONDS inside the longest step
            if time.monotonic() - last[0] >= PROGRESS_SECONDS and n < len(x_iw):
                last[0] = time.monotonic()
                report(f"  log p(x) of {n:,} of {len(x_iw):,} test images measured")

        return (graph_metrics.elbo_b(encoder, decoder, model.likelihood, x_test, seed),
                graph_metrics.log_likelihood(encoder, decoder, model.likelihood, x_iw, k, seed, rows_done))

    artifacts, results = [], {}
    for fmt in formats:
        graphs = {part: runtimes.open_graph(fmt, floats[fmt, part]) for part in PAIR}
        report(f"timing the float32 {fmt} graphs")
        float_speed = {part: graph_metrics.speed(graphs[part], inputs_of(part)) for part in parts}
        report(f"measuring the float32 {fmt} graphs: ELBO on {len(x_test)} test images, log p(x) (k={k}) on "
               f"{len(x_iw)}")
        reference = quality(graphs["encoder"], graphs["decoder"])
        results[fmt] = {"float32": _summary(reference)}
        for mode in modes:
            quantized = {}
            for part in parts:
                name = quantization.file_name(part, mode, WRITERS[fmt][1])
                report(f"quantizing the {part} to {mode} {fmt}" + (f" (calibrating on {len(calibration)} images)"
                                                                    if mode == "int8-static" else "")
                       + ", then timing it")
                tool = quantization.quantize(fmt, mode, floats[fmt, part], folder / name,
                                             {"x": calibration} if part == "encoder" else {"z": z_calibration})
                quantized[part] = runtimes.open_graph(fmt, folder / name)
                size, float_size = (folder / name).stat().st_size, floats[fmt, part].stat().st_size
                ins, outs = io_spec(part_function(model, part))
                artifacts.append({
                    "file": name, "format": fmt, "part": part, "quantize": mode, "tool": tool,
                    "sha256": tree_sha256(folder / name), "inputs": ins, "outputs": outs,
                    "runtime": runtimes.runtime_version(fmt), "size_bytes": size, "float32_size_bytes": float_size,
                    "smaller_by": round(float_size / size, 2),
                    "difference_from_float32": graph_metrics.differences(quantized[part], graphs[part], probes[part]),
                    "speed": graph_metrics.speed(quantized[part], inputs_of(part)),
                    "float32_speed": float_speed[part],
                })
            report(f"measuring the {mode} {fmt} graphs against float32")
            pairs = {"pair": {**graphs, **quantized}}
            if len(quantized) == 2:
                pairs["decoder_only"] = {**graphs, "decoder": quantized["decoder"]}
            results[fmt][mode] = {kind: _summary(quality(p["encoder"], p["decoder"]), reference)
                                  for kind, p in pairs.items()}
            measured = results[fmt][mode]["pair"]
            drop = measured["log_px_drop"]
            _check_finite(results[fmt], f"The {mode} {fmt} {' + '.join(parts)}")
            if max_drop is not None and not drop["mean"] <= max_drop:  # fails closed
                se = "undefined" if drop["standard_error"] is None else f"{drop['standard_error']:.3f}"
                raise QualityGateError(
                    f"The {mode} {fmt} {' + '.join(parts)} lower the test log p(x) by {drop['mean']:.3f} "
                    f"+- {se} nats per image (float32 "
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


def _check_finite(measured: dict, what: str, where: str = "") -> None:
    """Raises QualityGateError if any measured mean in `measured` (nested summaries) is not
    finite: a graph that outputs NaN or inf is refused whether or not a gate was asked for."""
    if "mean" in measured:
        if not np.isfinite(measured["mean"]):
            raise QualityGateError(
                f"{what}: the {where.strip()} is {measured['mean']} (not finite): the graphs output NaN or inf on "
                "the test images. Nothing was written. Choose another mode (float16 costs least).")
        return
    for key, value in measured.items():
        _check_finite(value, what, f"{where} {key}")


def _summary(values: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    elbo, log_px = values
    out = {"elbo_B": mean_and_se(elbo), "log_px": mean_and_se(log_px)}
    if reference is not None:
        out["elbo_B_drop"] = mean_and_se(reference[0] - elbo)
        out["log_px_drop"] = mean_and_se(reference[1] - log_px)
    return out


def _evaluation_data(model: VAE, path, seed: int, modes, preset: str | None) -> dict:
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
        check_image_shape(str(path), source.image_shape, image_shape(preset, model.input_dim), preset or "the model")
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
