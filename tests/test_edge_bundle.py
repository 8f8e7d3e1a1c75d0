"""The committed edge bundle in export/: checksums, freshness, and the TensorFlow-free demo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_zoo.core.io import tree_sha256
from vae_zoo.deploy import quantization
from vae_zoo.zoo import registry

pytestmark = pytest.mark.slow  # trains, or starts interpreters and workers

BUNDLE = Path(__file__).resolve().parents[1] / "export"
SHIPPED = registry.shipped_presets()


def manifest():
    return json.loads((BUNDLE / "manifest.json").read_text())


def tensorflow_free_env(tmp_path):
    """An environment in which `import tensorflow` fails."""
    blocker = tmp_path / "blocker" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('TensorFlow must not be needed by the edge demo')\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path / "blocker")}


def test_bundle_covers_every_shipped_preset_with_current_weights():
    presets = manifest()["presets"]
    assert sorted(presets) == sorted(SHIPPED), "regenerate: vae-zoo export --all-presets -o export"
    for name, entry in presets.items():
        assert entry["source"]["weights_sha256"] == registry.read_card(name)["weights_sha256"], (
            f"export/{name} was made from other weights; regenerate: vae-zoo export --all-presets -o export")


def test_every_file_matches_its_sha256_and_parity():
    for entry in manifest()["presets"].values():
        floats = [a for a in entry["artifacts"] if "quantize" not in a]
        assert {(a["part"], a["format"]) for a in floats} == {("encoder", "onnx"), ("decoder", "onnx")}
        for artifact in entry["artifacts"]:
            assert tree_sha256(BUNDLE / artifact["file"]) == artifact["sha256"], artifact["file"]
        for artifact in floats:
            assert artifact["max_abs_error"] <= 1e-5 and artifact["opset"] <= 18


def test_quantized_decoders_are_shipped_exactly_where_they_cost_little():
    for name, entry in manifest()["presets"].items():
        results = entry["quality"]["results"]["onnx"]
        assert entry["quality"]["protocol"]["log_px"].startswith("importance-weighted, k = 1000")
        shipped = {a["quantize"] for a in entry["artifacts"] if "quantize" in a}
        assert all(a["part"] == "decoder" for a in entry["artifacts"] if "quantize" in a)
        refused = {n["file"].split(".")[1] for n in entry["not_shipped"]}
        assert shipped | refused == {"float16", "int8-dynamic", "int8-static"} and not shipped & refused
        for mode in shipped:
            assert results[mode]["pair"]["log_px_drop"]["mean"] <= quantization.MAX_DROP, (name, mode)
        for mode in refused:
            assert results[mode]["pair"]["log_px_drop"]["mean"] > quantization.MAX_DROP, (name, mode)
        assert "float16" in shipped, name  # float16 costs ~nothing everywhere


def test_edge_demo_runs_without_tensorflow(tmp_path):
    images = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    env = tensorflow_free_env(tmp_path)
    out = tmp_path / "demo.png"
    result = subprocess.run([sys.executable, str(BUNDLE / "edge_demo.py"), "--model", "mnist-z20", "-o", str(out),
                             "--images", str(tmp_path / "images.npy"), "-n", "32"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["samples"] == 32 and report["reconstructions"] == 5
    image = Image.open(out)
    assert image.mode == "L" and image.size == ((16 * 29 + 1) * 3, (3 * 29 + 1) * 3)


def test_edge_demo_runs_a_quantized_decoder_without_tensorflow(tmp_path):
    env = tensorflow_free_env(tmp_path)
    out = tmp_path / "q.png"
    result = subprocess.run([sys.executable, str(BUNDLE / "edge_demo.py"), "--model", "mnist-z20", "--quantized",
                             "int8-dynamic", "-o", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["graphs"] == ["encoder.onnx", "decoder.int8-dynamic.onnx"] and out.exists()
    result = subprocess.run([sys.executable, str(BUNDLE / "edge_demo.py"), "--model", "mnist-z20", "--quantized",
                             "int4", "-o", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no decoder.int4.onnx" in result.stderr and "float16" in result.stderr


def test_tampered_bundle_is_refused_by_verify_and_the_demo(tmp_path):
    import shutil

    import pytest

    import vae_zoo
    from vae_zoo.core.errors import IntegrityError

    bundle = tmp_path / "export"
    shutil.copytree(BUNDLE, bundle)
    decoder = bundle / "mnist-z20" / "decoder.onnx"
    payload = bytearray(decoder.read_bytes())
    payload[-200] ^= 0xFF
    decoder.write_bytes(bytes(payload))
    with pytest.raises(IntegrityError, match="decoder.onnx is corrupt or was changed"):
        vae_zoo.verify(bundle)
    result = subprocess.run([sys.executable, str(bundle / "edge_demo.py"), "--model", "mnist-z20",
                             "-o", str(tmp_path / "d.png")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "corrupt or was changed" in result.stderr and not (tmp_path / "d.png").exists()


def test_demo_rejects_images_of_the_wrong_shape_or_range(tmp_path):
    for name, images in (("half.npy", np.random.default_rng(0).random((16, 392), dtype=np.float32)),
                         ("bytes.npy", np.full((4, 784), 255, np.uint8))):
        np.save(tmp_path / name, images)
        result = subprocess.run([sys.executable, str(BUNDLE / "edge_demo.py"), "--model", "mnist-z20",
                                 "--images", str(tmp_path / name), "-o", str(tmp_path / "d.png")],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "--images must" in result.stderr and "Traceback" not in result.stderr


def test_edge_demo_runs_decoder_only_encoder_only_and_quantized_only_folders(tmp_path):
    """What users export with --part decoder, --part encoder, or --quantize MODE alone."""
    import shutil

    env = tensorflow_free_env(tmp_path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(BUNDLE / "manifest.json", bundle)  # it lists (and verifies) every file below
    for folder, files in (("decoder-only", ["decoder.onnx"]), ("encoder-only", ["encoder.onnx"]),
                          ("quantized-only", ["decoder.int8-dynamic.onnx"])):
        (bundle / folder).mkdir()
        for name in files:
            shutil.copy(BUNDLE / "mnist-z2" / name, bundle / folder / name)
    manifest = json.loads((bundle / "manifest.json").read_text())
    for folder in ("decoder-only", "encoder-only", "quantized-only"):  # the same files, listed under this folder
        manifest["presets"][folder] = {"artifacts": [{**a, "file": a["file"].replace("mnist-z2/", f"{folder}/")}
                                                     for a in manifest["presets"]["mnist-z2"]["artifacts"]]}
    (bundle / "manifest.json").write_text(json.dumps(manifest))

    def demo(folder, *args):
        return subprocess.run([sys.executable, str(BUNDLE / "edge_demo.py"), "--model", str(bundle / folder), *args],
                              capture_output=True, text=True, env=env, timeout=300)

    for folder, graphs in (("decoder-only", ["decoder.onnx"]), ("quantized-only", ["decoder.int8-dynamic.onnx"])):
        result = demo(folder, "-o", str(tmp_path / f"{folder}.png"), "-n", "16")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["graphs"] == graphs and report["samples"] == 16 and report["reconstructions"] == 0
        assert Image.open(tmp_path / f"{folder}.png").size == ((16 * 29 + 1) * 3, 30 * 3)
    images = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    result = demo("encoder-only", "--images", str(tmp_path / "images.npy"), "-o", str(tmp_path / "codes.npy"))
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "codes.npy").shape == (5, 2) and json.loads(result.stdout)["encoded"] == 5
    result = demo("encoder-only", "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "encoder only" in result.stderr and not (tmp_path / "x.png").exists()
