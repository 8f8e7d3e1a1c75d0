"""Exported encoders and decoders: names, shapes, parity in every runtime, refusals."""

import json

import numpy as np
import onnxruntime as ort
import pytest

import vae_zoo
from vae_zoo.core.io import tree_sha256
from vae_zoo.deploy import exporters as export_lib
from vae_zoo.zoo import registry


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = vae_zoo.VAE(input_dim=560, latent_dim=5, hidden_units=32, likelihood="gaussian", seed=0)
    out = tmp_path_factory.mktemp("export") / "frey-small"
    manifest = export_lib.export(model, out, parts=("encoder", "decoder", "sampling_encoder"))
    return model, out, manifest


def test_manifest_lists_every_artifact_with_measured_parity(exported):
    model, out, manifest = exported
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert {(a["part"], a["format"]) for a in manifest["artifacts"]} == {
        (p, f) for p in ("encoder", "decoder", "sampling_encoder") for f in ("saved_model", "onnx", "tflite")
    }
    for artifact in manifest["artifacts"]:
        assert (out / artifact["file"]).exists()
        assert artifact["max_abs_error"] <= 1e-5
        assert artifact["sha256"] == tree_sha256(out / artifact["file"])
        assert (artifact["opset"] is not None) == (artifact["format"] == "onnx")
    decoder = next(a for a in manifest["artifacts"] if a["file"] == "decoder.onnx")
    assert decoder["inputs"] == {"z": [None, 5]}
    assert decoder["outputs"] == {"x_mean": [None, 560], "x_log_var": [None, 560]}
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_onnx_graphs_match_keras_at_any_batch_size(exported):
    model, out, _ = exported
    x = np.random.default_rng(1).random((37, 560), dtype=np.float32)
    enc = ort.InferenceSession(str(out / "encoder.onnx"))
    z_mean, z_log_var = enc.run(["z_mean", "z_log_var"], {"x": x})
    q = model.encode(x)
    np.testing.assert_allclose(z_mean, q.mean(), atol=1e-5)
    np.testing.assert_allclose(np.exp(z_log_var), q.variance(), rtol=1e-4)
    dec = ort.InferenceSession(str(out / "decoder.onnx"))
    (x_mean,) = dec.run(["x_mean"], {"z": z_mean})
    np.testing.assert_allclose(x_mean, model.reconstruct(x), atol=1e-5)
    sampler = ort.InferenceSession(str(out / "sampling_encoder.onnx"))
    eps = np.ones((37, 5), np.float32)
    (z,) = sampler.run(["z"], {"x": x, "eps": eps})
    np.testing.assert_allclose(z, z_mean + np.exp(0.5 * z_log_var), atol=1e-5)


def test_bernoulli_decoder_outputs_probabilities(tmp_path):
    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=16, seed=0)
    export_lib.export(model, tmp_path / "m", formats="onnx", parts="decoder")
    session = ort.InferenceSession(str(tmp_path / "m" / "decoder.onnx"))
    assert [o.name for o in session.get_outputs()] == ["x_mean"]
    (p,) = session.run(None, {"z": np.zeros((2, 3), np.float32)})
    assert p.shape == (2, 784) and np.all((p > 0) & (p < 1))


def test_tflite_has_builtin_ops_only_and_runs_in_litert(exported):
    from ai_edge_litert.interpreter import Interpreter

    _, out, _ = exported
    interpreter = Interpreter(model_path=str(out / "decoder.tflite"))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert ops and not any(op.startswith("Flex") for op in ops)
    result = interpreter.get_signature_runner()(z=np.zeros((3, 5), np.float32))
    assert result["x_mean"].shape == (3, 560)


def test_opening_a_tflite_graph_writes_nothing_to_the_console(exported):
    """LiteRT's C++ logs "INFO: Created TensorFlow Lite XNNPACK delegate" once per process; the
    runtime that checks exports keeps it off the user's console (a fresh process, so it is the first)."""
    import subprocess
    import sys

    _, out, _ = exported
    code = ("import numpy as np; from vae_zoo.deploy.runtimes import open_graph; "
            f"g = open_graph('tflite', {str(out / 'decoder.tflite')!r}); "
            "print(g({'z': np.zeros((2, 5), np.float32)})['x_mean'].shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "(2, 560)" and result.stderr == "", result.stderr


def test_wrong_input_shape_fails_in_the_runtime_with_a_message(exported):
    _, out, _ = exported
    session = ort.InferenceSession(str(out / "decoder.onnx"))
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session.run(None, {"z": np.zeros((2, 4), np.float32)})


def test_refuses_to_overwrite_a_non_empty_folder(exported, tmp_path):
    model, out, manifest = exported
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_lib.export(model, out, formats="onnx", parts="decoder")
    assert json.loads((out / "manifest.json").read_text()) == manifest  # untouched
    target = tmp_path / "again"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export_lib.export(model, target, formats="onnx")
    assert (target / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("kwargs, message", [
    (dict(formats=("onnx", "coreml")), "Unknown format.*coreml.*Available: saved_model, onnx, tflite"),
    (dict(parts="head"), "Unknown part.*head.*Available: encoder, decoder, sampling_encoder"),
])
def test_bad_format_or_part_names(tmp_path, kwargs, message):
    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=16)
    with pytest.raises(ValueError, match=message):
        export_lib.export(model, tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_parity_failure_leaves_nothing_behind(tmp_path):
    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=16)
    with pytest.raises(export_lib.ParityError, match="above the tolerance"):
        export_lib.export(model, tmp_path / "x", formats="tflite", parts="encoder", tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


# The fast tier exports one preset of each kind (one hidden layer, two, a Gaussian decoder); the slow one all.
FAST_EXPORTS = ("mnist-z20", "mnist-200x2-z50-elbo", "frey-z5")


@pytest.mark.parametrize("name", [pytest.param(name, marks=() if name in FAST_EXPORTS else pytest.mark.slow)
                                  for name in registry.shipped_presets()])
def test_every_shipped_preset_exports_to_all_formats_within_tolerance(name, tmp_path):
    manifest = export_lib.export(name, tmp_path / name)
    assert manifest["source"]["preset"] == name
    assert manifest["source"]["weights_sha256"] == registry.read_card(name)["weights_sha256"]
    assert len(manifest["artifacts"]) == 6
    assert all(a["max_abs_error"] <= 1e-5 for a in manifest["artifacts"])


def test_onnx_export_is_byte_for_byte_reproducible(tmp_path):
    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=16, seed=0)
    export_lib.export(model, tmp_path / "a", formats="onnx")
    vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=16)  # traces more functions in between
    export_lib.export(model, tmp_path / "b", formats="onnx")
    for part in ("encoder", "decoder"):
        assert (tmp_path / "a" / f"{part}.onnx").read_bytes() == (tmp_path / "b" / f"{part}.onnx").read_bytes()


@pytest.mark.parametrize("change", [
    lambda m: m["artifacts"][0].update(file="../frey-small/encoder.onnx"),
    lambda m: m["artifacts"][0].update(file="/etc/hostname"),
    lambda m: m["artifacts"][0].pop("sha256"),
    lambda m: m.update(artifacts=7),
    lambda m: m.update(presets=[1]),
], ids=["dot-dot", "absolute", "no-sha256", "artifacts-not-a-list", "presets-not-a-dict"])
def test_verify_refuses_a_manifest_that_escapes_its_folder_or_is_malformed(exported, tmp_path, change):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(exported[1], out)
    manifest = json.loads((out / "manifest.json").read_text())
    change(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(vae_zoo.core.errors.IntegrityError, match="manifest.json"):
        vae_zoo.verify(out)


def test_keras_own_export_and_summary_work_on_a_preset(tmp_path, capsys):
    """`model.export` in Keras' three formats, with the preset's input shape by default; each
    graph gives Keras' tensors within 1e-5."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model = vae_zoo.load("mnist-z2")
    x = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    expected = {k: v.numpy() for k, v in model(x).items()}
    model.export(tmp_path / "saved", format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))  # kept: the function refers to its variables
    served = loaded.serve(x)
    model.export(tmp_path / "vae.onnx", format="onnx", verbose=False)
    session = ort.InferenceSession(str(tmp_path / "vae.onnx"))
    from_onnx = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"x": x})))
    model.export(tmp_path / "vae.tflite", format="litert", verbose=False)
    interpreter = Interpreter(model_path=str(tmp_path / "vae.tflite"))
    runner = interpreter.get_signature_runner()
    from_tflite = runner(**{next(iter(runner.get_input_details())): x[:1]})
    for name, value in expected.items():
        np.testing.assert_allclose(served[name].numpy(), value, atol=1e-5)
        np.testing.assert_allclose(from_onnx[name], value, atol=1e-5)
        tflite_name = next(k for k in from_tflite if name in k)
        np.testing.assert_allclose(from_tflite[tflite_name], value[:1], atol=1e-5)
    capsys.readouterr()
    model.summary()
    table = capsys.readouterr().out
    assert "(None, 2)" in table and "(None, 784)" in table and "?" not in table


def test_onnx_graphs_say_what_they_are_in_their_metadata(tmp_path):
    import onnx

    export_lib.export("mnist-z2", tmp_path / "m", formats="onnx")
    for part in ("encoder", "decoder"):
        meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m" / f"{part}.onnx")).metadata_props}
        assert meta["vae_zoo.part"] == part and meta["vae_zoo.preset"] == "mnist-z2"
        assert meta["vae_zoo.likelihood"] == "bernoulli" and meta["vae_zoo.image_shape"] == "28x28"
        assert (meta["vae_zoo.input_dim"], meta["vae_zoo.latent_dim"]) == ("784", "2")
