"""Data sets: checksums, splits, binarization protocols, and missing or corrupt files."""

import numpy as np
import pytest

from vae_zoo.data import datasets as data


def test_mnist_splits_and_scaling():
    x, y = data.load("mnist", "train", labels=True)
    assert x.shape == (60_000, 784) and x.dtype == np.float32 and y.shape == (60_000,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert data.load("mnist", "test").shape == (10_000, 784)
    train50 = data.load("mnist", "train", validation=True)
    valid = data.load("mnist", "valid", validation=True)
    assert train50.shape == (50_000, 784) and valid.shape == (10_000, 784)
    np.testing.assert_array_equal(valid, x[50_000:])
    with pytest.raises(ValueError, match="Unknown split 'valid'"):
        data.load("mnist", "valid")
    with pytest.raises(ValueError, match="Unknown data set 'cifar'"):
        data.load("cifar")


def test_frey_split_is_fixed_and_disjoint():
    train, test = data.load("frey", "train"), data.load("frey", "test")
    assert train.shape == (1765, 560) and test.shape == (200, 560)
    assert 0 < train.min() and train.max() < 1  # pixels / 256, values 8..238
    raw = data.load_frey_array()
    order = np.random.default_rng(data.FREY_SPLIT_SEED).permutation(1965)
    np.testing.assert_array_equal(test, raw[order[-200:]] / 256.0)
    np.testing.assert_array_equal(data.load("frey", "test"), test)
    fit, valid = data.load("frey", "train", validation=True), data.load("frey", "valid", validation=True)
    assert fit.shape == (1565, 560) and valid.shape == (200, 560)
    np.testing.assert_array_equal(np.concatenate([fit, valid]), train)


def test_array_checksums_are_verified(tmp_path, monkeypatch):
    arrays = data.load_mnist_arrays()
    for name, digest in data.MNIST.sha256.items():
        assert data.array_sha256(arrays[name]) == digest
    tampered = dict(arrays)
    tampered["x_test"] = arrays["x_test"].copy()
    tampered["x_test"][0, 0, 0] ^= 1
    np.savez(tmp_path / "mnist.npz", **tampered)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataIntegrityError, match="'x_test'.*expected 6d87418d"):
        data.load("mnist", "test")


def test_truncated_file_gives_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "frey_rawface.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataIntegrityError, match="Cannot read .*frey_rawface.mat"):
        data.load("frey")


def test_missing_file_offline_names_env_var_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as info:
        data.load("mnist", download=False)
    message = str(info.value)
    assert "VAE_ZOO_DATA" in message and "mnist.npz" in message and data.MNIST.url in message


def test_download_goes_to_the_cache_atomically(tmp_path, monkeypatch):
    """A 'download' from a file:// URL lands in the cache and is then verified and used."""
    source = tmp_path / "remote" / "frey_rawface.mat"
    source.parent.mkdir()
    import shutil

    shutil.copy(data.locate(data.FREY, download=False), source)
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "FREY", data.Source("frey_rawface.mat", source.as_uri(), data.FREY.sha256))
    assert data.load("frey", "test").shape == (200, 560)
    assert sorted(p.name for p in (tmp_path / "cache" / "vae_zoo").iterdir()) == ["frey_rawface.mat"]


def test_a_corrupt_download_never_lands_in_the_cache(tmp_path, monkeypatch):
    source = tmp_path / "remote" / "frey_rawface.mat"
    source.parent.mkdir()
    source.write_bytes(data.locate(data.FREY, download=False).read_bytes()[:-5000])  # truncated in transit
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "FREY", data.Source("frey_rawface.mat", source.as_uri(), data.FREY.sha256))
    with pytest.raises(data.DataIntegrityError, match="frey_rawface.mat"):
        data.load("frey", "test")
    assert list((tmp_path / "cache" / "vae_zoo").iterdir()) == []


def test_fixed_test_binarization_is_identical_across_calls():
    a, b = data.test_set("mnist", binary=True), data.test_set("mnist", binary=True)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0}
    grey = data.load("mnist", "test")
    assert abs(a.mean() - grey.mean()) < 0.002  # E[Bernoulli(p)] = p


def test_dynamic_binarization_differs_between_epochs_and_is_resumable():
    x = data.load("mnist", "train")[:1000]
    epochs = list(data.train_dataset(x, 100, seed=3, epochs=2).as_numpy_iterator())
    assert len(epochs) == 20 and epochs[0].shape == (100, 784)
    assert set(np.unique(np.concatenate(epochs))) == {0.0, 1.0}
    first, second = np.concatenate(epochs[:10]), np.concatenate(epochs[10:])
    assert np.all(first.sum(axis=0) != second.sum(axis=0)) or not np.array_equal(first, second)
    # Each epoch visits every image once: the per-image means match the grey values.
    assert abs(first.mean() - x.mean()) < 0.01
    # Resuming at epoch 1 yields exactly the batches of the uninterrupted run.
    resumed = list(data.train_dataset(x, 100, seed=3, first_epoch=1, epochs=1).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate(resumed), second)
    again = list(data.train_dataset(x, 100, seed=3, epochs=1).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate(again), first)


def test_grey_training_data_is_not_binarized():
    x = data.load("frey", "train")
    batches = list(data.train_dataset(x, 100, binarize_dynamically=False, epochs=1).as_numpy_iterator())
    assert len(batches) == 17
    assert len(np.unique(np.concatenate(batches))) > 2
