"""Shard folders: written from any input, checked on opening, streamed as a pure function of
(seed, epoch) so training from disk resumes exactly; `vae-zoo shard` from the console."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_cli import vae_zoo as run_cli

from vae_zoo.core.errors import DataNotFoundError, IntegrityError, InvalidArgumentError, OutputExistsError
from vae_zoo.data import shards, user_data
from vae_zoo.model.recipes import Recipe
from vae_zoo.training import train as training


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist_subset):
    pixels = np.round(mnist_subset[0][:1000] * 255).astype(np.uint8)
    out = tmp_path_factory.mktemp("shards") / "s"
    shards.write(pixels, out, (28, 28), shard_size=250, holdout=0.1, seed=4)
    return out, pixels


def _rows(batches):
    return {row.tobytes() for batch in batches for row in np.round(batch * 255).astype(np.uint8)}


def test_written_shards_hold_every_image_once_and_the_split_they_state(folder):
    out, pixels = folder
    data = user_data.read(out)
    assert isinstance(data, shards.Shards) and len(data) == 900 and data.input_dim == 784
    assert data.image_shape == (28, 28) and not data.binary
    held = data.heldout()
    order = np.random.default_rng(4).permutation(1000)
    np.testing.assert_array_equal(np.round(held * 255).astype(np.uint8), pixels[np.sort(order[-100:])])
    epoch = list(data.train_dataset(100, False, seed=1, epochs=1).as_numpy_iterator())
    assert len(epoch) == 9 and _rows(epoch) == {row.tobytes() for row in pixels[order[:-100]]}
    assert np.allclose(data.head(5) * 255, pixels[order[:5]])
    manifest = json.loads((out / shards.MANIFEST).read_text())
    assert [e["count"] for e in manifest["train"]] == [250, 250, 250, 150] and "permutation(1000)" in manifest["split"]


def test_the_stream_is_a_pure_function_of_seed_and_epoch(folder):
    data = shards.Shards(folder[0])
    two = list(data.train_dataset(100, True, seed=3, epochs=2).as_numpy_iterator())
    again = list(data.train_dataset(100, True, seed=3, epochs=2).as_numpy_iterator())
    resumed = list(data.train_dataset(100, True, seed=3, first_epoch=1, epochs=1).as_numpy_iterator())
    for a, b in zip(two, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(two[9:], resumed):  # epoch 1 alone is what epoch 1 of the run was
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(two[0], two[9])  # a new order every epoch
    assert set(np.unique(two[0])) <= {0.0, 1.0}  # dynamically binarized


@pytest.mark.slow
def test_training_from_shards_resumes_with_the_same_weights(folder, tmp_path):
    data = shards.Shards(folder[0])
    arch = dict(input_dim=784, latent_dim=2, hidden_units=32)
    recipe = Recipe(epochs=2, seed=0, steps_per_execution=9)
    straight, _ = training.fit_with_checkpoints(training.build_model(arch, recipe, len(data)), data, recipe,
                                                tmp_path / "a", binarize=True, verbose=0)
    training.fit_with_checkpoints(training.build_model(arch, recipe, len(data)), data, recipe.replace(epochs=1),
                                  tmp_path / "b", binarize=True, verbose=0)
    resumed, _ = training.fit_with_checkpoints(None, data, recipe, tmp_path / "b", binarize=True, resume=True,
                                               verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_damaged_shard_folders_are_refused_naming_the_file(folder, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(folder[0], out)
    shard = out / "train-00001-of-00004.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(InvalidArgumentError, match="train-00001-of-00004.tfrecord.*truncated"):
        shards.Shards(out)
    shard.unlink()
    with pytest.raises(DataNotFoundError, match="train-00001-of-00004.tfrecord is missing"):
        shards.Shards(out)
    (out / shards.MANIFEST).write_text("{")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        shards.Shards(out)
    with pytest.raises(OutputExistsError):
        shards.write(folder[1][:10], out)


@pytest.mark.slow
def test_shard_command_writes_a_folder_that_train_streams(tmp_path, mnist_subset, in_process):
    np.save(tmp_path / "x.npy", (mnist_subset[0][:400] > 0.5).astype(np.uint8) * 255)
    result = run_cli("shard", "--data", tmp_path / "x.npy", "--out", tmp_path / "s", "--shard-size", "150")
    assert "Wrote 3 training shards (360 images) and 40 held-out images" in result.stdout
    assert shards.Shards(tmp_path / "s").binary
    in_process("train", "--data", tmp_path / "s", "--latent-dim", "2", "--hidden", "16", "--epochs", "2",
               "--out", tmp_path / "m", "--workdir", tmp_path / "runs")
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["data"]["kind"] == "shards" and card["data"]["examples"] == 400 and card["metrics"]["n_test"] == 40
    again = in_process("shard", "--data", tmp_path / "s", "--out", tmp_path / "t", check=False)
    assert again.returncode == 2 and "already a shard folder" in again.stderr


def test_write_takes_image_stacks_and_refuses_bad_pixels_writing_nothing(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 6, 5)).astype(np.uint8)
    manifest = shards.write(images, tmp_path / "ok", holdout=0.2)
    assert manifest["input_dim"] == 30 and manifest["image_shape"] == [6, 5]
    assert shards.Shards(tmp_path / "ok").head(3).shape == (3, 30)
    bad = images.astype(np.float32) / 255
    bad[7, 2, 2] = np.nan
    with pytest.raises(InvalidArgumentError, match="finite floats in \\[0, 1\\]"):
        shards.write(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def _copy(folder, tmp_path, name):
    import shutil

    out = tmp_path / name
    if not out.exists():
        shutil.copytree(folder, out)
    return out


def test_a_shard_rewritten_with_other_images_of_the_same_size_is_refused(folder, tmp_path):
    out = _copy(folder[0], tmp_path, "rewritten")
    manifest = json.loads((out / shards.MANIFEST).read_text())
    first, second = (out / e["file"] for e in manifest["train"][:2])
    first.write_bytes(second.read_bytes())  # valid records, the same size, other images
    with pytest.raises(IntegrityError, match=f"{first.name} differs from its sha256 in .*shards.json"):
        shards.Shards(out)


ESCAPES = st.sampled_from(["../outside.tfrecord", "/etc/passwd", "a/../../x", "..", "", 7, None, ["x"]])
FIELDS = st.sampled_from(["input_dim", "image_shape", "binary", "train", "heldout", "count", "sha256"])
BAD_VALUES = st.sampled_from([None, "x", [], {}, -1, 1.5, [[1]]])


@given(escape=ESCAPES, which=st.integers(0, 4))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_manifest_entries_outside_their_folder_are_refused(folder, tmp_path, escape, which):
    out = _copy(folder[0], tmp_path, "escape")
    original = (folder[0] / shards.MANIFEST).read_text()
    manifest = json.loads(original)
    entries = [*manifest["train"], manifest["heldout"]]
    entries[which]["file"] = escape
    (out / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="lists .* not a file inside"):
        shards.Shards(out)


def test_a_manifest_entry_that_links_outside_the_folder_is_refused(folder, tmp_path):
    out = _copy(folder[0], tmp_path, "link")
    manifest = json.loads((out / shards.MANIFEST).read_text())
    target = out / manifest["train"][0]["file"]
    outside = tmp_path / "outside.tfrecord"
    target.rename(outside)
    target.symlink_to(outside)
    with pytest.raises(IntegrityError, match="a link that leads outside"):
        shards.Shards(out)


@given(field=FIELDS, value=BAD_VALUES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_malformed_shard_manifest_is_one_error_naming_the_file(folder, tmp_path, field, value):
    out = _copy(folder[0], tmp_path, "malformed")
    manifest = json.loads((folder[0] / shards.MANIFEST).read_text())
    if field in ("count", "sha256"):
        manifest["train"][0][field] = value
    else:
        manifest[field] = value
    (out / shards.MANIFEST).write_text(json.dumps(manifest))
    try:
        shards.Shards(out)
    except (InvalidArgumentError, IntegrityError, DataNotFoundError) as err:
        assert "shards.json" in str(err) or "tfrecord" in str(err)
    # (a value that still describes the folder, e.g. image_shape None, opens)


@given(field=st.sampled_from(["binary", "image_shape", "input_dim", "split", "source"]),
       value=st.one_of(st.booleans(), st.integers(-3, 800), st.text(max_size=6), st.none(),
                       st.lists(st.integers(1, 30), max_size=3)))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_an_edited_manifest_field_is_never_trusted(folder, tmp_path, field, value):
    """What the files' sha256s do not cover (e.g. `binary: true` written over grey data) is covered
    by the manifest's own digest."""
    out = _copy(folder[0], tmp_path, "edited")
    manifest = json.loads((folder[0] / shards.MANIFEST).read_text())
    assume(manifest[field] != value)
    manifest[field] = value
    (out / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises((InvalidArgumentError, IntegrityError, DataNotFoundError)) as info:
        shards.Shards(out)
    assert "shards.json" in str(info.value) or "tfrecord" in str(info.value)
