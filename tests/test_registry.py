"""Preset folders: save/load round trip, unknown names, corrupt or missing files."""

import json

import numpy as np
import pytest

import vae_zoo
from vae_zoo.errors import PresetError, UnknownPresetError


@pytest.fixture
def small_preset(tmp_path, mnist_subset):
    model = vae_zoo.VAE(input_dim=784, latent_dim=4, hidden_units=32, seed=0)
    model.compile("adam")
    model.fit(mnist_subset[0][:300], batch_size=100, epochs=1, verbose=0)
    path = model.save_to_preset(tmp_path / "my-vae", card={"note": "test"})
    return model, path


def test_list_models_is_the_paper_grid():
    assert vae_zoo.list_models() == [
        "mnist-z2", "mnist-z3", "mnist-z5", "mnist-z10", "mnist-z20", "mnist-z200",
        "frey-z2", "frey-z5", "frey-z10", "frey-z20",
    ]


def test_unknown_name_lists_the_presets_and_the_closest():
    with pytest.raises(UnknownPresetError) as info:  # a ValueError, as in keras-hub
        vae_zoo.load("mnist-z21")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "Unknown preset 'mnist-z21'" in message and "frey-z20" in message
    assert "Did you mean 'mnist-z2' or 'mnist-z20'?" in message


def test_preset_folder_round_trip(small_preset, mnist_subset):
    model, path = small_preset
    assert sorted(p.name for p in path.iterdir()) == ["card.json", "checksums.json", "config.json", "model.weights.h5"]
    card = json.loads((path / "card.json").read_text())
    assert card["note"] == "test" and len(card["weights_sha256"]) == 64
    loaded = vae_zoo.load(path)
    x = mnist_subset[2][:10]
    for key, value in model.predict(x, verbose=0).items():
        np.testing.assert_array_equal(loaded.predict(x, verbose=0)[key], value)
    fresh = vae_zoo.load(path, pretrained=False)
    assert fresh.get_config() == model.get_config()
    assert not np.array_equal(fresh.get_weights()[0], model.get_weights()[0])


def test_save_refuses_to_overwrite(small_preset):
    model, path = small_preset
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save_to_preset(path)
    model.save_to_preset(path, overwrite=True)
    assert vae_zoo.load(path) is not None
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_truncated_weights_are_refused(small_preset):
    _, path = small_preset
    weights = path / "model.weights.h5"
    expected = json.loads((path / "card.json").read_text())["weights_sha256"]
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(PresetError, match=f"{weights}.*expected {expected}"):
        vae_zoo.load(path)


def test_tampered_weights_are_refused(small_preset):
    _, path = small_preset
    weights = path / "model.weights.h5"
    payload = bytearray(weights.read_bytes())
    payload[-100] ^= 0xFF
    weights.write_bytes(bytes(payload))
    with pytest.raises(PresetError, match="corrupt or was changed"):
        vae_zoo.load(path)


def test_missing_files_are_refused_never_random_weights(small_preset):
    _, path = small_preset
    (path / "model.weights.h5").unlink()
    with pytest.raises(PresetError, match="refusing random weights"):
        vae_zoo.load(path)
    assert vae_zoo.load(path, pretrained=False) is not None  # asked for fresh weights: fine
    (path / "config.json").unlink()
    with pytest.raises(PresetError, match="no config.json"):
        vae_zoo.load(path)


def test_pretrained_false_builds_the_preset_architecture():
    model = vae_zoo.load("frey-z5", pretrained=False)
    assert (model.input_dim, model.latent_dim, model.hidden_units, model.likelihood) == (560, 5, [200], "gaussian")
    assert model.optimizer is not None


@pytest.mark.parametrize("name, edit", [
    ("config.json", lambda text: text.replace('"tanh"', '"relu"')),
    ("card.json", lambda text: text.replace('"note": "test"', '"note": "edited"')),
])
def test_every_file_that_defines_a_preset_is_verified(small_preset, name, edit):
    _, path = small_preset
    file = path / name
    file.write_text(edit(file.read_text()))
    with pytest.raises(PresetError, match=f"{name}.*corrupt or was changed"):
        vae_zoo.load(path)


def test_update_card_keeps_the_folder_verifiable(small_preset):
    from vae_zoo import registry

    _, path = small_preset
    registry.update_card(path, metrics={"test": 1})
    assert registry.read_card(path)["metrics"] == {"test": 1} and vae_zoo.load(path) is not None


def test_a_broken_model_is_never_saved(tmp_path):
    model = vae_zoo.VAE(input_dim=784, latent_dim=2, hidden_units=8)
    model.weights[0].assign(np.full(model.weights[0].shape, np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN or inf"):
        model.save_to_preset(tmp_path / "broken")
    assert not (tmp_path / "broken").exists()


def test_a_name_means_the_zoo_preset_and_a_path_the_folder(tmp_path, monkeypatch):
    model = vae_zoo.VAE(input_dim=784, latent_dim=4, hidden_units=8, seed=0)
    model.save_to_preset(tmp_path / "mnist-z20")
    monkeypatch.chdir(tmp_path)
    assert vae_zoo.load("mnist-z20").latent_dim == 20  # the zoo's preset wins
    assert vae_zoo.load("./mnist-z20").latent_dim == 4  # the local folder, by path
