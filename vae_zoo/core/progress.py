"""The progress file of a long measurement: its per-image values so far, from which the same call
continues after an interruption."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from vae_zoo.core.errors import InvalidArgumentError, WriteError
from vae_zoo.core.io import atomic_write_bytes


class ProgressFile:
    """Named arrays of a measurement (NaN: not measured yet) in an .npz file, or nowhere (path None),
    keyed by what is measured: the same measurement reads them back, another one is refused.

    Args:
        path: the .npz file, or None to keep nothing.
        command: the measurement, as the refusals name it (e.g. "`evaluate --exact`").
        settings: everything besides the arrays that the values depend on (grids, seeds), by repr.
        arrays: the arrays the values depend on (a model's weights, the images).
        fields: name -> its initial array (NaN where nothing is measured yet).

    Raises:
        InvalidArgumentError: the file is unreadable or holds another measurement.
    """

    def __init__(self, path: str | os.PathLike | None, command: str, settings: object, arrays: Sequence[np.ndarray],
                 fields: dict[str, np.ndarray]):
        digest = hashlib.sha256(repr(settings).encode())
        for array in arrays:
            digest.update(np.ascontiguousarray(array, np.float32).tobytes())
        self.path, self.key, self.fields = (Path(path) if path is not None else None), digest.hexdigest(), fields
        self.seconds, self.started = 0.0, time.time()  # earlier (interrupted) calls' wall time; this call's start
        if self.path is None or not self.path.exists():
            return
        try:
            with np.load(self.path) as saved:
                key, seconds = str(saved["key"]), float(saved["seconds"])
                stored = {name: saved[name] for name in fields}
        except Exception as err:  # noqa: BLE001 (any unreadable file is the same refusal)
            raise InvalidArgumentError(f"{self.path} is not a progress file of {command} ({err}). Delete it or "
                                       "choose another file.") from err
        if key != self.key or any(stored[name].shape != fields[name].shape for name in fields):
            raise InvalidArgumentError(f"{self.path} holds the progress of another measurement (other weights, "
                                       "images or settings). Delete it to start again, or choose another file.")
        self.fields, self.seconds = stored, seconds

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.fields[name] = value

    def elapsed(self) -> float:
        """Seconds of wall time the measurement took in all, interrupted calls included."""
        return self.seconds + time.time() - self.started

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def save(self) -> None:
        """Writes the file atomically (WriteError names the folder when it cannot be written)."""
        if self.path is None:
            return
        buffer = io.BytesIO()
        np.savez(buffer, key=self.key, seconds=self.elapsed(), **self.fields)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WriteError(err.errno, f"Cannot write {self.path}: {err.strerror}. Choose a writable --workdir.") \
                from err
        atomic_write_bytes(self.path, buffer.getvalue())
