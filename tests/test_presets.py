"""The shipped presets: cards, checksums, reproduced metrics, fine-tuning, and a non-editable install."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import vae_zoo
from vae_zoo import data
from vae_zoo.core import preset_format
from vae_zoo.zoo import registry
from vae_zoo.zoo.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
SHIPPED = registry.shipped_presets()


def test_mnist_z20_is_shipped():
    assert "mnist-z20" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_card_describes_the_preset(name):
    card = registry.read_card(name)
    spec = PRESETS[name]
    model = vae_zoo.load(name, compile=False)
    hidden = [spec.hidden_units] if isinstance(spec.hidden_units, int) else list(spec.hidden_units)
    assert (model.latent_dim, model.hidden_units, model.likelihood) == (spec.latent_dim, hidden, spec.likelihood)
    assert card.get("published") == spec.published  # the literature's number, where there is one
    assert card["data"]["dataset"] == spec.dataset
    # `vae-zoo train NAME` reruns the recipe the shipped weights were trained with.
    assert card["recipe"] == spec.recipe.to_dict()
    assert card["training"]["command"].endswith(f"train {name}")  # no overrides
    assert card["training"]["samples_seen"] == card["training"]["epochs"] * card["training"]["log"][0]["samples_seen"]
    for key in ("test_elbo_B", "test_elbo_A", "train_elbo_B", "test_log_likelihood"):
        assert key in card.get("metrics", {}), f"{name}: run `vae-zoo evaluate {name} --write-card`"
    assert card["metrics"]["test_log_likelihood"]["k"] == 5000
    assert card["metrics"]["n_test"] == len(data.load(spec.dataset, "test"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_command_a_card_gives_runs_as_a_command_of_this_version(name):
    import shlex

    from vae_zoo.cli import build_parser

    card = registry.read_card(name)
    commands = [card["training"]["command"], *([card["metrics_command"]] if "metrics_command" in card else [])]
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "vae-zoo", command
        args = build_parser().parse_args(words[1:])  # argparse exits (status 2) on anything unknown
        assert name in words and callable(args.run), command


@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_folder_has_a_model_card_for_people_and_hubs(name):
    import json

    folder = preset_format.preset_path(name)
    card = registry.read_card(name)
    readme = (folder / "README.md").read_text()
    front, body = readme.split("---\n")[1], readme.split("---\n", 2)[2]
    assert "license: apache-2.0" in front and f"- name: {name}" in front
    assert f"value: {card['metrics']['test_log_likelihood']['mean']}" in front  # the card's number, not another
    for section in ("## Use", "## Data", "## Training", "## Measured", "## Intended use and limits", "## Licence",
                    "## Citation"):
        assert section in body, section
    assert card["metrics_command"] in body and "Auto-Encoding Variational Bayes" in body
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["parameter_count"] == vae_zoo.load(name, compile=False).count_params()
    assert set(json.loads((folder / "checksums.json").read_text())) >= {"README.md", "metadata.json"}


@pytest.mark.parametrize("name", SHIPPED)
def test_card_test_elbo_is_reproduced(name):
    """The card's test ELBO (B, L=1, full test set) comes back from the same seeded computation."""
    card = registry.read_card(name)
    assert "metrics" in card, f"{name}: run `vae-zoo evaluate {name} --write-card`"
    model = vae_zoo.load(name, compile=False)
    x = data.test_set(card["data"]["dataset"], model.is_binary)
    seed = card["metrics"]["seed"]
    elbo = np.concatenate([model.elbo(x[i:i + 1000], "B", 1, seed=seed).numpy() for i in range(0, len(x), 1000)])
    assert abs(elbo.mean() - card["metrics"]["test_elbo_B"]["mean"]) < 0.01
    # The importance-weighted estimate is a tighter bound than the ELBO.
    assert card["metrics"]["test_log_likelihood"]["mean"] > card["metrics"]["test_elbo_B"]["mean"]


@pytest.mark.slow
def test_fine_tuning_on_one_digit_raises_its_test_elbo(tmp_path):
    x, y = data.load("mnist", "train", labels=True)
    xt, yt = data.load("mnist", "test", labels=True)
    threes, test_threes = x[y == 3], data.binarize(xt[yt == 3])
    model = vae_zoo.load("mnist-z20")
    before = float(np.mean(model.elbo(test_threes, seed=1)))
    decoder_before = [w.numpy().copy() for w in model.decoder.weights]
    model.encoder.trainable = False  # fine-tune the decoder only...
    model.compile(model.optimizer.__class__(learning_rate=3e-4))
    model.fit(data.train_dataset(threes, 100, seed=0, epochs=1), epochs=1, steps_per_epoch=len(threes) // 100,
              verbose=0)
    encoder_frozen = [w.numpy() for w in model.encoder.weights]
    model.encoder.trainable = True  # ...then everything
    model.compile(model.optimizer.__class__(learning_rate=3e-4))
    model.fit(data.train_dataset(threes, 100, seed=1, epochs=2), epochs=2, steps_per_epoch=len(threes) // 100,
              verbose=0)
    after = float(np.mean(model.elbo(test_threes, seed=1)))
    assert after > before + 0.5, (before, after)
    fresh = vae_zoo.load("mnist-z20")
    for a, b in zip(encoder_frozen, fresh.encoder.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(decoder_before, model.decoder.weights))
    path = model.save_to_preset(tmp_path / "mnist-z20-threes", card={"fine_tuned_from": "mnist-z20"})
    reloaded = vae_zoo.load(path)
    np.testing.assert_array_equal(reloaded.reconstruct(test_threes[:50]), model.reconstruct(test_threes[:50]))
    np.testing.assert_array_equal(reloaded.elbo(test_threes, seed=1), model.elbo(test_threes, seed=1))


@pytest.mark.slow
def test_non_editable_install_ships_the_presets(tmp_path):
    """Build the wheel, install it into a bare folder and load mnist-z20 from elsewhere, offline."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("vae_zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in SHIPPED:
        for f in ("config.json", "card.json", "model.weights.h5"):
            assert f"vae_zoo/saved_models/{name}/{f}" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "VAE_ZOO_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(preset_format.PRESETS_ENV, None)
    code = ("import vae_zoo; m = vae_zoo.load('mnist-z20'); print(vae_zoo.__file__); "
            "print(m.sample(2, seed=0).shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(str(tmp_path / "site")) and lines[1] == "(2, 784)"
