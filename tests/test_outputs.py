"""Outputs never overlap inputs and --overwrite never deletes what vae-zoo did not write: every
command with an output, on generated layouts; each refusal is one line, exit 2, before any work,
and leaves every file of the user's as it was."""

import hashlib
import re
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae_zoo.core.preset_format import preset_path


def snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def home(tmp_path_factory, mnist_subset):
    """A user's folder: 120 digit PNGs and a notes file, a copy of the mnist-z2 preset, an array."""
    root = tmp_path_factory.mktemp("home")
    images = np.round(mnist_subset[0][:120] * 255).astype(np.uint8).reshape(-1, 28, 28)
    (root / "digits").mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image, "L").save(root / "digits" / f"{i:03d}.png")
    (root / "notes.txt").write_text("my notes")
    shutil.copytree(preset_path("mnist-z2"), root / "my-preset")
    np.save(root / "digits.npy", images)
    return root


# (command, the input it reads) -> arguments; OUT is where the output goes.
COMMANDS = {
    "finetune": (["finetune", "mnist-z2", "--data", "{home}/digits", "--binarize", "--epochs", "1"], "digits"),
    "train": (["train", "--data", "{home}/digits", "--binarize", "--latent-dim", "2", "--epochs", "1"], "digits"),
    "finetune-preset": (["finetune", "{home}/my-preset", "--data", "{home}/digits.npy", "--binarize",
                         "--epochs", "1"], "my-preset"),
    "export": (["export", "{home}/my-preset", "--format", "onnx"], "my-preset"),
    "shard": (["shard", "--data", "{home}/digits"], "digits"),
}
OUT_FLAG = {"export": "-o", "shard": "--out"}


@given(command=st.sampled_from(sorted(COMMANDS)), where=st.sampled_from(["same", "parent", "inside"]),
       overwrite=st.booleans())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_an_output_that_overlaps_an_input_is_refused_whatever_the_flags(home, in_process, tmp_path, command, where,
                                                                        overwrite):
    args, source = COMMANDS[command]
    out = {"same": home / source, "parent": home, "inside": home / source / "out"}[where]
    before = snapshot(home)
    args = [a.format(home=home) for a in args] + [OUT_FLAG.get(command, "--out"), out]
    args += ["--workdir", tmp_path / "runs"] if command in ("finetune", "train", "finetune-preset") else []
    result = in_process(*args, *(["--overwrite"] if overwrite and command != "shard" else []), check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Choose an output outside it" in result.stderr
    assert snapshot(home) == before  # nothing of the user's changed
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_overwrite_never_deletes_a_folder_vae_zoo_did_not_write(home, in_process, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    for args in (["finetune", "mnist-z2", "--data", home / "digits.npy", "--binarize", "--epochs", "1",
                  "--workdir", tmp_path / "runs", "--out", mine],
                 ["export", "mnist-z2", "--format", "onnx", "-o", mine]):
        result = in_process(*args, "--overwrite", check=False)
        assert result.returncode == 2 and "is not a" in result.stderr and "written by vae-zoo" in result.stderr
        assert (mine / "thesis.tex").read_text() == "months of work" and not (tmp_path / "runs").exists()


def test_overwrite_replaces_its_own_output_but_not_a_file_added_to_it(in_process, tmp_path):
    out = tmp_path / "graphs"
    in_process("export", "mnist-z2", "--format", "onnx", "--part", "decoder", "-o", out)
    in_process("export", "mnist-z2", "--format", "onnx", "--part", "decoder", "-o", out, "--overwrite")
    (out / "decoder.notes").write_text("mine")
    result = in_process("export", "mnist-z2", "--format", "onnx", "-o", out, "--overwrite", check=False)
    assert result.returncode == 2 and "holds files vae-zoo did not write (decoder.notes)" in result.stderr
    assert (out / "decoder.notes").read_text() == "mine"


def test_the_bundle_replaces_presets_folders_only_when_asked(in_process, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(preset_path("mnist-z2"), bundle / "mnist-z2")  # a preset, not an export, in the way
    result = in_process("export", "--all-presets", "-o", bundle, check=False)
    assert result.returncode == 2 and "mnist-z2 already exist" in result.stderr and "--overwrite" in result.stderr
    result = in_process("export", "--all-presets", "-o", bundle, "--overwrite", check=False)
    assert result.returncode == 2 and "not a export folder written by vae-zoo" in result.stderr
    assert snapshot(bundle / "mnist-z2") == snapshot(preset_path("mnist-z2"))


@given(command=st.sampled_from([
    ["sample", "mnist-z2", "-n", "4", "-o", "{file}/x.png"],
    ["manifold", "mnist-z2", "-o", "{file}/m.png"],
    ["export", "mnist-z2", "--format", "onnx", "--part", "decoder", "-o", "{file}/graphs"],
    ["train", "mnist-z2", "--epochs", "1", "--workdir", "{file}", "--out", "{tmp}/p"],
    ["reproduce", "figure2", "--dataset", "frey", "--nz", "2", "--samples", "1000", "--lr", "0.02",
     "--workdir", "{file}", "--out", "{tmp}/o"],
]))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_path_through_a_file_is_one_line_naming_it(in_process, tmp_path, command):
    file = tmp_path / "a-file"
    file.write_text("mine")
    args = [a.format(file=file, tmp=tmp_path) for a in command]
    result = in_process(*args, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(file) in result.stderr and file.read_text() == "mine"


@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**31)))
@settings(max_examples=20, deadline=None)
def test_a_seed_out_of_range_is_refused_before_any_work(seed):
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.core.validation import check_seed
    from vae_zoo.paper import reproduce

    with pytest.raises(InvalidArgumentError, match="must be an int from 0 to 2147483647"):
        check_seed("seed", seed)
    with pytest.raises(InvalidArgumentError, match="must be an int from 0 to 2147483647"):
        reproduce.run("figure2", "unused-out", "unused-work", 100, settings={"seed": seed})


def test_a_path_object_names_a_zoo_preset_as_its_string_does():
    import pathlib

    import vae_zoo

    assert vae_zoo.load(pathlib.Path("mnist-z2"), compile=False).latent_dim == 2


def test_export_all_presets_refuses_flags_it_would_ignore(in_process, tmp_path):
    for flags, named in ((["--format", "tflite"], "--format"), (["--part", "decoder"], "--part"),
                         (["--max-drop", "3"], "--max-drop"), (["mnist-z2"], "a model")):
        result = in_process("export", *flags, "--all-presets", "-o", tmp_path / "b", check=False)
        assert result.returncode == 2 and f"does not take {named}" in result.stderr, result.stderr
        assert not (tmp_path / "b").exists()


def test_a_killed_writers_temporary_folder_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from vae_zoo.core.io import atomic_write_text, staged_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    litter = tmp_path / f".out.pid{int(dead.stdout)}.abc123"
    litter.mkdir()
    (litter / "half-written.onnx").write_bytes(b"\0" * 100)
    alive = tmp_path / ".out.pid1.keep"  # pid 1 lives: its folder may be a write in progress
    alive.mkdir()
    with staged_dir(tmp_path / "out") as tmp:
        atomic_write_text(tmp / "a.txt", "done")
    assert not litter.exists() and alive.exists() and (tmp_path / "out" / "a.txt").read_text() == "done"


@pytest.mark.parametrize("content", ["[]", "7", "\"text\"", "{\"curves\": []}", "{", ""])
def test_malformed_results_and_cards_are_one_error_naming_the_file(tmp_path, content):
    import vae_zoo
    from vae_zoo.core.errors import OutputExistsError, PresetError
    from vae_zoo.paper import reproduce

    (tmp_path / "figure2.json").write_text(content)
    with pytest.raises(OutputExistsError, match="figure2.json is not the results of vae-zoo reproduce"):
        reproduce.run("figure2", tmp_path, tmp_path / "w", 100, {"datasets": ["frey"]})
    preset = tmp_path / "p"
    shutil.copytree(preset_path("mnist-z2"), preset)
    (preset / "checksums.json").write_text(content)
    with pytest.raises(PresetError, match="checksums.json"):
        vae_zoo.load(preset)


def test_picture_outputs_take_the_format_of_their_suffix_in_a_new_folder(in_process, tmp_path):
    in_process("sample", "mnist-z2", "-n", "4", "-o", tmp_path / "new" / "folder" / "s.jpg")
    assert Image.open(tmp_path / "new" / "folder" / "s.jpg").format == "JPEG"
    result = in_process("sample", "mnist-z2", "-n", "4", "-o", tmp_path / "s.txt", check=False)
    assert result.returncode == 2 and "name the file .png" in result.stderr and not (tmp_path / "s.txt").exists()
    assert in_process("--version", check=False).stdout.startswith("vae-zoo ")


@pytest.fixture
def file_size_limit():
    """Writes of more than `limit` bytes to one file fail with EFBIG, as on a full disk (Python
    ignores SIGXFSZ): `with file_size_limit(n): ...`."""
    import contextlib
    import resource

    @contextlib.contextmanager
    def limit(size):
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    return limit


@pytest.mark.parametrize("args, limit", [
    (["sample", "mnist-z2", "-n", "400", "-o", "{out}/s.png"], 20_000),
    (["reconstruct", "mnist-z2", "--data", "{home}/digits.npy", "-n", "64", "-o", "{out}/r.png"], 5_000),
    (["manifold", "mnist-z2", "--grid", "20", "-o", "{out}/m.png"], 20_000),
    (["score", "mnist-z2", "--data", "{home}/digits.npy", "--k", "2", "-o", "{out}/s.csv"], 1_000),
    (["embed", "mnist-z2", "--data", "{home}/digits.npy", "-o", "{out}/z.npy"], 1_000),
    (["export", "mnist-z2", "--format", "onnx", "-o", "{out}/graphs"], 100_000),
    (["export", "mnist-z2", "--format", "tflite", "-o", "{out}/graphs"], 100_000),
    (["shard", "--data", "{home}/digits.npy", "--out", "{out}/shards"], 20_000),
    (["finetune", "mnist-z2", "--data", "{home}/digits.npy", "--binarize", "--epochs", "1", "--out", "{out}/p",
      "--workdir", "{out}/runs"], 100_000),
], ids=["sample", "reconstruct", "manifold", "score", "embed", "export-onnx", "export-tflite", "shard", "finetune"])
def test_a_disk_that_refuses_a_write_is_one_line_and_leaves_nothing(home, in_process, tmp_path, file_size_limit,
                                                                    args, limit):
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(home)
    with file_size_limit(limit):
        result = in_process(*[a.format(home=home, out=out) for a in args], check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "File too large" in result.stderr
    assert list(out.iterdir()) == [] and snapshot(home) == before  # no partial file, no temporary folder


def test_a_run_that_would_fill_the_disk_is_refused_before_training(home, in_process, tmp_path, monkeypatch):
    import collections

    from vae_zoo.core import io

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: usage(10 << 20, 9 << 20, 1 << 20))
    result = in_process("finetune", "mnist-z2", "--data", home / "digits", "--binarize", "--out", tmp_path / "p",
                        "--workdir", tmp_path / "runs", check=False)
    assert result.returncode == 2 and "the disk has 1.0 MiB free and this run writes up to" in result.stderr
    assert "Epoch" not in result.stdout and not (tmp_path / "p").exists() and not (tmp_path / "runs").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system (a tmpfs mounted read-only: root writes through a
    folder's permission bits, not through a read-only mount)."""
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:  # not root: the permission bits refuse the writes
        folder.chmod(0o555)
    try:
        (folder / "probe").write_bytes(b"")
    except OSError:
        pass
    else:
        pytest.fail(f"cannot make a read-only folder here ({mounted.stderr.strip()}): run as root or as a user")
    yield folder
    if mounted.returncode == 0:
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o755)


# Every command that writes, with its output (OUT: in the read-only folder) or its work folder there.
WRITERS = {
    "sample": ["sample", "mnist-z2", "-n", "4", "-o", "{ro}/s.png"],
    "reconstruct": ["reconstruct", "mnist-z2", "--data", "{home}/digits.npy", "-n", "4", "-o", "{ro}/r.png"],
    "manifold": ["manifold", "mnist-z2", "--grid", "3", "-o", "{ro}/m.png"],
    "score": ["score", "mnist-z2", "--data", "{home}/digits.npy", "--k", "2", "-o", "{ro}/s.csv"],
    "embed": ["embed", "mnist-z2", "--data", "{home}/digits.npy", "-o", "{ro}/z.npy"],
    "export": ["export", "mnist-z2", "--format", "onnx", "-o", "{ro}/graphs"],
    "shard": ["shard", "--data", "{home}/digits.npy", "--out", "{ro}/shards"],
    "finetune-out": ["finetune", "mnist-z2", "--data", "{home}/digits.npy", "--binarize", "--epochs", "1",
                     "--out", "{ro}/p", "--workdir", "{tmp}/runs"],
    "finetune-workdir": ["finetune", "mnist-z2", "--data", "{home}/digits.npy", "--binarize", "--epochs", "1",
                         "--out", "{tmp}/p", "--workdir", "{ro}/runs"],
    "evaluate-exact": ["evaluate", "mnist-z2", "--exact", "--workdir", "{ro}/runs"],
    "evaluate-ais": ["evaluate", "mnist-z2", "--ais", "--workdir", "{ro}/runs"],
    "train-out": ["train", "--data", "{home}/digits.npy", "--binarize", "--latent-dim", "2", "--epochs", "1",
                  "--out", "{ro}/p", "--workdir", "{tmp}/runs"],
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_read_only_target_is_one_line_and_nothing_is_trained_or_written(home, in_process, tmp_path,
                                                                          read_only_folder, name):
    before = snapshot(home)
    args = [a.format(home=home, ro=read_only_folder, tmp=tmp_path) for a in WRITERS[name]]
    result = in_process(*args, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    # The operating system's words, or the pre-check's before a run (a user's folder: permission words).
    assert re.search(r"[Rr]ead-only file system|Permission denied|not writable", result.stderr), result.stderr
    assert "Epoch" not in result.stdout and "epoch 1" not in result.stdout  # refused before training
    assert list(read_only_folder.iterdir()) == [] and snapshot(home) == before
    assert not (tmp_path / "p").exists()
