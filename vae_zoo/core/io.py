"""Atomic file and folder writes and checksums: a crash or a full disk never leaves half a file."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from glob import escape as glob_escape
from pathlib import Path

from vae_zoo.core.errors import OutputExistsError, WriteError

OFFLINE_ENV = "VAE_ZOO_OFFLINE"  # set to forbid downloads (data sets, presets from the Hub)


def read_json_object(path: str | os.PathLike, keys: dict[str, type | tuple[type, ...]], error: type[Exception],
                     fix: str) -> dict:
    """The JSON object in file `path`, holding `keys` with values of those types.

    Raises:
        error: the file cannot be read, is not JSON, not an object, or lacks a key or has one of
            another type; the message names the file, what is wrong and `fix`.
    """
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise error(f"{path} cannot be read as JSON ({err}). {fix}") from None
    if not isinstance(value, dict):
        raise error(f"{path} holds a JSON {type(value).__name__}, not an object. {fix}")
    for key, kind in keys.items():
        if not isinstance(value.get(key), kind) or isinstance(value.get(key), bool) and bool not in (
                kind if isinstance(kind, tuple) else (kind,)):
            raise error(f"{path} has no valid {key!r} (found {value.get(key)!r}). {fix}")
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_dir_beside(path: Path) -> Path:
    """A new empty folder next to `path` (same file system, so it can be renamed
    onto `path`), with the permissions a plain mkdir would give. Its name holds the writer's
    process id: the temporary folders of writers that died (SIGKILL, power loss) beside `path`
    are removed first, so a killed write leaves no litter past the next write."""
    _remove_dead_writers_temp_dirs(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}."))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def _remove_dead_writers_temp_dirs(path: Path) -> None:
    prefix = f".{path.name}.pid"
    for candidate in path.parent.glob(f"{glob_escape(prefix)}*"):
        pid = candidate.name[len(prefix):].split(".", 1)[0]
        if candidate.is_dir() and not candidate.is_symlink() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_dir(tmp: Path, target: Path, overwrite: bool = True) -> None:
    """Moves the complete folder `tmp` to `target`.

    There is no moment at which `target` is missing or partial: a new `target` appears by
    one rename, an existing one is swapped out in one step (where the OS can; else by two
    renames in quick succession). Without `overwrite`, of two writers racing for a new
    `target` exactly one wins; the other gets `OutputExistsError`.
    """
    try:
        os.rename(tmp, target)  # onto nothing (or an empty folder): atomic, fails on a non-empty one
        return
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        if not overwrite:
            raise OutputExistsError(f"{target} exists and is not empty (written by another process meanwhile?). "
                                    "Pass overwrite=True (--overwrite) to replace it.") from None
    if target.is_dir() and _exchange(tmp, target):
        shutil.rmtree(tmp)  # now holds the old version
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
    os.replace(target, old)  # renaming a folder onto an empty one is allowed
    os.replace(tmp, target)
    shutil.rmtree(old)


def overlap(outputs: dict[str, str | os.PathLike | None], inputs: dict[str, str | os.PathLike | None]) -> None:
    """Refuses outputs that are, contain, or lie inside an input (by resolved path), before any work.

    Args:
        outputs, inputs: flag or role -> path (None entries are skipped).

    Raises:
        InvalidArgumentError: naming the output, the input and how they overlap; whatever the flags.
    """
    from vae_zoo.core.errors import InvalidArgumentError

    for out_name, out in outputs.items():
        for in_name, source in inputs.items():
            if out is None or source is None:
                continue
            o, i = Path(out).resolve(), Path(source).resolve()
            how = ("is" if o == i else "contains" if i.is_relative_to(o) else "lies inside" if o.is_relative_to(i)
                   else None)
            if how:
                raise InvalidArgumentError(f"The output {out_name} {out} {how} the input {in_name} {source}: writing "
                                           "it would replace or mix with what it reads. Choose an output outside it.")


def files_in(folder: Path, under: Path | None = None) -> set[str]:
    """The files (and links) of `under` (default: `folder`), as paths relative to `folder`; the
    lock file excepted."""
    return {str(f.relative_to(folder)) for f in Path(under or folder).rglob("*") if not f.is_dir()} - {".lock"}


def check_replaceable(path: Path, owned: Callable[[Path], set[str] | None], kind: str) -> None:
    """Refuses to replace `path` unless it is a `kind` folder that vae-zoo wrote and holds nothing else.

    Args:
        path: an existing folder.
        owned: folder -> the relative paths of the files vae-zoo wrote there (read from the folder's
            own manifest), or None when it is not a `kind` folder.
        kind: what the folder should be, for the message ("preset", "export", ...).

    Raises:
        OutputExistsError: naming what is in the way; nothing is removed.
    """
    if not path.is_dir():
        raise OutputExistsError(f"{path} is a file, not a {kind} folder; --overwrite replaces only a {kind} folder "
                                "that vae-zoo wrote. Choose another output.")
    mine = owned(path)
    if mine is None:
        raise OutputExistsError(f"{path} is not a {kind} folder written by vae-zoo; --overwrite replaces only such a "
                                "folder, so nothing of yours is deleted. Choose another output.")
    extra = sorted(files_in(path) - mine)
    if extra:
        raise OutputExistsError(f"{path} holds files vae-zoo did not write ({', '.join(extra[:3])}"
                                f"{f' and {len(extra) - 3} more' if len(extra) > 3 else ''}); --overwrite would delete "
                                "them. Move them out, or choose another output.")


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike, overwrite: bool = False, owned: Callable[[Path], set[str] | None] | None = None,
               kind: str = "output") -> Iterator[Path]:
    """Yields an empty temp folder beside `path`; when the block succeeds, it
    becomes `path` (replacing it if `overwrite`), otherwise it is removed.

    Args:
        path: the folder to write.
        overwrite: replace an existing, non-empty `path`: only a `kind` folder that vae-zoo
            wrote and that holds nothing else (see `check_replaceable`), when `owned` is given.
        owned, kind: see `check_replaceable`.

    Raises:
        OutputExistsError: `path` exists, is not an empty folder, and `overwrite` is False, or
            it may not be replaced.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not overwrite:
            raise OutputExistsError(f"{path} exists and is not empty. Pass overwrite=True (--overwrite) to replace it.")
        if owned is not None:
            check_replaceable(path, owned, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(path)
    try:
        yield tmp
        replace_dir(tmp, path, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextlib.contextmanager
def exclusive_lock(folder: str | os.PathLike, what: str, wait: float = 0.0) -> Iterator[None]:
    """Holds an exclusive lock on `folder` (its `.lock` file) for the block.

    The lock dies with its process, so a crash never leaves it blocking the next run. A folder
    the lock created (with its parents) that holds nothing else at the end (a run that failed
    before its first write) is removed with its lock file.

    Args:
        wait: seconds to wait for another holder to let go (0: refuse at once).

    Raises:
        OutputExistsError: another process holds the lock (after `wait` seconds).
    """
    import fcntl
    import time

    folder = Path(folder)
    lock = folder / ".lock"
    made = [] if folder.exists() else [folder, *[p for p in folder.parents if not p.exists()]]
    deadline = time.monotonic() + wait
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a")
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise OutputExistsError(f"Another process is {what} in {folder}. Wait for it to finish, "
                                            "or choose another folder.") from None
                time.sleep(0.05)
        try:  # the lock file may have been removed by its previous holder: then lock the new one
            if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        if made and [p.name for p in folder.iterdir()] == [lock.name]:
            lock.unlink()
            with contextlib.suppress(OSError):  # something appeared meanwhile: it stays
                for made_here in made:  # the folder, then the parents made for it
                    made_here.rmdir()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def require_free_space(paths: dict[str, str | os.PathLike], need: int) -> None:
    """Refuses a job before it starts when the folder under any of `paths` (role -> path, which
    need not exist yet) cannot be written, or its disk has less than `need` bytes free: a long
    run then fails at its start, not when its result is written.

    Raises:
        WriteError: naming the role, the path, and the read-only file system, the missing
            permission, or the space it has and what the job needs.
    """
    for role, path in paths.items():
        existing = Path(path).absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
            why = ("is on a read-only file system" if os.statvfs(existing).f_flag & os.ST_RDONLY
                   else "is not writable by this user")
            raise WriteError(f"{role} {path}: {existing} {why}. Choose a folder you can write to.")
        free = shutil.disk_usage(existing).free
        if free < need:
            raise WriteError(f"{role} {path}: the disk has {free / 2**20:.1f} MiB free and this run writes up to "
                             f"{need / 2**20:.1f} MiB there (checkpoints and the result). Free space, or write to "
                             "another disk.")


def refuse_existing(path: str | os.PathLike, replaceable: bool = True) -> OutputExistsError:
    """The error for a file that would be replaced without permission (`replaceable`: whether
    the writer can be asked to replace it)."""
    if not replaceable:
        return OutputExistsError(f"{path} exists and is never replaced. Choose another name.")
    return OutputExistsError(f"{path} exists. Choose another name, or allow replacing it: --overwrite on the command "
                             "line, overwrite=True in Python.")


def atomic_write_bytes(path: str | os.PathLike, payload: bytes, overwrite: bool = True) -> None:
    """Writes `payload` to `path` via a temp file in the same folder and a rename.

    With `overwrite=False` the file is created exclusively (a hard link), so of two
    writers racing for one path exactly one succeeds.

    Raises:
        OutputExistsError: `path` exists and `overwrite` is False.
        WriteError: with the path in its message when the folder is not
            writable or the disk is full; the original file, if any, is untouched.
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise WriteError(
            err.errno, f"Cannot write {path}: {err.strerror}. Check that the folder exists and is writable."
        ) from err
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if another writer created `path` meanwhile
    except FileExistsError:
        raise refuse_existing(path) from None
    except OSError as err:
        raise WriteError(
            err.errno, f"Cannot write {path}: {err.strerror} (is the disk full?). Nothing was changed."
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), overwrite)


def confined(folder: str | os.PathLike, name, manifest: str | os.PathLike) -> Path:
    """The file `name` that `manifest` lists, which must lie inside `folder`.

    Raises:
        IntegrityError: `name` is not a relative path of `folder` (absolute, with "..", or a
            link that leads outside it), naming the manifest.
    """
    from vae_zoo.core.errors import IntegrityError

    folder = Path(folder)
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise IntegrityError(f"{manifest} lists {name!r}, which is not a file inside {folder}: a manifest names "
                             "files by their path relative to its folder. Rewrite the folder with vae-zoo.")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise IntegrityError(f"{manifest} lists {name!r}, a link that leads outside {folder}. Rewrite the folder "
                             "with vae-zoo.")
    return path


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()
