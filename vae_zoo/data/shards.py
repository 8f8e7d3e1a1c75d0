"""Sharded data sets, for data larger than memory: TFRecord files of raw uint8 images (up to
RECORD_IMAGES images per record, no protobuf), a held-out file, and `shards.json` describing them.

    DIR/shards.json                     image shape, counts, sha256 of every file, the split
    DIR/train-00000-of-00008.tfrecord   training images, in a seeded random order
    DIR/heldout.tfrecord                the held-out images

`write` makes such a folder from any array (`vae-zoo shard --data PATH --out DIR` from any
input `user_data.read` accepts); `Shards` streams it through `tf.data` (interleaved parallel
reads, a bounded shuffle buffer, dynamic binarization) so memory does not grow with the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from vae_zoo.core.errors import DataNotFoundError, IntegrityError, InvalidArgumentError
from vae_zoo.core.io import confined, file_sha256, refuse_existing, staged_dir
from vae_zoo.core.validation import check_positive_int, check_seed, worker_batch_size

MANIFEST = "shards.json"
FORMAT = "vae-zoo shards 1"
HELDOUT = "heldout.tfrecord"
RECORD_OVERHEAD = 16  # TFRecord framing per record: length (8), its CRC (4), data CRC (4)
RECORD_IMAGES = 100  # images per record: one write per 100 images keeps writing fast
SHUFFLE_BUFFER = 10_000  # images held for shuffling (~8 MB of 28x28 images), as whole records
SHUFFLE_GROUP = 10  # records whose images are mixed together before batching


def is_shards(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write(pixels: np.ndarray, out: str | os.PathLike, image_shape: tuple[int, int] | None = None,
          shard_size: int = 50_000, holdout: float = 0.1, seed: int = 0, source: dict | None = None) -> dict:
    """Writes `pixels` (n, D) as a shard folder at `out`.

    `pixels` (n, D) or (n, h, w) may be uint8 (0-255, stored as they are) or floats in
    [0, 1] (stored as round(255 x)); it is read a block of rows at a time, so a `numpy.memmap` larger than
    memory works. The rows are put in the order of
    numpy default_rng(seed).permutation(n), the last `holdout` share of it going to the
    held-out file. The folder is assembled beside `out` and renamed into place.

    Returns:
        The manifest (what shards.json holds).

    Raises:
        OutputExistsError: `out` exists.
    """
    out = Path(out)
    if os.path.lexists(out):
        raise refuse_existing(out, replaceable=False)
    shard_size = check_positive_int("shard_size", shard_size)
    seed = check_seed("seed", seed, allow_none=False)
    n = len(pixels)
    if pixels.ndim == 3 and image_shape is None:
        image_shape = tuple(pixels.shape[1:])
    train_rows, held_rows, split = holdout_rows(n, holdout, seed)
    k = len(held_rows)
    count = -(-len(train_rows) // shard_size)
    binary = True
    with staged_dir(out) as tmp:
        files = []
        for i, start in enumerate(range(0, len(train_rows), shard_size)):
            name = f"train-{i:05d}-of-{count:05d}.tfrecord"
            binary &= _write_records(tmp / name, pixels, train_rows[start:start + shard_size])
            files.append({"file": name, "count": len(train_rows[start:start + shard_size]),
                          "sha256": file_sha256(tmp / name)})
        binary &= _write_records(tmp / HELDOUT, pixels, np.sort(held_rows))
        manifest = {
            "format": FORMAT,
            "input_dim": int(np.prod(pixels.shape[1:])),
            "image_shape": list(image_shape) if image_shape else None,
            "binary": bool(binary),
            "train": files,
            "heldout": {"file": HELDOUT, "count": int(k), "sha256": file_sha256(tmp / HELDOUT)},
            "split": f"{split}; the other {n - k} in the training shards, in that order",
            "source": source,
        }
        manifest["sha256"] = manifest_digest(manifest)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def manifest_digest(manifest: dict) -> str:
    """sha256 of a shard manifest's fields (all but this digest): what the files' own sha256s do
    not cover (the image shape, whether the pixels are binary, the split) is checked by it."""
    fields = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def holdout_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The deterministic split of n rows: numpy default_rng(seed).permutation(n), its last
    round(fraction * n) (at least one) held out.

    Returns:
        (training rows in the permutation's order, held-out rows, a statement of the split).
    """
    seed = check_seed("seed", seed, allow_none=False)
    if not 0 < fraction < 1:
        raise InvalidArgumentError(f"`holdout` must be a fraction in (0, 1). Received: {fraction!r}")
    k = max(1, int(round(fraction * n)))
    if n - k < 1:
        fix = "give at least 2 examples" if n < 2 else f"use a smaller --holdout (at most {(n - 1) / n:.3g})"
        raise InvalidArgumentError(f"Holding out {fraction:g} of {n} examples leaves none to train on: {fix}.")
    order = np.random.default_rng(seed).permutation(n)
    return order[:-k], order[-k:], (f"held out: the last {k} of numpy default_rng({seed}).permutation({n}) "
                                    f"({fraction:g} of the data)")


def _write_records(path: Path, pixels: np.ndarray, rows: np.ndarray, block: int = 100 * RECORD_IMAGES) -> bool:
    """Writes rows of `pixels` as uint8 records of RECORD_IMAGES images; returns whether all
    pixels are 0 or 255."""
    import tensorflow as tf

    binary = True
    with tf.io.TFRecordWriter(str(path)) as writer:
        for start in range(0, len(rows), block):
            chunk = np.asarray(pixels[rows[start:start + block]]).reshape(len(rows[start:start + block]), -1)
            if chunk.dtype != np.uint8 and not (np.isfinite(chunk).all() and chunk.min() >= 0 and chunk.max() <= 1):
                raise InvalidArgumentError(f"Pixels must be uint8, or finite floats in [0, 1]; rows {start} to "
                                           f"{start + len(chunk) - 1} of the shuffled order are not. Nothing was "
                                           "written.")
            as_bytes = chunk if chunk.dtype == np.uint8 else np.round(chunk * 255).astype(np.uint8)
            binary &= bool(np.isin(as_bytes, (0, 255)).all())
            for first in range(0, len(as_bytes), RECORD_IMAGES):
                writer.write(as_bytes[first:first + RECORD_IMAGES].tobytes())
    return binary


def _file_bytes(count: int, input_dim: int) -> int:
    return count * input_dim + -(-count // RECORD_IMAGES) * RECORD_OVERHEAD


class Shards:
    """A shard folder, checked on opening: every file inside the folder, present with the size its
    count implies and the sha256 the manifest records (hashing streams the files: about 12 s per
    8 GiB here, `benchmarks/shard_verify.py`, measured with other jobs running, plus the disk's read
    time).

    Attributes:
        folder: the shard folder.
        input_dim, image_shape: pixels per image, (height, width) or None.
        binary: every pixel is 0 or 1.
        fingerprint: sha256 over the files' sha256s (from the manifest).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        try:
            manifest = json.loads((self.folder / MANIFEST).read_text())
        except FileNotFoundError:
            raise DataNotFoundError(f"{self.folder} is not a shard folder: it has no {MANIFEST}. Make one with "
                                    "vae-zoo shard --data PATH --out DIR.") from None
        except ValueError as err:
            raise InvalidArgumentError(f"{self.folder / MANIFEST} is not valid JSON ({err}); rewrite the shards "
                                       "with vae-zoo shard.") from None
        if not isinstance(manifest, dict):
            raise InvalidArgumentError(f"{self.folder / MANIFEST} holds {type(manifest).__name__}, not a shard "
                                       "manifest; rewrite the shards (vae-zoo shard).")
        if manifest.get("format") != FORMAT:
            raise InvalidArgumentError(f"{self.folder / MANIFEST}: unknown format {manifest.get('format')!r}; "
                                       f"this version reads {FORMAT!r}.")
        self.manifest = manifest
        try:
            self.input_dim = int(manifest["input_dim"])
            self.image_shape = tuple(map(int, manifest["image_shape"])) if manifest["image_shape"] else None
            self.binary = bool(manifest["binary"])
            entries = [(e["file"], int(e["count"]), str(e["sha256"]))
                       for e in [*manifest["train"], manifest["heldout"]]]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise InvalidArgumentError(f"{self.folder / MANIFEST} is not a shard manifest of vae-zoo "
                                       f"({type(err).__name__}: {err}); rewrite the shards (vae-zoo shard).") from None
        for name, count, sha256 in entries:
            path = confined(self.folder, name, self.folder / MANIFEST)
            expected = _file_bytes(count, self.input_dim)
            if not path.is_file():
                raise DataNotFoundError(f"{path} is missing from the shard folder {self.folder}; rewrite the shards.")
            if path.stat().st_size != expected:
                raise InvalidArgumentError(f"{path} has {path.stat().st_size} bytes but its {count} images "
                                           f"take {expected}: the file is truncated or was changed. Rewrite the "
                                           "shards (vae-zoo shard).")
            # Every byte is checked before any is used or certified (streamed, 1 MiB at a time).
            if file_sha256(path) != sha256:
                raise IntegrityError(f"{path} differs from its sha256 in {self.folder / MANIFEST}: the file or the "
                                     "manifest was changed. Rewrite the shards (vae-zoo shard).")
        if manifest.get("sha256") != manifest_digest(manifest):
            raise IntegrityError(f"{self.folder / MANIFEST} was changed after vae-zoo wrote it (its fields differ "
                                 "from its sha256): rewrite the shards (vae-zoo shard).")
        self.fingerprint = hashlib.sha256("".join(sha256 for _, _, sha256 in entries).encode()).hexdigest()

    def __len__(self) -> int:
        return sum(e["count"] for e in self.manifest["train"])

    def describe(self) -> dict:
        examples = len(self) + self.manifest["heldout"]["count"]
        return {"source": str(self.folder), "kind": "shards", "examples": examples, "input_dim": self.input_dim,
                "image_shape": list(self.image_shape) if self.image_shape else None,
                "scaling": "uint8 / 255", "sha256": self.fingerprint, "shards": len(self.manifest["train"]),
                "written_from": self.manifest.get("source")}

    def split(self, fraction: float | None = None, seed: int | None = None):
        """(the training shards, the held-out images, how they were split): the split was made
        when the shards were written, so `fraction` and `seed` do not change it."""
        return self, self.heldout(), self.manifest["split"]

    def head(self, n: int) -> np.ndarray:
        """The first `n` training images (or all, if fewer), float32 in [0, 1]."""
        import tensorflow as tf

        files = [str(self.folder / e["file"]) for e in self.manifest["train"]]
        records = list(tf.data.TFRecordDataset(files).take(-(-n // RECORD_IMAGES)).as_numpy_iterator())
        return np.frombuffer(b"".join(records), np.uint8).reshape(-1, self.input_dim)[:n] / np.float32(255)

    def heldout(self) -> np.ndarray:
        """The held-out images, float32 (n, D) in [0, 1] (read whole: it is the small part)."""
        return self._read(self.manifest["heldout"]["file"])

    def _read(self, name: str) -> np.ndarray:
        import tensorflow as tf

        records = list(tf.data.TFRecordDataset(str(self.folder / name)).as_numpy_iterator())
        return np.frombuffer(b"".join(records), np.uint8).reshape(-1, self.input_dim) / np.float32(255)

    def steps_per_epoch(self, batch_size: int, worker: tuple[int, int] = (0, 1)) -> int:
        """Steps per epoch at global batch `batch_size` when `worker[1]` workers each read their own files."""
        local = worker_batch_size(batch_size, worker)
        count = worker[1]
        if count > len(self.manifest["train"]):
            raise InvalidArgumentError(
                f"{self.folder} has {len(self.manifest['train'])} training shards for {count} workers; each worker "
                f"reads its own shards: rewrite them smaller (vae-zoo shard --shard-size) or use fewer workers.")
        return min(sum(e["count"] for e in self.manifest["train"][i::count]) for i in range(count)) // local

    def train_dataset(self, batch_size: int = 100, binarize_dynamically: bool = True, seed: int = 0,
                      first_epoch: int = 0, epochs: int | None = None, worker: tuple[int, int] = (0, 1)):
        """Shuffled training minibatches streamed from the shards, a pure function of (seed, epoch),
        like `data.train_dataset`: every epoch reads the files in a new seeded order, four at a
        time, interleaved record by record; shuffles whole records in a buffer of SHUFFLE_BUFFER
        images, permutes the images of every SHUFFLE_GROUP records together, and drops the last
        partial batch; so a resumed run sees the same batches.

        With `worker` = (i, count), worker i reads only its own files (i, i + count, ...) and
        yields batches of batch_size / count images; every worker makes as many steps per epoch
        as the one with the fewest images allows (the global batch is the workers' batches).

        Returns:
            A dataset of float32 batches (batch_size / count, D).
        """
        import tensorflow as tf

        batch_size = check_positive_int("batch_size", batch_size)
        seed = check_seed("seed", seed, allow_none=False)
        steps = self.steps_per_epoch(batch_size, worker)
        if steps == 0:
            raise InvalidArgumentError(f"Need at least batch_size={batch_size} examples to train. Received: "
                                       f"{len(self)} in {self.folder}")
        index, count = worker
        own = self.manifest["train"][index::count]
        batch_size = worker_batch_size(batch_size, worker)
        files = tf.constant([str(self.folder / e["file"]) for e in own])
        dim = self.input_dim
        stop = 2**62 if epochs is None else first_epoch + check_positive_int("epochs", epochs)

        def epoch_batches(epoch):
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.argsort(tf.random.stateless_uniform([len(own)], seed=key))
            records = tf.data.Dataset.from_tensor_slices(tf.gather(files, order)).interleave(
                lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20), cycle_length=4, block_length=1,
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            records = records.map(lambda r: tf.reshape(tf.io.decode_raw(r, tf.uint8), [-1, dim]))
            # Shuffled a record (RECORD_IMAGES images) at a time, then within groups of
            # SHUFFLE_GROUP records: tf.data does per-record, not per-image, work. A fixed op seed
            # (a tensor seed fails under AutoGraph): each epoch's shuffle is the same function of
            # its input, which differs by epoch through the file order.
            records = records.shuffle(SHUFFLE_BUFFER // RECORD_IMAGES, seed=seed, reshuffle_each_iteration=False)
            groups = records.rebatch(SHUFFLE_GROUP * RECORD_IMAGES).enumerate().map(
                lambda g, images: mix(images, key, g), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            batches = groups.rebatch(batch_size, drop_remainder=True).take(steps)
            return batches.enumerate().map(lambda i, raw: decode(raw, key, i), num_parallel_calls=tf.data.AUTOTUNE)

        def mix(images, key, g):
            fold_in = tf.random.experimental.stateless_fold_in
            group_key = fold_in(fold_in(key, 0), g)  # batches use fold_in(key, i + 1)
            return tf.gather(images, tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], seed=group_key)))

        def decode(pixels, key, i):
            x = tf.cast(pixels, tf.float32) / 255.0
            if binarize_dynamically:
                step_key = tf.random.experimental.stateless_fold_in(key, i + 1)
                noise = tf.random.stateless_uniform(tf.shape(x), seed=step_key)
                x = tf.cast(noise < x, tf.float32)
            return x

        return tf.data.Dataset.range(first_epoch, stop).flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE)
