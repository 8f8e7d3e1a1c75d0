"""Atomic file writes and checksums: a crash or a full disk never leaves half a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_dir_beside(path: Path) -> Path:
    """A new empty folder next to `path` (same file system, so it can be renamed
    onto `path`), with the permissions a plain mkdir would give."""
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Writes `payload` to `path` via a temp file in the same folder and a rename.

    Raises:
        OSError: with the path in its message when the folder is not writable
            or the disk is full; the original file, if any, is untouched.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(
            err.errno, f"Cannot write {path}: {err.strerror}. Check that the folder exists and is writable."
        ) from err
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise OSError(
            err.errno, f"Cannot write {path}: {err.strerror} (is the disk full?). Nothing was changed."
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
