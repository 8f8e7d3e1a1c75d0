"""MNIST and Frey Face: locate, download, verify, split, binarize, and feed with tf.data.

Files are looked up in `$VAE_ZOO_DATA`, then in the user cache
(`$XDG_CACHE_HOME/vae_zoo`, default `~/.cache/vae_zoo`), and otherwise
downloaded from their canonical URLs into the cache (unless `$VAE_ZOO_OFFLINE`
is set). Every array is checked
against the sha256 of its C-order bytes before use, so a corrupt or different
file is never trained on.

Protocols (stated in every model card):

- MNIST: train = the 60,000 training images (or the first 50,000 with
  `validation=True`, the last 10,000 then forming the "valid" split), test =
  the 10,000 test images; pixels / 255. Bernoulli models train on dynamic
  binarizations (x ~ Bernoulli(pixel), resampled every epoch) and are
  evaluated on one fixed binarization of the test set drawn with
  `TEST_BINARIZATION_SEED`.
- Frey Face: 1,965 images of 28 x 20 pixels, pixels / 256; a fixed split by
  a permutation seeded with `FREY_SPLIT_SEED`: the last `FREY_TEST_SIZE`
  images of the permutation are the test set.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

from vae_zoo.core.errors import DataIntegrityError, DataNotFoundError, InvalidArgumentError
from vae_zoo.core.io import OFFLINE_ENV
from vae_zoo.core.validation import check_choice, check_data, check_positive_int, check_seed, worker_batch_size

DATA_ENV = "VAE_ZOO_DATA"
TEST_BINARIZATION_SEED = 20131220  # arXiv 1312.6114 was submitted on 2013-12-20
FREY_SPLIT_SEED = 0
FREY_TEST_SIZE = 200


@dataclass(frozen=True, eq=False)  # hashed by identity, for the read cache
class Source:
    """Where a data file comes from and the sha256 of each of its arrays."""

    filename: str
    url: str
    sha256: dict  # array name -> sha256 of its C-order bytes


MNIST = Source(
    "mnist.npz",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    {
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
)
FREY = Source(
    "frey_rawface.mat",
    "https://cs.nyu.edu/~roweis/data/frey_rawface.mat",
    {"ff.T": "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78"},
)


@dataclass(frozen=True)
class DatasetInfo:
    """The facts of a data set that models and cards depend on.

    Attributes:
        name: "mnist" or "frey".
        input_dim: D, pixels of a flattened image.
        image_shape: (height, width) of an image (row-major).
        train_size: images in the training split (without `validation=True`).
        test_size: images in the test split.
    """

    name: str
    input_dim: int
    image_shape: tuple[int, int]
    train_size: int
    test_size: int


DATASETS = {
    "mnist": DatasetInfo("mnist", 784, (28, 28), 60_000, 10_000),
    "frey": DatasetInfo("frey", 560, (28, 20), 1965 - FREY_TEST_SIZE, FREY_TEST_SIZE),
}


def cache_dir() -> Path:
    """The user cache folder for downloaded data sets."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vae_zoo"


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def locate(source: Source, download: bool = True) -> Path:
    """Finds `source`'s file in $VAE_ZOO_DATA or the cache, downloading if needed.

    Raises:
        FileNotFoundError: if the file is nowhere and cannot be downloaded.
    """
    places = []
    if os.environ.get(DATA_ENV):
        places.append(Path(os.environ[DATA_ENV]) / source.filename)
    places.append(cache_dir() / source.filename)
    for path in places:
        if path.is_file():
            return path
    target = places[-1]
    reason = "downloads are disabled"
    if os.environ.get(OFFLINE_ENV):
        reason = f"downloads are disabled by ${OFFLINE_ENV}"
    elif download:
        try:
            _download(source, target)
            return target
        except (urllib.error.URLError, OSError) as err:
            reason = f"the download failed ({err})"
    raise DataNotFoundError(
        f"Data file {source.filename!r} not found in {' or '.join(str(p) for p in places)}, "
        f"and {reason}. Download {source.url} into one of these folders, or set "
        f"${DATA_ENV} to the folder that holds it."
    )


def _download(source: Source, target: Path) -> None:
    """Downloads `source` to `target`: into a temp file beside it, verified array by array
    (`DataIntegrityError` otherwise), and only then renamed into place, so the cache never
    holds a partial or wrong file, even when two processes download at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source.url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        _read_verified_cached.__wrapped__(source, tmp, -1, -1)  # raises before anything lands in the cache
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _verified(name: str, array: np.ndarray, source: Source, path: Path) -> np.ndarray:
    digest = array_sha256(array)
    if digest != source.sha256[name]:
        raise DataIntegrityError(
            f"Array {name!r} of {path} has sha256 {digest}, expected {source.sha256[name]}: "
            f"the file is corrupt or not the canonical {source.filename}. Delete it and "
            f"download {source.url} again."
        )
    return array


def load_mnist_arrays(download: bool = True) -> dict[str, np.ndarray]:
    """The verified raw MNIST arrays (uint8, read-only): x_train, y_train, x_test, y_test."""
    return _read_verified(MNIST, locate(MNIST, download))


def load_frey_array(download: bool = True) -> np.ndarray:
    """The verified Frey Face images (uint8, read-only), shape (1965, 560), row-major 28 x 20."""
    return _read_verified(FREY, locate(FREY, download))["ff.T"]


def _read_verified(source: Source, path: Path) -> dict[str, np.ndarray]:
    stat = path.stat()
    return _read_verified_cached(source, str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_verified_cached(source: Source, path: str, size: int, mtime_ns: int) -> dict[str, np.ndarray]:
    """Reads and verifies a file once per (path, size, mtime) in a process."""
    path = Path(path)
    try:
        if source.filename.endswith(".mat"):
            from scipy.io import loadmat

            arrays = {"ff.T": np.ascontiguousarray(loadmat(path)["ff"].T)}
        else:
            with np.load(path) as f:
                arrays = {k: f[k] for k in source.sha256}
    except Exception as err:  # zipfile, pickle, MatReadError, IndexError, KeyError: all mean a bad file
        raise DataIntegrityError(
            f"Cannot read {path} as {source.filename} ({type(err).__name__}: {err}). "
            f"Delete it and download {source.url} again."
        ) from err
    for name, array in arrays.items():
        _verified(name, array, source, path)
        array.flags.writeable = False
    return arrays


SPLITS = ("train", "valid", "test")


def load(name: str, split: str = "train", validation: bool = False, labels: bool = False, download: bool = True):
    """A split of a data set as float32 pixels in [0, 1], shape (n, D).

    Args:
        name: "mnist" or "frey".
        split: "train", "test", or (with `validation=True`) "valid".
        validation: hold out a "valid" split from the training images: the
            last 10,000 of MNIST, the last 200 of Frey Face's training split.
        labels: also return the digit labels (MNIST only).
        download: download missing files.

    Returns:
        x, or (x, y) when `labels`.
    """
    check_choice("name", name, DATASETS, "data set")
    check_choice("split", split, SPLITS if validation else ("train", "test"))
    if name == "frey":
        if labels:
            raise InvalidArgumentError("Frey Face has no labels. Received: labels=True")
        parts = frey_split(load_frey_array(download))
        if validation and split != "test":  # the last FREY_TEST_SIZE training images
            parts = {"train": parts["train"][:-FREY_TEST_SIZE], "valid": parts["train"][-FREY_TEST_SIZE:]}
        return parts[split].astype(np.float32) / 256.0
    arrays = load_mnist_arrays(download)
    part = "test" if split == "test" else "train"
    x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
    if validation and split != "test":
        rows = slice(50_000, None) if split == "valid" else slice(0, 50_000)
        x, y = x[rows], y[rows]
    x = x.reshape(len(x), -1).astype(np.float32) / 255.0
    return (x, y.astype(np.int64)) if labels else x


def frey_split(images: np.ndarray) -> dict[str, np.ndarray]:
    """The fixed Frey Face split: a permutation seeded with FREY_SPLIT_SEED, last 200 = test."""
    order = np.random.default_rng(FREY_SPLIT_SEED).permutation(len(images))
    return {"train": images[order[:-FREY_TEST_SIZE]], "test": images[order[-FREY_TEST_SIZE:]]}


def binarize(x: np.ndarray, seed: int = TEST_BINARIZATION_SEED) -> np.ndarray:
    """One fixed stochastic binarization: x_b ~ Bernoulli(x), drawn with `seed`."""
    x = check_data(x, None, "bernoulli")
    rng = np.random.default_rng(check_seed("seed", seed, allow_none=False))
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def test_set(name: str, binary: bool) -> np.ndarray:
    """The evaluation test set: fixed binarization for Bernoulli models."""
    x = load(name, "test")
    return binarize(x) if binary else x


def train_dataset(
    x: np.ndarray,
    batch_size: int = 100,
    binarize_dynamically: bool = True,
    seed: int = 0,
    first_epoch: int = 0,
    epochs: int | None = None,
    with_indices: bool = False,
    worker: tuple[int, int] = (0, 1),
) -> tf.data.Dataset:
    """Shuffled minibatches for training, a pure function of (seed, epoch).

    Every epoch draws a new permutation and, if `binarize_dynamically`, a new
    binarization x_b ~ Bernoulli(x) of every image, from stateless seeds made of
    `seed` and the epoch number, so a run resumed at `first_epoch` sees exactly
    the batches an uninterrupted run would. The last partial batch of an epoch
    is dropped, so every epoch has len(x) // batch_size steps.

    Args:
        x: float32 pixels in [0, 1], shape (n, D).
        batch_size: minibatch size M.
        binarize_dynamically: resample binary images every epoch.
        seed: seed of the shuffles and binarizations.
        first_epoch: epoch to start from (for resuming).
        epochs: number of epochs to yield (None: endless).
        with_indices: yield (x, index) pairs, `index` (batch_size,) int32 holding the
            examples' rows in `x` (for models that keep per-example state, e.g. `MCEM`).
        worker: (i, count): yield only worker i's slice of every batch, rows
            i * batch_size / count onwards (data-parallel training; the slices of all workers
            are the batches of one process, binarization included).

    Returns:
        A dataset of float32 batches of shape (batch_size / count, D) (or of pairs, see `with_indices`).
    """
    import tensorflow as tf  # here only: the rest of the module (and `vae-zoo list`) needs no TensorFlow

    x = check_data(x, None, "bernoulli" if binarize_dynamically else "gaussian")
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed("seed", seed, allow_none=False)
    first_epoch = check_seed("first_epoch", first_epoch, allow_none=False)
    if epochs is not None:
        epochs = check_positive_int("epochs", epochs)
    n = len(x)
    if n < batch_size:
        raise InvalidArgumentError(
            f"Need at least batch_size={batch_size} examples to train. Received: {n} examples"
        )
    steps = n // batch_size
    local = worker_batch_size(batch_size, worker)
    first = worker[0] * local
    pixels = tf.constant(x, dtype=tf.float32)
    stop = None if epochs is None else first_epoch + epochs

    def epoch_batches(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=key))[: steps * batch_size]
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order, [steps, batch_size]))
        return batches.enumerate().map(lambda i, idx: _batch(idx, key, i), num_parallel_calls=tf.data.AUTOTUNE)

    def _batch(idx, key, i):
        if binarize_dynamically:  # the whole batch's noise, so every worker's slice is one process's
            noise = tf.random.stateless_uniform([batch_size, x.shape[1]],
                                                seed=tf.random.experimental.stateless_fold_in(key, i + 1))
        idx = idx[first:first + local]
        xb = tf.gather(pixels, idx)
        if binarize_dynamically:
            xb = tf.cast(noise[first:first + local] < xb, tf.float32)
        return (xb, tf.cast(idx, tf.int32)) if with_indices else xb

    epochs_ds = tf.data.Dataset.range(first_epoch, 2**62 if stop is None else stop)
    return epochs_ds.flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE)


def protocol(name: str, binary: bool) -> dict:
    """The data protocol of a model card: source, splits, scaling, binarization."""
    if name == "mnist":
        return {
            "dataset": "mnist",
            "source": MNIST.url,
            "array_sha256": MNIST.sha256,
            "train": "60,000 training images",
            "test": "10,000 test images",
            "scaling": "pixels / 255",
            "binarization": (
                "training: dynamic, x ~ Bernoulli(pixel) resampled every epoch; test: one fixed binarization, "
                f"numpy default_rng({TEST_BINARIZATION_SEED})" if binary else "none"
            ),
        }
    return {
        "dataset": "frey",
        "source": FREY.url,
        "array_sha256": FREY.sha256,
        "train": f"{DATASETS['frey'].train_size} images",
        "test": (f"{FREY_TEST_SIZE} images: the last {FREY_TEST_SIZE} of "
                 f"numpy default_rng({FREY_SPLIT_SEED}).permutation(1965)"),
        "scaling": "pixels / 256",
        "binarization": "none",
    }
