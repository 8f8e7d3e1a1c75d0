"""Atomic writes: a full or read-only disk gives a clear error and leaves nothing half-written."""

import errno
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vae_zoo.core import io
from vae_zoo.core.io import read_json_object


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "f.json"
    io.atomic_write_text(target, "old")
    io.atomic_write_text(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["f.json"]


def test_full_disk_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "card.json"
    target.write_text("precious")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", no_space)
    with pytest.raises(OSError, match=r"Cannot write .*card.json: No space left on device \(is the disk full\?\)"):
        io.atomic_write_text(target, "half")
    assert target.read_text() == "precious" and os.listdir(tmp_path) == ["card.json"]


def test_read_only_folder_names_the_path(tmp_path, monkeypatch):
    def read_only(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(io.tempfile, "mkstemp", read_only)
    with pytest.raises(OSError, match=r"Cannot write .*out.png: Read-only file system. Check that the folder"):
        io.atomic_write_bytes(tmp_path / "out.png", b"x")


def test_missing_folder_is_an_error_not_a_crash(tmp_path):
    with pytest.raises(OSError, match="Check that the folder exists"):
        io.atomic_write_text(tmp_path / "nope" / "f.txt", "x")


def test_a_lock_can_wait_for_its_holder(tmp_path):
    import threading
    import time

    held, order = threading.Event(), []

    def holder():
        with io.exclusive_lock(tmp_path, "writing"):
            held.set()
            time.sleep(0.5)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    with pytest.raises(OSError, match="Another process is writing"):
        with io.exclusive_lock(tmp_path, "writing"):
            pass
    with io.exclusive_lock(tmp_path, "writing", wait=10):  # takes its turn
        order.append("waiter")
    thread.join()
    assert order == ["holder done", "waiter"]


def test_a_lock_leaves_no_empty_folder_and_never_two_holders(tmp_path):
    from vae_zoo.core.errors import OutputExistsError
    from vae_zoo.core.io import exclusive_lock

    with exclusive_lock(tmp_path / "run", "training"):
        with pytest.raises(OutputExistsError, match="Another process is training"):
            with exclusive_lock(tmp_path / "run", "training"):
                pass
    assert not (tmp_path / "run").exists()  # it made the folder and nothing was written there
    with exclusive_lock(tmp_path / "a" / "b" / "run", "training"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nor the parents it made for it
    with exclusive_lock(tmp_path / "run", "training"):
        (tmp_path / "run" / "checkpoint").write_text("x")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", "checkpoint"]
    with exclusive_lock(tmp_path, "writing"):  # a folder it did not make stays, with its lock file
        pass
    assert tmp_path.is_dir()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(value=_JSON | st.fixed_dictionaries({"epoch": _JSON, "identity": _JSON}), raw=st.booleans())
def test_every_state_file_is_read_as_its_shape_or_refused_in_a_sentence(tmp_path_factory, value, raw):
    """A checkpoint's state.json of any content: resumed, or a TrainingError that names the file."""
    import json

    from vae_zoo.core.errors import TrainingError
    from vae_zoo.training import checkpoints

    folder = tmp_path_factory.mktemp("run")
    (folder / checkpoints.CHECKPOINT_DIR).mkdir()
    state = folder / checkpoints.CHECKPOINT_DIR / checkpoints.STATE
    state.write_text(json.dumps(value)[:-1] if raw else json.dumps(value))  # raw: cut short
    try:
        read = read_json_object(state, {"epoch": int}, TrainingError, "fix")
    except TrainingError as error:
        assert str(state) in str(error) and "\n" not in str(error)
        return
    assert isinstance(read, dict) and isinstance(read["epoch"], int) and not isinstance(read["epoch"], bool)
    assert checkpoints._kept(folder).startswith(f"The checkpoint of epoch {read['epoch']}")


def _progress(path, values=None):
    from vae_zoo.core.progress import ProgressFile

    fields = {"values": np.full(5, np.nan) if values is None else values.copy(), "shared_check": np.array(np.nan)}
    return ProgressFile(path, "`evaluate --exact`", ("grid", 101), [np.arange(6.0)], fields)


@settings(max_examples=60, deadline=None)
@given(damage=st.sampled_from(["truncate", "flip"]), where=st.floats(0.0, 1.0, exclude_max=True),
       bit=st.integers(0, 7))
def test_a_damaged_progress_file_is_refused_in_a_sentence_or_reads_as_written(tmp_path_factory, damage, where, bit):
    """A measurement continues from its progress file only with the values it saved: a truncated
    file, or one with any bit flipped, is refused naming the file (InvalidArgumentError), unless
    the damage missed everything read (a zip field nothing checks)."""
    from vae_zoo.core.errors import InvalidArgumentError

    path = tmp_path_factory.mktemp("progress") / "m-exact.npz"
    written = _progress(path)
    written["values"][:3] = [-1.5, -2.25, 3.0]
    written.save()
    raw = bytearray(path.read_bytes())
    position = int(where * len(raw))
    if damage == "truncate":
        raw = raw[:position]
    else:
        raw[position] ^= 1 << bit
    path.write_bytes(bytes(raw))
    try:
        read = _progress(path)
    except InvalidArgumentError as err:
        assert str(path) in str(err) and ("Delete it" in str(err)), err
    else:
        np.testing.assert_array_equal(read["values"], written["values"])
        np.testing.assert_array_equal(read["shared_check"], written["shared_check"])


def test_a_progress_file_of_another_measurement_is_refused(tmp_path):
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.core.progress import ProgressFile

    path = tmp_path / "m-exact.npz"
    _progress(path).save()
    with pytest.raises(InvalidArgumentError, match="another measurement"):
        ProgressFile(path, "`evaluate --exact`", ("grid", 201), [np.arange(6.0)], {"values": np.full(5, np.nan)})
    with pytest.raises(InvalidArgumentError, match="another measurement"):
        _progress(path, np.full(4, np.nan))  # other images: another number of values
