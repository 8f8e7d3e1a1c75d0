"""The user's own data: formats, one-line errors that name the file and row, a deterministic
hold-out, and `vae-zoo finetune` / `vae-zoo train --data` through the console script."""

import json
import os

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from test_cli import vae_zoo as run_cli

import vae_zoo
from vae_zoo.core.errors import DataNotFoundError, InvalidArgumentError
from vae_zoo.core.io import file_sha256, tree_sha256
from vae_zoo.core.preset_format import preset_path
from vae_zoo.data import user_data


def write_pngs(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image, "L").save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def digits(mnist_subset):
    """300 MNIST digits as uint8 (n, 28, 28)."""
    return np.round(mnist_subset[0][:300] * 255).astype(np.uint8).reshape(-1, 28, 28)


def test_every_format_reads_the_same_pixels_and_fingerprint(digits, tmp_path):
    folder = write_pngs(tmp_path / "pngs", digits[:20])
    np.save(tmp_path / "a.npy", digits[:20])
    np.savez(tmp_path / "b.npz", x=digits[:20].astype(np.float32) / 255, labels=np.arange(20))
    np.save(tmp_path / "flat.npy", digits[:20].reshape(20, -1)[..., None][..., 0])
    reads = [user_data.read(p) for p in (folder, tmp_path / "a.npy", tmp_path / "b.npz")]
    for read in reads:
        assert read.x.shape == (20, 784) and read.image_shape == (28, 28)
        np.testing.assert_array_equal(read.x, reads[0].x)
        assert read.fingerprint == reads[0].fingerprint
    assert [r.kind for r in reads] == ["images", "npy", "npz"]
    assert user_data.read(tmp_path / "flat.npy").image_shape is None


def _bad_files(tmp_path, digits):
    """(path, words the message must contain) for every kind of bad data the issue lists."""
    cases = []
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append((empty, ["holds no PNG or JPEG"]))
    rgb = write_pngs(tmp_path / "rgb", digits[:2])
    Image.fromarray(np.zeros((28, 28, 3), np.uint8), "RGB").save(rgb / "0001.png")
    cases.append((rgb, ["0001.png", "grayscale"]))
    mixed = write_pngs(tmp_path / "mixed", digits[:3])
    Image.fromarray(np.zeros((20, 20), np.uint8), "L").save(mixed / "0002.png")
    cases.append((mixed, ["0002.png", "one size"]))
    truncated = write_pngs(tmp_path / "truncated", digits[:3])
    payload = (truncated / "0001.png").read_bytes()
    (truncated / "0001.png").write_bytes(payload[: len(payload) // 2])
    cases.append((truncated, ["0001.png", "cannot be read"]))
    np.save(tmp_path / "cut.npy", digits[:50])
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:5000])
    cases.append((tmp_path / "cut.npy", ["cut.npy", "cannot be read"]))
    nan = digits[:5].astype(np.float32) / 255
    nan[3, 4, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases.append((tmp_path / "nan.npy", ["nan.npy", "row 3", "NaN"]))
    np.save(tmp_path / "big.npy", digits[:5].astype(np.float32))  # 0-255 floats: not scaled
    cases.append((tmp_path / "big.npy", ["big.npy", "row 0", "outside [0, 1]"]))
    np.save(tmp_path / "int16.npy", digits[:5].astype(np.int16))
    cases.append((tmp_path / "int16.npy", ["uint8"]))
    np.savez(tmp_path / "two.npz", a=digits[:2], b=digits[:2])
    cases.append((tmp_path / "two.npz", ["several arrays", "a, b"]))
    (tmp_path / "data.csv").write_text("1,2\n")
    cases.append((tmp_path / "data.csv", ["'.csv'", ".npy"]))
    np.save(tmp_path / "empty.npy", np.zeros((0, 784), np.uint8))
    cases.append((tmp_path / "empty.npy", ["n >= 1"]))
    cases.append((tmp_path / "missing", ["No data at"]))
    os.mkfifo(tmp_path / "pipe.npy")
    cases.append((tmp_path / "pipe.npy", ["pipe.npy", "neither a file nor a folder"]))
    huge = np.full((2, 4), 0.5)
    huge[1, 2] = 1e300  # finite, but inf after a float32 cast: reported as what it is
    np.save(tmp_path / "huge.npy", huge)
    cases.append((tmp_path / "huge.npy", ["huge.npy", "row 1", "outside [0, 1]"]))
    return cases


def test_bad_data_is_refused_naming_the_file_and_the_fix(digits, tmp_path):
    for path, words in _bad_files(tmp_path, digits):
        with pytest.raises((InvalidArgumentError, DataNotFoundError)) as info:
            user_data.read(path)
        for word in words:
            assert word in str(info.value), (path, str(info.value))


@settings(max_examples=60, deadline=None)
@given(st.one_of(
    hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64, np.uint8, np.int32, np.bool_]),
               hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)),
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), elements=st.floats(0, 1, width=32)),
))
def test_any_array_is_read_into_unit_range_or_refused_cleanly(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("arr") / "x.npy"
    np.save(path, array)
    try:
        read = user_data.read(path)
    except InvalidArgumentError as err:
        assert "x.npy" in str(err)
        return
    assert read.x.dtype == np.float32 and read.x.ndim == 2 and len(read.x) == array.shape[0]
    assert np.isfinite(read.x).all() and read.x.min() >= 0 and read.x.max() <= 1


def test_holdout_is_deterministic_and_disjoint():
    x = np.arange(50, dtype=np.float32)[:, None] / 50
    train, held, statement = user_data.holdout(x, 0.2, seed=3)
    again = user_data.holdout(x, 0.2, seed=3)
    assert len(held) == 10 and len(train) == 40 and "default_rng(3)" in statement
    np.testing.assert_array_equal(held, again[1])
    assert sorted(np.concatenate([train, held])[:, 0].tolist()) == sorted(x[:, 0].tolist())
    with pytest.raises(InvalidArgumentError, match="fraction"):
        user_data.holdout(x, 1.5)
    with pytest.raises(InvalidArgumentError, match=r"Holding out 0.99 of 50 examples leaves none to train on: use a "
                                                    r"smaller --holdout \(at most 0.98\)"):
        user_data.holdout(x, 0.99)


def test_binarized_uint8_data_is_read_as_0_and_1_and_images_upright(digits, tmp_path):
    binary = (digits[:6] > 127).astype(np.uint8)  # binarized data saved as uint8 0/1, not grey levels of 1/255
    np.save(tmp_path / "b.npy", binary)
    folder = write_pngs(tmp_path / "pngs", binary)
    for read in (user_data.read(tmp_path / "b.npy"), user_data.read(folder)):
        np.testing.assert_array_equal(read.x, binary.reshape(6, -1))
        assert read.binary and read.describe()["scaling"] == "uint8 0/1 as is"
    assert user_data.read(tmp_path / "pngs").fingerprint == user_data.read(tmp_path / "b.npy").fingerprint
    assert user_data.read(write_pngs(tmp_path / "grey", digits[:6])).describe()["scaling"] == "uint8 / 255"
    # A camera's JPEG or PNG stored sideways with an EXIF orientation is read as every viewer shows it.
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    wide = np.zeros((20, 28), np.uint8)
    wide[:, :3] = 255  # a bar on the left of the stored image
    Image.fromarray(wide, "L").save(rotated / "0.png", exif=exif)
    read = user_data.read(rotated)
    assert read.image_shape == (28, 20)
    np.testing.assert_array_equal(read.x.reshape(28, 20), np.rot90(wide, -1) / 255)  # the bar is now on top


@pytest.mark.slow
def test_finetune_a_preset_on_a_folder_of_pngs(digits, tmp_path):
    folder = write_pngs(tmp_path / "mine", digits)
    before = tree_sha256(folder)
    result = run_cli("finetune", "mnist-z2", "--data", folder, "--out", tmp_path / "ft", "--epochs", "2",
                     "--binarize", "--freeze", "decoder", "--workdir", tmp_path / "runs")
    assert tree_sha256(folder) == before  # the user's data is only read
    # One progress format (the epoch lines), then what was measured and where the checkpoints are.
    assert "epoch 2/2: train elbo" in result.stdout and "Epoch 1/2" not in result.stdout
    assert "Measured on 30 held-out rows of" in result.stdout and "before fine-tuning" in result.stdout
    assert f"Checkpoints: {tmp_path / 'runs' / 'ft'} (" in result.stdout
    card = json.loads((tmp_path / "ft" / "card.json").read_text())
    assert card["source"] == {"preset": "mnist-z2",
                              "weights_sha256": file_sha256(preset_path("mnist-z2") / "model.weights.h5")}
    assert card["data"]["sha256"] == user_data.read(folder).fingerprint and card["data"]["examples"] == 300
    assert "permutation(300)" in card["data"]["split"] and card["freeze"] == "decoder"
    metrics = card["metrics"]
    assert metrics["n_test"] == 30 and np.isfinite(metrics["test_log_likelihood"]["mean"])
    assert "source_preset_test_log_likelihood" in metrics
    tuned, original = vae_zoo.load(tmp_path / "ft"), vae_zoo.load("mnist-z2")
    for a, b in zip(tuned.decoder.get_weights(), original.decoder.get_weights()):
        np.testing.assert_array_equal(a, b)  # frozen
    assert any(not np.array_equal(a, b) for a, b in zip(tuned.encoder.get_weights(), original.encoder.get_weights()))
    again = run_cli("finetune", "mnist-z2", "--data", folder, "--out", tmp_path / "ft", check=False)
    assert again.returncode == 2 and "already exists" in again.stderr and len(again.stderr.splitlines()) == 1


@pytest.mark.slow
def test_train_a_fresh_model_on_an_array_of_any_image_size(tmp_path, in_process):
    rng = np.random.default_rng(0)
    images = (rng.random((250, 10, 12)) * 255).astype(np.uint8)
    np.save(tmp_path / "faces.npy", images)
    in_process("train", "--data", tmp_path / "faces.npy", "--latent-dim", "3", "--hidden", "16", "--likelihood",
               "gaussian", "--epochs", "2", "--out", tmp_path / "mine", "--workdir", tmp_path / "runs")
    model = vae_zoo.load(tmp_path / "mine")
    assert (model.input_dim, model.latent_dim, model.likelihood) == (120, 3, "gaussian")
    in_process("sample", tmp_path / "mine", "-n", "4", "-o", tmp_path / "s.png")  # 10x12 images, from the card
    assert Image.open(tmp_path / "s.png").size == (3 * (2 * 13 + 1), 3 * (2 * 11 + 1))
    assert isinstance(keras.saving.load_model(tmp_path / "runs" / "mine" / "checkpoint" / "model.keras"),
                      vae_zoo.VAE)


@pytest.mark.parametrize("make, args, message", [
    (lambda d, t: write_pngs(t / "small", np.zeros((120, 20, 20), np.uint8)), ["finetune", "mnist-z2"], "28x28"),
    (lambda d, t: write_pngs(t / "grey", d), ["finetune", "mnist-z2"], "--binarize"),
    (lambda d, t: write_pngs(t / "grey", d), ["train", "--latent-dim", "2"], "--likelihood gaussian"),
])
def test_mismatched_data_is_one_line_naming_the_fix(digits, tmp_path, make, args, message, in_process):
    path = make(digits, tmp_path)
    result = in_process(*args, "--data", path, "--out", tmp_path / "out", check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@given(shape=st.sampled_from([(h, 784 // h) for h in range(1, 785) if 784 % h == 0]))
@settings(max_examples=25, deadline=None)
def test_images_of_the_right_pixel_count_but_another_shape_are_refused(shape):
    from vae_zoo.data.shapes import check_image_shape, image_shape

    expected = image_shape("mnist-z2", 784)
    assert expected == (28, 28) and image_shape("frey-z20", 560) == (28, 20)
    if shape == expected:
        check_image_shape("digits/", shape, expected, "mnist-z2")
    else:
        with pytest.raises(InvalidArgumentError, match=f"digits/: images {shape[0]} high x {shape[1]} wide; "
                                                       "mnist-z2 takes 28 high x 28 wide"):
            check_image_shape("digits/", shape, expected, "mnist-z2")
    check_image_shape("rows.npy", None, expected, "mnist-z2")  # flat rows: only the pixel count is known


@given(shape=st.tuples(st.integers(1, 64), st.integers(1, 64)).filter(lambda s: s[0] * s[1] != 784))
@settings(max_examples=25, deadline=None)
def test_images_of_another_pixel_count_are_told_so_not_that_the_counts_match(shape):
    from vae_zoo.data.shapes import check_image_shape

    with pytest.raises(InvalidArgumentError) as info:
        check_image_shape("digits/", shape, (28, 28), "mnist-z2")
    message = str(info.value)
    assert f"{shape[0] * shape[1]:,} pixels per image where the model takes 784" in message
    assert "match" not in message and "\n" not in message


def test_transposed_faces_do_not_fine_tune_frey(tmp_path, in_process):
    from vae_zoo import data

    faces = np.round(data.load("frey", "train")[:150] * 255).astype(np.uint8).reshape(-1, 28, 20)
    folder = write_pngs(tmp_path / "faces", faces.transpose(0, 2, 1))  # 28 wide x 20 high
    result = in_process("finetune", "frey-z20", "--data", folder, "--out", tmp_path / "out", check=False)
    assert result.returncode == 2 and ": images 20 high x 28 wide; frey-z20 takes 28 high x 20 wide (the " \
        "same images turned by 90 degrees?)" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def one_epoch(digits, tmp_path_factory):
    """A fresh 784-16-2 model trained for one epoch on 300 digits (the run to resume)."""
    root = tmp_path_factory.mktemp("identity")
    np.save(root / "digits.npy", digits)
    np.save(root / "other.npy", digits[::-1].copy())  # the same size, other rows
    run_cli("train", "--data", root / "digits.npy", "--binarize", "--latent-dim", "2", "--hidden", "16",
            "--epochs", "1", "--out", root / "mine", "--workdir", root / "runs")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("change, field", [
    ({"--data": "other.npy"}, "data_sha256"),
    ({"--holdout": "0.2"}, "split"),
    ({"--latent-dim": "3"}, "architecture"),
    ({"--hidden": "32"}, "architecture"),
])
def test_a_resume_with_another_identity_is_refused_naming_each_difference(one_epoch, in_process, tmp_path, change,
                                                                          field):
    import shutil

    root = tmp_path / "r"
    shutil.copytree(one_epoch, root)
    args = {"--data": "digits.npy", "--latent-dim": "2", "--hidden": "16", **change}
    flags = [x for k, v in args.items() for x in (k, root / v if k == "--data" else v)]
    before = (root / "runs" / "mine" / "checkpoint" / "state.json").read_text()
    # The run folder is keyed by --out's name: the same name finds the first run's checkpoint.
    result = in_process("train", *flags, "--binarize", "--epochs", "2", "--resume", "--out", tmp_path / "mine",
                        "--workdir", root / "runs", check=False)
    assert result.returncode == 2 and "belongs to another run" in result.stderr and field in result.stderr
    assert "--resume" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (root / "runs" / "mine" / "checkpoint" / "state.json").read_text() == before
    assert not (tmp_path / "mine").exists()


def _forged_npy(shape) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    buffer.write(np.zeros(784 * 5, np.uint8).tobytes())  # far fewer bytes than the header declares
    return buffer.getvalue()


@given(rows=st.integers(10**6, 10**12), container=st.sampled_from(["npy", "npz"]))
@settings(max_examples=20, deadline=None)
def test_a_forged_header_is_refused_before_anything_is_allocated(tmp_path_factory, rows, container):
    import zipfile

    path = tmp_path_factory.mktemp("forged") / f"x.{container}"
    if container == "npy":
        path.write_bytes(_forged_npy((rows, 28, 28)))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x.npy", _forged_npy((rows, 28, 28)))
    with pytest.raises(InvalidArgumentError, match=str(path)) as caught:
        user_data.read(path)
    assert "GiB" in str(caught.value) or "cannot be read" in str(caught.value)


def test_an_array_file_reads_as_what_it_holds_whatever_its_suffix(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((5, 28, 28), np.uint8))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.zeros((5, 784), np.float32))
    (tmp_path / "b.npz").rename(tmp_path / "b.npy")
    assert user_data.read(tmp_path / "a.npz").x.shape == user_data.read(tmp_path / "b.npy").x.shape == (5, 784)


def test_an_image_too_large_to_be_a_vaes_is_refused_before_decoding(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    Image.new("L", (5000, 4000)).save(folder / "huge.png")  # 20 million pixels, a few KB on disk
    with pytest.raises(InvalidArgumentError, match="huge.png declares 5000x4000 pixels.*not decoded"):
        user_data.read(folder)


@pytest.mark.slow
def test_evaluate_and_reconstruct_measure_a_model_of_your_data_on_its_own_held_out_rows(one_epoch, in_process,
                                                                                       tmp_path):
    import shutil

    root = tmp_path / "r"
    shutil.copytree(one_epoch, root)
    card = json.loads((root / "mine" / "card.json").read_text())
    assert card["data"]["holdout"] == 0.1 and card["data"]["split_seed"] == 0
    # No --data: the held-out rows the card records (not the MNIST test set, which has the same pixel count).
    metrics = json.loads(in_process("evaluate", root / "mine", "--k", "5", "--quiet", "--json").stdout)
    assert metrics["n_test"] == 30 and "held-out rows of" in metrics["test_set"] and "digits.npy" in metrics["test_set"]
    assert "train_elbo_B" not in metrics and metrics["dataset"].endswith("digits.npy")
    result = in_process("reconstruct", root / "mine", "-n", "4", "-o", tmp_path / "r.png")
    assert "held-out rows of" in result.stdout and (tmp_path / "r.png").is_file()
    # --data: these images, binarized for the Bernoulli decoder.
    other = json.loads(in_process("evaluate", root / "mine", "--k", "0", "--data", root / "other.npy",
                                  "--json").stdout)
    assert other["n_test"] == 300 and "binarized with numpy default_rng" in other["test_set"]
    # The recorded data (the card names the fixture's file) changed or gone: refused in one line, never
    # another data set silently.
    recorded = one_epoch / "digits.npy"
    original = recorded.read_bytes()
    try:
        np.save(recorded, np.zeros((300, 28, 28), np.uint8))
        for command in (["evaluate", root / "mine", "--k", "0"],
                        ["reconstruct", root / "mine", "-o", tmp_path / "x.png"]):
            result = in_process(*command, check=False)
            assert result.returncode == 2 and "differs from the data" in result.stderr and "--data" in result.stderr
        recorded.unlink()
        result = in_process("evaluate", root / "mine", "--k", "0", check=False)
        assert result.returncode == 2 and "cannot be read now" in result.stderr and not (tmp_path / "x.png").exists()
    finally:
        recorded.write_bytes(original)


def test_a_zoo_preset_is_measured_on_your_images_with_data(digits, tmp_path, in_process):
    np.save(tmp_path / "d.npy", digits[:40])
    metrics = json.loads(in_process("evaluate", "mnist-z2", "--k", "0", "--data", tmp_path / "d.npy", "--json").stdout)
    assert metrics["n_test"] == 40 and "40 images of" in metrics["test_set"] and "train_elbo_B" not in metrics
    np.save(tmp_path / "small.npy", digits[:40, :14, :14])
    for path, message in ((tmp_path / "small.npy", "196 pixels per image but mnist-z2 takes 784"),):
        result = in_process("evaluate", "mnist-z2", "--k", "0", "--data", path, check=False)
        assert result.returncode == 2 and message in result.stderr
    result = in_process("evaluate", "mnist-z2", "--data", tmp_path / "d.npy", "--write-card", check=False)
    assert result.returncode == 2 and "--write-card records the card's own test data" in result.stderr


def test_score_embed_and_interpolate_your_images(digits, tmp_path, in_process):
    import csv

    folder = write_pngs(tmp_path / "pngs", digits[:24])
    result = in_process("score", "mnist-z2", "--data", folder, "-o", tmp_path / "s.csv", "--k", "40",
                        "--unusual", tmp_path / "u.png", "--top", "5", "--quiet")
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["name"] for r in rows] == [f"{i:04d}.png" for i in range(24)]
    assert sorted(int(r["rank"]) for r in rows) == list(range(1, 25))
    worst = min(rows, key=lambda r: float(r["log_px"]))
    assert worst["rank"] == "1" and worst["name"] in result.stdout and (tmp_path / "u.png").is_file()
    model = vae_zoo.load("mnist-z2")
    x = user_data.read(folder).x
    from vae_zoo import data  # the command binarizes grey levels with the test set's fixed seed

    log_px, se = model.score(data.binarize(x), num_samples=40, seed=0)
    np.testing.assert_allclose([float(r["log_px"]) for r in rows], log_px, atol=1e-3)
    # The standard error is the spread of the estimate over seeds (delta method, k = 40).
    spread = np.std([model.score(data.binarize(x[:8]), num_samples=40, seed=s)[0] for s in range(1, 16)], axis=0)
    ratio = spread.mean() / model.score(data.binarize(x[:8]), num_samples=40, seed=0)[1].mean()
    assert 0.4 < ratio < 2.5, ratio
    in_process("embed", "mnist-z2", "--data", folder, "-o", tmp_path / "z.npz")
    with np.load(tmp_path / "z.npz") as z:
        q = model.encode(x)
        np.testing.assert_allclose(z["z_mean"], q.mean(), atol=1e-5)
        np.testing.assert_allclose(z["z_var"], q.variance(), rtol=1e-5)
    in_process("interpolate", "mnist-z2", folder / "0000.png", folder / "0001.png", "--steps", "5",
               "-o", tmp_path / "i.png")
    path = model.interpolate(x[0], x[1], steps=5, images=True)
    assert path.shape == (5, 28, 28)
    np.testing.assert_allclose(path[[0, -1]].reshape(2, -1), model.reconstruct(x[:2]), atol=1e-5)
    assert Image.open(tmp_path / "i.png").size == (3 * (7 * 29 + 1), 3 * 30)


@pytest.mark.parametrize("args, message", [
    (["score", "mnist-z2", "--data", "{t}/small.npy", "-o", "{t}/s.csv"], "196 pixels per image but mnist-z2 takes"),
    (["score", "mnist-z2", "--data", "{t}/empty", "-o", "{t}/s.csv"], "holds no PNG or JPEG"),
    (["score", "mnist-z2", "--data", "{t}/pngs", "-o", "{t}/s.csv", "--k", "0"], "--k: must be a positive int"),
    (["score", "mnist-z2", "--data", "{t}/pngs", "-o", "{t}/s.txt"], "-o takes a .csv file"),
    (["score", "mnist-z2", "--data", "{t}/pngs", "-o", "{t}/pngs/s.csv"], "inside"),
    (["embed", "mnist-z2", "--data", "{t}/pngs", "-o", "{t}/z.csv"], "-o takes a .npz file"),
    (["interpolate", "mnist-z2", "{t}/pngs/0000.png", "{t}/broken.png", "-o", "{t}/i.png"], "cannot be read"),
    (["interpolate", "mnist-z2", "{t}/pngs/0000.png", "{t}/missing.png", "-o", "{t}/i.png"], "No image at"),
    (["interpolate", "mnist-z2", "{t}/pngs/0000.png", "{t}/wide.png", "-o", "{t}/i.png"], "one size"),
    (["interpolate", "frey-z2", "{t}/pngs/0000.png", "{t}/pngs/0001.png", "-o", "{t}/i.png"],
     "0001.png: images 28 high x 28 wide; frey-z2 takes 28 high x 20 wide. That is 784 pixels per image where the "
     "model takes 560"),
    (["interpolate", "mnist-z2", "{t}/pngs/0000.png", "{t}/pngs/0001.png", "--steps", "1", "-o", "{t}/i.png"],
     "at least 2"),
], ids=["size", "empty", "k", "csv", "inside", "npz", "unreadable", "missing", "mixed", "frey-shape", "steps"])
def test_score_embed_interpolate_refuse_bad_input_in_one_line_writing_nothing(digits, tmp_path, in_process, args,
                                                                              message):
    write_pngs(tmp_path / "pngs", digits[:4])
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "small.npy", digits[:4, :14, :14])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(np.zeros((28, 40), np.uint8), "L").save(tmp_path / "wide.png")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = in_process(*[a.format(t=tmp_path) for a in args], check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and sorted(p.name for p in tmp_path.rglob("*")) == before


def test_score_csv_reads_back_in_pandas_for_hostile_file_names(digits, tmp_path, in_process):
    import pandas as pd

    hostile = ["a,b.png", 'say "hi".png', "two\nlines.png", "=HYPERLINK(1).png", "-1.png", "cr\r.png"]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for name, image in zip(hostile, digits):
        Image.fromarray(image, "L").save(folder / name)
    in_process("score", "mnist-z2", "--data", folder, "-o", tmp_path / "s.csv", "--k", "8", "--quiet")
    frame = pd.read_csv(tmp_path / "s.csv", dtype={"name": str}, keep_default_na=False)
    assert list(frame.columns) == ["row", "name", "log_px", "standard_error", "rank"] and len(frame) == 6
    neutral = {name: "'" + name if name[0] in "=-" else name for name in hostile}
    assert sorted(frame["name"]) == sorted(neutral.values())
    assert sorted(frame["rank"]) == list(range(1, 7)) and (frame["log_px"] < 0).all()
    # the same names in embed's .npz, in the rows' order, and in --unusual's PNG, most unusual first
    in_process("embed", "mnist-z2", "--data", folder, "-o", tmp_path / "z.npz")
    with np.load(tmp_path / "z.npz", allow_pickle=False) as z:
        assert z["names"].tolist() == sorted(hostile) and z["z_mean"].shape == (6, 2)
    in_process("score", "mnist-z2", "--data", folder, "-o", tmp_path / "s2.csv", "--k", "8", "--quiet",
               "--unusual", tmp_path / "odd.png", "--top", "3")
    with Image.open(tmp_path / "odd.png") as image:
        shown = json.loads(image.text["vae-zoo rows"])
    worst = frame.sort_values("rank")["row"][:3]
    assert shown == [sorted(hostile)[i] for i in worst]


def test_a_single_image_is_data_of_one_row(digits, tmp_path, in_process):
    image = write_pngs(tmp_path / "pngs", digits[:1]) / "0000.png"
    result = in_process("score", "mnist-z2", "--data", image, "-o", tmp_path / "s.csv", "--k", "8", "--quiet")
    assert "Wrote the log p(x) of 1 image to" in result.stdout and "0000.png" in (tmp_path / "s.csv").read_text()
    in_process("embed", "mnist-z2", "--data", image, "-o", tmp_path / "z.npz")
    with np.load(tmp_path / "z.npz") as z:
        assert z["z_mean"].shape == (1, 2) and z["names"].tolist() == ["0000.png"]


def test_reconstruct_with_its_defaults_shows_all_of_a_small_folder(digits, tmp_path, in_process):
    folder = write_pngs(tmp_path / "pngs", digits[:6])
    result = in_process("reconstruct", "mnist-z2", "--data", folder, "-o", tmp_path / "r.png")
    assert "Wrote 6 images" in result.stdout and (tmp_path / "r.png").is_file()
    refused = in_process("reconstruct", "mnist-z2", "--data", folder, "-o", tmp_path / "r7.png", "-n", "7",
                         check=False)
    assert refused.returncode == 2 and "-n must be at most 6" in refused.stderr


def test_a_fine_tuned_card_is_reproduced_by_evaluating_its_held_out_rows(digits, tmp_path, in_process):
    """finetune measures the held-out rows binarized as evaluate and score binarize them: the card's
    log p(x) is what the same measurement on `evaluation_data` gives."""
    from vae_zoo.zoo.evaluation import evaluation_data

    folder = write_pngs(tmp_path / "mine", digits[:200])
    in_process("finetune", "mnist-z2", "--data", folder, "--out", tmp_path / "ft", "--epochs", "1", "--binarize",
               "--workdir", tmp_path / "runs")
    card = json.loads((tmp_path / "ft" / "card.json").read_text())
    ll = card["metrics"]["test_log_likelihood"]
    model = vae_zoo.load(tmp_path / "ft")
    chosen = evaluation_data(model, tmp_path / "ft")
    again = model.log_likelihood(chosen.x_test[:1000], num_samples=ll["k"], seed=card["recipe"]["seed"])
    assert ll["n"] == len(chosen.x_test) and round(float(again.mean()), 3) == ll["mean"]
    assert "default_rng(20131220)" in card["data"]["binarization"]


@pytest.mark.slow
def test_a_card_of_your_data_finds_its_data_from_any_folder(digits, tmp_path, in_process):
    """Trained with a relative --data path, the model is measured on its held-out rows from anywhere."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    np.save(work / "digits.npy", digits)
    in_process("train", "--data", "digits.npy", "--binarize", "--latent-dim", "2", "--hidden", "8", "--epochs", "1",
               "--out", "mine", "--workdir", "runs", cwd=work)
    card = json.loads((work / "mine" / "card.json").read_text())
    assert card["data"]["source"] == "digits.npy" and card["data"]["path"] == str(work / "digits.npy")
    metrics = json.loads(in_process("evaluate", work / "mine", "--k", "0", "--json", cwd=elsewhere).stdout)
    assert "held-out rows of" in metrics["test_set"] and metrics["n_test"] == 30
    (work / "digits.npy").rename(work / "mine" / ".." / "moved.npy")  # gone from where it was: refused, not guessed
    result = in_process("evaluate", work / "mine", "--k", "0", cwd=elsewhere, check=False)
    assert result.returncode == 2 and "cannot be read now" in result.stderr
