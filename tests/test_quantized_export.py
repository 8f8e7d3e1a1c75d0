"""Quantized exports: every mode runs in its runtime under the declared names at any batch size,
is as small as int8 or float16 should be, measures its cost reproducibly through the graphs, and
is refused by the quality gate or by bad arguments with nothing written."""

import json

import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vae_zoo
from vae_zoo.core.errors import InvalidArgumentError, QualityGateError
from vae_zoo.core.io import tree_sha256
from vae_zoo.deploy import exporters, quantization

MODES = ("float16", "int8-dynamic", "int8-static")
QUICK = dict(quality_k=20, quality_points=50)  # the protocol is k = 1000 on 1,000 images; tests need less


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    out = tmp_path_factory.mktemp("quantized") / "mnist-z2"
    manifest = exporters.export("mnist-z2", out, formats=("onnx", "tflite"), quantize=("none", *MODES),
                                max_drop=None, **QUICK)
    return out, manifest


def _run(fmt, path, inputs):
    """The graph in its own runtime, by the names it declares."""
    if fmt == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == list(inputs)
        assert all(i.shape[0] == "batch" for i in session.get_inputs())  # a dynamic batch dimension
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs)))
    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return runner(**inputs)


@pytest.mark.slow
def test_every_mode_runs_in_its_runtime_with_the_declared_names_at_any_batch(quantized):
    out, manifest = quantized
    assert json.loads((out / "manifest.json").read_text()) == manifest
    graphs = [a for a in manifest["artifacts"] if "quantize" in a]
    assert {(a["format"], a["quantize"], a["part"]) for a in graphs} == {
        (f, m, p) for f in ("onnx", "tflite") for m in MODES for p in ("encoder", "decoder")}
    rng = np.random.default_rng(0)
    for a in graphs:
        assert a["file"] == f"{a['part']}.{a['quantize']}.{a['format']}" and a["sha256"] == tree_sha256(out / a["file"])
        for n in (1, 7):
            inputs = {name: (rng.random((n, shape[1]), dtype=np.float32) if name == "x"
                             else rng.standard_normal((n, shape[1]), dtype=np.float32))
                      for name, shape in a["inputs"].items()}
            got = _run(a["format"], out / a["file"], inputs)
            assert set(got) == set(a["outputs"]), a["file"]
            for name, shape in a["outputs"].items():
                assert got[name].shape == (n, shape[1]) and got[name].dtype == np.float32
                assert np.isfinite(got[name]).all()


@pytest.mark.slow
def test_int8_decoders_are_at_least_3_5x_smaller_and_float16_ones_about_2x(quantized):
    out, manifest = quantized
    for a in manifest["artifacts"]:
        if a.get("quantize") and a["part"] == "decoder":
            ratio = a["float32_size_bytes"] / (out / a["file"]).stat().st_size
            assert ratio == pytest.approx(a["smaller_by"], abs=0.01)
            if a["quantize"] == "float16":
                assert 1.9 <= ratio <= 2.1, a["file"]
            else:
                assert ratio >= 3.5, a["file"]


@pytest.mark.slow
def test_the_manifest_records_what_each_graph_costs(quantized):
    _, manifest = quantized
    quality = manifest["quality"]
    assert quality["protocol"]["log_px"] == "importance-weighted, k = 20, the first 50 test images"
    assert quality["calibration_set"]["size"] == 1000 and quality["calibration_set"]["seed"] == 0
    assert quality["test_set"].startswith("the 10000 mnist test images")
    for fmt in ("onnx", "tflite"):
        results = quality["results"][fmt]
        for mode in MODES:
            for kind in ("pair", "decoder_only"):
                entry = results[mode][kind]
                assert set(entry) == {"elbo_B", "log_px", "elbo_B_drop", "log_px_drop"}
                assert entry["log_px_drop"]["mean"] == pytest.approx(
                    results["float32"]["log_px"]["mean"] - entry["log_px"]["mean"], abs=2e-3)
        assert abs(results["float16"]["pair"]["log_px_drop"]["mean"]) < 0.05  # float16 costs ~nothing
    for a in (a for a in manifest["artifacts"] if "quantize" in a):
        assert a["difference_from_float32"]["max_abs"] >= a["difference_from_float32"]["mean_abs"] > 0
        for speed in (a["speed"], a["float32_speed"]):
            assert speed["batch1_p99_ms"] >= speed["batch1_p50_ms"] > 0 and speed["batch256_per_s"] > 0


@pytest.mark.slow
def test_rerunning_the_measurement_reproduces_the_quality_numbers(quantized, tmp_path):
    _, manifest = quantized
    again = exporters.export("mnist-z2", tmp_path / "again", formats="tflite", quantize="int8-dynamic",
                             max_drop=None, **QUICK)
    assert again["quality"]["results"]["tflite"] == {
        k: manifest["quality"]["results"]["tflite"][k] for k in ("float32", "int8-dynamic")}


def test_the_quality_gate_refuses_at_zero_giving_the_measured_drop(tmp_path):
    with pytest.raises(QualityGateError, match=r"int8-static onnx decoder lower the test log p\(x\) by [0-9.]+ \+- "
                                               r"[0-9.]+ nats per image .* more than max_drop=0\. Nothing was written"):
        exporters.export("mnist-z2", tmp_path / "out", formats="onnx", parts="decoder", quantize="int8-static",
                         max_drop=0, **QUICK)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["elbo_b", "log_likelihood"])
@pytest.mark.parametrize("max_drop", [None, 1.0])
def test_a_quantized_graph_that_measures_nan_is_refused_gate_or_not(tmp_path, monkeypatch, metric, max_drop):
    from vae_zoo.deploy import graph_metrics

    original, calls = getattr(graph_metrics, metric), []

    def nan_after_the_float32_reference(*args, **kwargs):
        calls.append(1)
        values = original(*args, **kwargs)
        return values if len(calls) == 1 else np.full_like(values, np.nan)

    monkeypatch.setattr(graph_metrics, metric, nan_after_the_float32_reference)
    with pytest.raises(QualityGateError, match="pair .* is nan .not finite.*Nothing was written"):
        exporters.export("mnist-z2", tmp_path / "out", formats="onnx", parts="decoder", quantize="float16",
                         max_drop=max_drop, **QUICK)
    assert list(tmp_path.iterdir()) == []


def test_the_standard_error_of_one_image_is_undefined():
    from vae_zoo.zoo.evaluation import mean_and_se, plus_minus

    assert mean_and_se(np.array([-90.0])) == {"mean": -90.0, "standard_error": None}
    assert plus_minus(mean_and_se(np.array([-90.0]))) == "-90.000 +- undefined"
    assert mean_and_se(np.array([1.0, 3.0]))["standard_error"] == 0.707


@pytest.mark.parametrize("kwargs, message", [
    (dict(quantize="int4"), "Unknown quantization mode.*int4.*Available: none, float16, int8-dynamic, int8-static"),
    (dict(formats="saved_model", quantize="float16"), "saved_model cannot be quantized.*formats onnx, tflite"),
    (dict(formats="onnx", parts="sampling_encoder", quantize="int8-dynamic"), "parts encoder and decoder"),
    (dict(formats="onnx", quantize="int8-static", max_drop=-1.0), "`max_drop` must be a finite number >= 0"),
    (dict(formats="onnx", quantize="int8-static", max_drop=float("nan")), "`max_drop` must be a finite number"),
    (dict(formats="onnx", quantize="int8-static"),
     "need images to calibrate int8-static graphs.*no data set of the zoo fits this model.*Pass data=PATH"),
])
def test_bad_quantization_requests_are_refused_naming_the_choices(tmp_path, kwargs, message):
    model = vae_zoo.VAE(input_dim=64, latent_dim=2, hidden_units=8, seed=0)  # no zoo data set has 64 pixels
    with pytest.raises(InvalidArgumentError, match=message):
        exporters.export(model, tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_model_of_your_own_data_is_calibrated_and_measured_on_it(tmp_path):
    images = np.random.default_rng(0).random((300, 8, 8)).astype(np.float32)
    np.save(tmp_path / "faces.npy", images)
    model = vae_zoo.VAE(input_dim=64, latent_dim=2, hidden_units=8, likelihood="gaussian", seed=0)
    manifest = exporters.export(model, tmp_path / "out", formats="onnx", quantize="int8-static",
                                data=tmp_path / "faces.npy", max_drop=None, **QUICK)
    quality = manifest["quality"]
    assert quality["data"]["source"] == str(tmp_path / "faces.npy") and quality["data"]["examples"] == 300
    assert quality["test_set"].startswith("held out: the last 30 of numpy default_rng(0).permutation(300)")
    assert quality["calibration_set"]["size"] == 270
    with pytest.raises(InvalidArgumentError, match="holds images of 64 pixels; the model takes 784"):
        exporters.export("mnist-z2", tmp_path / "x", formats="onnx", quantize="float16",
                         data=tmp_path / "faces.npy")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(modes=st.lists(st.one_of(st.sampled_from(quantization.MODES), st.text(max_size=12)), max_size=3),
       formats=st.lists(st.sampled_from(exporters.FORMATS), min_size=1, max_size=3),
       parts=st.lists(st.sampled_from(exporters.PARTS), min_size=1, max_size=3))
def test_any_quantize_request_is_refused_before_work_or_is_valid(tmp_path, modes, formats, parts):
    valid = modes and set(modes) <= set(quantization.MODES) and (set(modes) == {"none"} or (
        set(formats) <= set(quantization.FORMATS) and set(parts) <= {"encoder", "decoder"}))
    assume(not valid)
    model = vae_zoo.VAE(input_dim=64, latent_dim=2, hidden_units=8, seed=0)
    out = tmp_path / "never"
    with pytest.raises(InvalidArgumentError) as info:
        exporters.export(model, out, formats=formats, parts=parts, quantize=modes)
    assert "\n" not in str(info.value) and not out.exists()


@pytest.mark.slow
def test_export_quantize_from_the_command_line(tmp_path, in_process, monkeypatch):
    from vae_zoo.deploy import quantized_export

    monkeypatch.setattr(quantized_export, "PROGRESS_SECONDS", 0.0)  # a line after every batch of the measurement
    monkeypatch.setattr(quantized_export.graph_metrics, "ROWS_PER_CALL", 100)  # batches of 10 images at k = 10
    result = in_process("export", "mnist-z2", "--format", "onnx", "--part", "decoder", "--quantize", "int8-dynamic",
                     "-o", tmp_path / "out", "--quality-k", "10", "--quality-points", "20")
    assert "decoder.int8-dynamic.onnx" in result.stdout and "test log p(x) drop" in result.stdout
    assert "list none in --quantize to write them too" in result.stdout  # what --quantize MODE alone leaves out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["decoder.int8-dynamic.onnx", "manifest.json"]
    # every step that takes time says so first, in one format: [elapsed] what
    steps = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert any("quantizing the decoder to int8-dynamic onnx" in line for line in steps), result.stdout
    assert any("measuring the float32 onnx graphs" in line for line in steps)
    assert all(line.split("]")[0].strip("[ ").endswith(" s") for line in steps)
    assert any("log p(x) of 10 of 20 test images measured" in line for line in steps), result.stdout
    assert vae_zoo.verify(tmp_path / "out")["quality"]["max_drop"] == quantization.MAX_DROP
    for args, message in ((("--quantize", "int4"), "Unknown quantization mode"),
                          (("--format", "saved_model", "--quantize", "float16"), "saved_model cannot be quantized"),
                          (("--quantize", "float16", "--max-drop", "-1"), "must be a finite number >= 0")):
        bad = in_process("export", "mnist-z2", "-o", tmp_path / "bad", *args, check=False)
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_without_the_quantize_extra_a_quantized_export_names_it_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("litert_quantizer", "sympy") else real(name, *a))
    with pytest.raises(ValueError, match=r"quantize extra \(litert-quantizer, sympy missing here\): pip install "
                                         r"'vae-zoo\[quantize\]'"):
        vae_zoo.export("mnist-z2", tmp_path / "q", quantize="int8-dynamic")
    assert not (tmp_path / "q").exists()
    vae_zoo.export("mnist-z2", tmp_path / "f", formats="onnx", parts="decoder")  # float32 needs none of them
