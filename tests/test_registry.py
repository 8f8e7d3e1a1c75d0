"""Preset folders: save/load round trip, unknown names, corrupt or missing files."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vae_zoo
from vae_zoo.core.errors import PresetError, UnknownPresetError


@pytest.fixture(scope="module")
def trained_preset(tmp_path_factory, mnist_subset):
    """A small model trained once for the module, and its preset folder (never changed)."""
    model = vae_zoo.VAE(input_dim=784, latent_dim=4, hidden_units=32, seed=0)
    model.compile("adam")
    model.fit(mnist_subset[0][:300], batch_size=100, epochs=1, verbose=0)
    return model, model.save_to_preset(tmp_path_factory.mktemp("trained") / "my-vae", card={"note": "test"})


@pytest.fixture
def small_preset(tmp_path, trained_preset):
    """The trained model and a copy of its preset folder that the test may change."""
    model, source = trained_preset
    return model, Path(shutil.copytree(source, tmp_path / "my-vae"))


def test_list_models_is_the_paper_grid():
    assert vae_zoo.list_models() == [
        "mnist-z2", "mnist-z3", "mnist-z5", "mnist-z10", "mnist-z20", "mnist-z200",
        "frey-z2", "frey-z5", "frey-z10", "frey-z20", "mnist-200x2-z50-elbo",
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
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "card.json", "checksums.json", "config.json",
                                                      "metadata.json", "model.weights.h5"]
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
    from vae_zoo.zoo import registry

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


@pytest.mark.parametrize("config", [
    # A Lambda layer carries code: Keras' safe mode refuses it, and so does the preset loader, in one line.
    {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "x", "function": {
        "class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}},
    {"module": "nowhere", "class_name": "Missing", "config": {}},
    {"module": "vae_zoo.model.vae", "class_name": "VAE", "config": {"input_dim": "many"}},
    {"module": "keras.layers", "class_name": "Dense", "config": {"units": 3}},  # a model, but not a VAE
], ids=["lambda", "unknown-class", "bad-argument", "not-a-vae"])
def test_a_config_that_is_not_a_buildable_vae_is_one_line(small_preset, config):
    from vae_zoo.core import preset_format

    _, path = small_preset
    (path / "config.json").write_text(json.dumps(config))
    preset_format.write_checksums(path)  # consistent files: the content itself is what is refused
    with pytest.raises(PresetError, match="config.json") as info:
        vae_zoo.load(path)
    assert "\n" not in str(info.value)


def test_a_checkpoint_that_is_not_a_vae_or_not_readable_is_one_line(small_preset, tmp_path):
    import keras

    from vae_zoo.core.errors import TrainingError
    from vae_zoo.training import checkpoints

    folder = tmp_path / "run" / checkpoints.CHECKPOINT_DIR
    folder.mkdir(parents=True)
    (folder / checkpoints.STATE).write_text(json.dumps({"epoch": 1}))
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(folder / checkpoints.CHECKPOINT)
    with pytest.raises(TrainingError, match="holds a Sequential, not a vae-zoo VAE"):
        checkpoints.load_checkpoint(tmp_path / "run")
    (folder / checkpoints.CHECKPOINT).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(TrainingError, match="cannot be loaded") as info:
        checkpoints.load_checkpoint(tmp_path / "run")
    assert "\n" not in str(info.value)
    (folder / checkpoints.STATE).write_text("[1, 2]")
    with pytest.raises(TrainingError, match="state.json holds list"):
        checkpoints.load_checkpoint(tmp_path / "run")


def test_a_preset_made_from_a_preset_carries_its_source_and_info_prints_no_none(tmp_path, in_process):
    model = vae_zoo.load("mnist-z2")
    assert model.image_shape == (28, 28) and model.sample(3, seed=0, images=True).shape == (3, 28, 28)
    x = model.sample(2, seed=1)
    np.testing.assert_array_equal(model.reconstruct(x, images=True), model.reconstruct(x).reshape(2, 28, 28))
    path = model.save_to_preset(tmp_path / "derived", card={"note": "mine"})
    card = vae_zoo.zoo.registry.read_card(path)
    source = vae_zoo.zoo.registry.read_card("mnist-z2")
    assert card["source"]["preset"] == "mnist-z2" and card["source"]["weights_sha256"] == source["weights_sha256"]
    assert card["source"]["data"] == source["data"] and card["source"]["recipe"] == source["recipe"]
    assert card["data"] == {"image_shape": [28, 28]} and card["note"] == "mine"
    assert vae_zoo.load(path).image_shape == (28, 28)
    fresh = vae_zoo.VAE(input_dim=784, latent_dim=2, hidden_units=8)
    assert fresh.image_shape is None and fresh.source_preset is None
    with pytest.raises(ValueError, match="image shape is unknown"):
        fresh.sample(1, images=True)
    fresh.save_to_preset(tmp_path / "fresh")
    for folder in (path, tmp_path / "fresh"):
        info = in_process("info", folder).stdout
        assert "None" not in info and "data        not recorded" in info
    assert "source      mnist-z2" in in_process("info", path).stdout


def test_remote_handles_load_through_the_hubs_client_or_are_refused_in_one_line(tmp_path, monkeypatch):
    import shutil
    import sys
    import types

    from vae_zoo.core import preset_format

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # the client is not installed
    with pytest.raises(UnknownPresetError, match="pip install huggingface_hub.*huggingface-cli download user/vae"):
        vae_zoo.load("hf://user/vae")
    for handle in ("gs://bucket/vae", "kaggle://user/vae", "hf://no-owner", "https://example.com/vae"):
        with pytest.raises(UnknownPresetError, match="copy the folder|reads presets by name") as info:
            vae_zoo.load(handle)
        assert "\n" not in str(info.value) and not (tmp_path / "hf:").exists()
    fetched = []

    def snapshot_download(repo_id):  # the Hub client's call: a local copy of the repository
        fetched.append(repo_id)
        target = tmp_path / "cache" / repo_id.replace("/", "--")
        shutil.copytree(preset_format.preset_path("mnist-z2"), target, dirs_exist_ok=True)
        return str(target)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    model = vae_zoo.load("hf://user/vae")
    assert fetched == ["user/vae"] and model.latent_dim == 2


def test_a_saved_preset_card_is_titled_with_its_folder_and_says_what_its_data_is(tmp_path):
    model = vae_zoo.VAE(input_dim=784, latent_dim=2, hidden_units=8, seed=0)
    model.save_to_preset(tmp_path / "mnist-z2-sevens")
    text = (tmp_path / "mnist-z2-sevens" / "README.md").read_text()
    assert "# mnist-z2-sevens\n" in text and 'vae_zoo.load("mnist-z2-sevens")' in text and ".pid" not in text
    data_section = text.split("## Data\n\n", 1)[1].split("\n## ", 1)[0]
    assert data_section.strip() and "records no training data" in data_section
    model.save_to_preset(tmp_path / "described", card={"data": {"dataset": "mnist", "split": "train"}})
    described = (tmp_path / "described" / "README.md").read_text().split("## Data\n\n", 1)[1].split("\n## ", 1)[0]
    assert "- dataset: mnist" in described and "records no" not in described


@settings(max_examples=200, deadline=None)
@given(rest=st.text(st.sampled_from("ab.-_/:\\~ 9%"), max_size=12))
def test_every_hub_handle_is_a_repository_id_or_refused_in_one_line(rest):
    """`hf://` followed by anything: the Hub's client sees only OWNER/NAME ids that are no path steps."""
    import re
    import sys
    import types

    seen = []

    def snapshot_download(repo_id, **kwargs):
        seen.append(repo_id)
        raise RuntimeError("not fetched in tests")

    module = types.SimpleNamespace(snapshot_download=snapshot_download)
    previous = sys.modules.get("huggingface_hub")
    sys.modules["huggingface_hub"] = module
    try:
        with pytest.raises(vae_zoo.VaeZooError) as info:
            vae_zoo.load("hf://" + rest)
    finally:
        sys.modules.pop("huggingface_hub")
        if previous is not None:
            sys.modules["huggingface_hub"] = previous
    assert "\n" not in str(info.value)
    for repo_id in seen:
        owner, name = repo_id.split("/")
        assert ".." not in repo_id and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", owner + name), repo_id


def test_hub_handles_that_are_paths_or_local_urls_or_offline_are_refused_saying_why(tmp_path, monkeypatch):
    import sys
    import types

    calls = []

    def snapshot_download(repo_id, local_files_only=False):
        calls.append((repo_id, local_files_only))
        raise FileNotFoundError("LocalEntryNotFoundError: not in the cache")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    for handle in ("hf://../..", "hf://a/..", "hf://./x", "hf://a--b/c"):
        with pytest.raises(UnknownPresetError, match="not a Hugging Face Hub handle"):
            vae_zoo.load(handle)
    with pytest.raises(UnknownPresetError, match=f"folder of this machine: load it by its path \\({tmp_path}\\)"):
        vae_zoo.load(f"file://{tmp_path}")
    monkeypatch.setenv("VAE_ZOO_OFFLINE", "1")
    with pytest.raises(vae_zoo.PresetError, match="VAE_ZOO_OFFLINE is set and it is not in the Hub's cache"):
        vae_zoo.load("hf://someone/mnist-z20")
    assert calls == [("someone/mnist-z20", True)]  # the cache only
