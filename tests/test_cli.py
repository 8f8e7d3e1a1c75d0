"""The `vae-zoo` console script, run as a user would (subprocesses), on a freshly trained model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = shutil.which("vae-zoo", path=str(Path(sys.executable).parent)) or "vae-zoo"


def vae_zoo(*args, cwd=None, check=True):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"vae-zoo {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """mnist-z2 trained for 2 epochs through the command line."""
    root = tmp_path_factory.mktemp("cli")
    result = vae_zoo("train", "mnist-z2", "--epochs", "2", "--lr", "0.002", "--workdir", root / "runs",
                     "--out", root / "presets")
    preset = root / "presets" / "mnist-z2"
    assert f"Saved preset to {preset}" in result.stdout
    epochs = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs == ["epoch 1/2", "epoch 2/2"], result.stdout  # every epoch of a short run is shown
    return root, preset


@pytest.mark.slow
def test_train_writes_a_preset_with_its_log(trained):
    root, preset = trained
    card = json.loads((preset / "card.json").read_text())
    assert card["training"]["epochs"] == 2 and card["recipe"]["learning_rate"] == 0.002
    assert card["training"]["command"] == "vae-zoo train mnist-z2 --epochs 2 --lr 0.002"
    assert [r["epoch"] for r in card["training"]["log"]] == [1, 2]
    assert "test_elbo" in card["training"]["log"][-1]
    state = json.loads((root / "runs" / "mnist-z2" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2


@pytest.mark.slow
def test_train_resume_continues_and_an_existing_run_is_not_clobbered(trained, tmp_path, in_process):
    root, _ = trained
    result = in_process("train", "mnist-z2", "--epochs", "2", "--workdir", root / "runs", "--out", tmp_path,
                        check=False)
    assert result.returncode == 2 and "--resume" in result.stderr and "Traceback" not in result.stderr
    result = in_process("train", "mnist-z2", "--epochs", "3", "--lr", "0.002", "--resume", "--workdir",
                        root / "runs", "--out", tmp_path)
    card = json.loads((tmp_path / "mnist-z2" / "card.json").read_text())
    assert [r["epoch"] for r in card["training"]["log"]] == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("command, size", [
    (["sample", "-n", "16"], (4 * 29 + 1, 4 * 29 + 1)),
    (["reconstruct", "-n", "8", "--pairs-per-row", "4"], (8 * 29 + 1, 2 * 29 + 1)),
    (["manifold", "--grid", "10"], (280, 280)),
])
def test_picture_commands_write_pngs(trained, tmp_path, command, size, in_process):
    _, preset = trained
    out = tmp_path / "out.png"
    in_process(command[0], preset, *command[1:], "-o", out)
    image = Image.open(out)
    assert image.size == (size[0] * 3, size[1] * 3) and image.mode == "L"


@pytest.mark.slow
def test_curves_plots_the_training_log(trained, tmp_path, in_process):
    root, preset = trained
    out = tmp_path / "curves.png"
    result = in_process("curves", preset, root / "runs" / "mnist-z2", "-o", out)
    assert "mnist-z2" in result.stdout and Image.open(out).size[0] > 500


@pytest.mark.slow
def test_evaluate_reports_both_estimators_and_log_likelihood(trained, in_process):
    _, preset = trained
    result = in_process("evaluate", preset, "--k", "20", "--n-test", "100", "--quiet", "--json")
    metrics = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert metrics["n_test"] == 100 and metrics["test_log_likelihood"]["k"] == 20
    assert metrics["test_log_likelihood"]["mean"] > metrics["test_elbo_B"]["mean"] - 1.0
    result = in_process("evaluate", preset, "--k", "20", "--write-card", check=False)
    assert result.returncode == 2 and "k=5000" in result.stderr


@pytest.mark.slow
def test_evaluate_ais_measures_the_first_test_images_as_the_estimator_does(trained, in_process, monkeypatch):
    import numpy as np

    from vae_zoo import load
    from vae_zoo.data import datasets
    from vae_zoo.estimators import marginal_likelihood
    from vae_zoo.zoo import evaluation

    _, preset = trained
    monkeypatch.setattr(evaluation, "AIS_SETTINGS", {"num_chains": 4, "num_steps": 20, "num_leapfrog_steps": 2})
    result = in_process("evaluate", preset, "--ais", "--n-test", "3", "--seed", "5", "--json")
    measured = json.loads(result.stdout[result.stdout.index("{"): result.stdout.rindex("}") + 1])
    x = datasets.test_set("mnist", True)[:3]
    values, acceptance, disagreement = marginal_likelihood.ais(load(preset), x, seed=5, **evaluation.AIS_SETTINGS)
    assert measured["n"] == 3 and measured["mean"] == round(float(np.mean(values)), 3)
    assert measured["flagged"] == int(np.sum(disagreement > marginal_likelihood.DISAGREEMENT_NATS))
    assert measured["standard_error"] > 0 and measured["acceptance"] == round(float(np.mean(acceptance)), 3)
    assert "stochastic lower bound" in measured["kind"] and "AIS: 3 of 3 images" in result.stdout
    for flags, message in ((["--n-test", "3"], "drop --n-test"), (["--seed", "5"], "drop --seed"),
                           (["--exact"], "two measurements")):
        refused = in_process("evaluate", preset, "--ais", "--write-card", *flags, check=False)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


@pytest.mark.slow
def test_export_command_and_info(trained, tmp_path, in_process):
    _, preset = trained
    result = in_process("export", preset, "-o", tmp_path / "edge", "--format", "onnx", "--part", "decoder")
    assert "decoder.onnx" in result.stdout
    manifest = json.loads((tmp_path / "edge" / "manifest.json").read_text())
    assert [a["file"] for a in manifest["artifacts"]] == ["decoder.onnx"]
    result = in_process("export", preset, "-o", tmp_path / "edge", check=False)
    assert result.returncode == 2 and "overwrite" in result.stderr
    result = in_process("info", preset)
    assert "mnist-z2" in result.stdout and "weights     sha256" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["sample", "mnist-z21"], "Unknown preset 'mnist-z21'"),
    (["manifold", "frey-z5x"], "Unknown preset"),
    (["export", "mnist-z2", "-o", "x", "--format", "coreml"], "Unknown format"),
])
def test_user_mistakes_give_one_line_and_status_2(args, message, tmp_path, in_process):
    result = in_process(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_arguments_and_help():
    assert vae_zoo("train", "--epochs", "x", check=False).returncode == 2
    for command in ("list", "info", "train", "evaluate", "sample", "reconstruct", "manifold", "curves", "export",
                    "reproduce"):
        assert "usage: vae-zoo " + command in vae_zoo(command, "--help").stdout


@pytest.mark.slow
def test_missing_data_offline_is_one_line(trained, tmp_path):
    _, preset = trained
    env = {"VAE_ZOO_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    result = subprocess.run([SCRIPT, "reconstruct", str(preset), "-o", str(tmp_path / "r.png")],
                            capture_output=True, text=True, env={**os.environ, **env, "VAE_ZOO_OFFLINE": "1"})
    assert result.returncode == 2
    assert "mnist.npz" in result.stderr and "VAE_ZOO_DATA" in result.stderr and "Traceback" not in result.stderr


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "vae_zoo", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: vae-zoo" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("first, level", [  # the package, or a submodule, first; no level chosen, or "quiet"
    ("vae_zoo", None), ("vae_zoo.training.train", None), ("vae_zoo.training.train", "3")])
def test_importing_vae_zoo_in_python_prints_nothing_of_tensorflows_start_up(first, level):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": level} if level else {})
    code = f"import {first}, vae_zoo; m = vae_zoo.load('mnist-z2'); print(m.sample(1, seed=0).shape)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "(1, 784)"
    assert result.stderr == "", result.stderr


def test_commands_on_a_shipped_preset(tmp_path, in_process):
    vae_zoo = in_process
    listing = vae_zoo("list").stdout
    row = next(line for line in listing.splitlines() if line.startswith("mnist-z20 "))
    from vae_zoo.zoo import registry

    card = registry.read_card("mnist-z20")
    assert f"{card['metrics']['test_elbo_B']['mean']:.2f}" in row and "k=5000" in row
    info = vae_zoo("info", "mnist-z20").stdout
    assert "test log p(x)" in info and card["weights_sha256"] in info
    vae_zoo("sample", "mnist-z20", "-n", "8", "-o", tmp_path / "s.png")
    vae_zoo("reconstruct", "mnist-z20", "-n", "4", "-o", tmp_path / "r.png")
    assert Image.open(tmp_path / "s.png").size[0] > 100 and Image.open(tmp_path / "r.png").size[0] > 100
    result = vae_zoo("manifold", "mnist-z20", "-o", tmp_path / "m.png", check=False)
    assert result.returncode == 2 and "2-D latent space" in result.stderr


def test_own_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    from vae_zoo import cli
    from vae_zoo.cli import catalog
    from vae_zoo.core.errors import InvalidArgumentError

    def user_mistake(args):
        raise InvalidArgumentError("`n` must be a positive int. Received: n=-5")

    def bug(args):
        raise KeyError("a bug, not a user mistake")

    monkeypatch.setattr(catalog, "cmd_list", user_mistake)
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err.strip() == "vae-zoo list: error: `n` must be a positive int. Received: n=-5"
    monkeypatch.setattr(catalog, "cmd_list", bug)
    with pytest.raises(KeyError, match="a bug"):  # the console script prints its traceback, status 1
        cli.main(["list"])


BAD_FLAGS = [
    ["train", "frey-z2", "--epochs", "0"], ["train", "frey-z2", "--epochs", "-1"], ["train", "frey-z2", "--lr", "-1"],
    ["train", "frey-z2", "--lr", "nan"], ["train", "frey-z2", "--lr", "inf"], ["train", "frey-z2", "--batch-size", "0"],
    ["train", "frey-z2", "--samples", "0"], ["train", "frey-z2", "--seed", "-3"],
    ["train", "frey-z2", "--estimator", "C"],
    ["evaluate", "mnist-z2", "--k", "-1"], ["evaluate", "mnist-z2", "--n-test", "-190"],
    ["evaluate", "mnist-z2", "--n-test", "0"], ["evaluate", "mnist-z2", "--seed", "x"],
    ["evaluate", "mnist-z2", "--n-train", "0"], ["evaluate", "mnist-z2", "--n-train", "70000", "--k", "0"],
    ["sample", "mnist-z2", "-n", "-5"], ["sample", "mnist-z2", "-n", "0"], ["sample", "mnist-z2", "--seed", "1.5"],
    ["reconstruct", "mnist-z2", "-n", "-5"], ["reconstruct", "mnist-z2", "--pairs-per-row", "0"],
    ["manifold", "mnist-z2", "--grid", "0"], ["manifold", "mnist-z2", "--grid", "100000"],
    ["export", "mnist-z2", "-o", "out", "--format", "coreml"], ["export", "mnist-z2", "-o", "out", "--part", "head"],
    ["reconstruct", "mnist-z2", "-n", "20000"], ["evaluate", "mnist-z2", "--n-test", "20000", "--k", "0"],
    ["train", "frey-z2", "--resume", "--workdir", "no-runs"], ["sample", "no-such-preset"],
    ["reproduce", "figure4"], ["reproduce", "figure2", "--methods", "mcem"], ["reproduce", "figure2", "--nz", "7"],
    ["reproduce", "figure3", "--nz", "5"], ["reproduce", "figure3", "--samples", "0"],
    ["reproduce", "figure3", "--samples", "1.5e0"],
    ["reproduce", "figure3", "--n-train", "50"], ["reproduce", "figure2", "--dataset", "cifar"],
    ["reproduce", "figure2", "--n-train", "1000"], ["reproduce", "figure3", "--ml-samples", "-1"],
    ["reproduce", "figure2", "--plot-only"],
]


@pytest.mark.parametrize("args", BAD_FLAGS, ids=[" ".join(a) for a in BAD_FLAGS])
def test_every_bad_flag_value_is_one_line_status_2_and_writes_nothing(args, tmp_path, in_process):
    result = in_process(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "error:" in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_output_files_are_never_overwritten_without_asking(tmp_path, in_process):
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's file")
    for command in (["sample", "mnist-z2"], ["reconstruct", "mnist-z2"], ["manifold", "mnist-z2"],
                    ["curves", "mnist-z2"]):
        result = in_process(*command, "-o", mine, check=False)
        assert result.returncode == 2 and "--overwrite" in result.stderr
        assert mine.read_bytes() == b"the user's file"
    in_process("sample", "mnist-z2", "-n", "4", "-o", mine, "--overwrite")
    assert Image.open(mine).mode == "L"


@pytest.mark.slow
def test_a_diverging_run_stops_naming_the_step_and_writes_no_preset(tmp_path):
    result = vae_zoo("train", "frey-z2", "--epochs", "2", "--lr", "1e30", "--workdir", tmp_path / "runs",
                     "--out", tmp_path / "out", check=False)
    assert result.returncode == 2 and "Training diverged" in result.stderr and "at step" in result.stderr
    assert not (tmp_path / "out").exists()


def test_list_and_info_read_the_cards_without_starting_tensorflow(tmp_path):
    (tmp_path / "taken.png").write_bytes(b"mine")
    code = ("import sys, vae_zoo.cli; vae_zoo.cli.main(['list']); vae_zoo.cli.main(['info', 'mnist-z20']); "
            # an output file that is there is refused before TensorFlow starts, for every picture/file command
            f"codes = [vae_zoo.cli.main([*c, '-o', {str(tmp_path / 'taken.png')!r}]) for c in "
            "(['sample', 'mnist-z20'], ['manifold', 'mnist-z2'], ['reconstruct', 'mnist-z2'], "
            "['embed', 'mnist-z2', '--data', 'x.npy'], ['interpolate', 'mnist-z2', 'a.png', 'b.png'])]; "
            "assert codes == [2] * 5, codes; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mnist-z20" in result.stdout and "test log p(x)" in result.stdout
    assert result.stderr.count("taken.png exists") == 5 and (tmp_path / "taken.png").read_bytes() == b"mine"


@pytest.mark.parametrize("content", ["[]", "[1, 2]", "{}", '{"log": 3}', '{"log": [1]}', '{"log": [{"epoch": 1}]}',
                                     '{"log": [{"samples_seen": "a", "train_elbo": 1}]}', "not json", '"text"',
                                     '{"log": [{"samples_seen": 1, "train_elbo": 2, "test_elbo": null}]}'])
def test_curves_refuses_any_json_that_is_not_a_training_log_in_one_line(tmp_path, in_process, content):
    (tmp_path / "state.json").write_text(content)
    result = in_process("curves", tmp_path / "state.json", "-o", tmp_path / "c.png", check=False)
    assert result.returncode == 2 and ("training log" in result.stderr or "cannot be read as JSON" in result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "c.png").exists()


def test_interpolate_bounds_its_steps_before_any_work(tmp_path, in_process):
    result = in_process("interpolate", "mnist-z2", "a.png", "b.png", "--steps", "100000000", "-o",
                        tmp_path / "i.png", check=False)
    assert result.returncode == 2 and "1..1000" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["embed", "mnist-z2", "--data", "{t}/x.npy", "-o", "{t}/out.npz"],
                                     ["score", "mnist-z2", "--data", "{t}/x.npy", "-o", "{t}/out.npz"],
                                     ["sample", "mnist-z2", "-o", "{t}/out.npz"]])
def test_an_output_that_is_a_folder_or_under_a_file_is_refused_before_any_work(tmp_path, in_process, command):
    (tmp_path / "out.npz").mkdir()
    (tmp_path / "file").write_text("x")
    for target, message in ((tmp_path / "out.npz", "is a folder"), (tmp_path / "file" / "x.npz", "is a file")):
        args = [a.replace("{t}/out.npz", str(target)).replace("{t}", str(tmp_path)) for a in command]
        result = in_process(*args, "--overwrite", check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "out.npz").is_dir() and not any((tmp_path / "out.npz").iterdir())


def test_defaults_fit_small_data_and_say_so(capsys):
    from vae_zoo.cli.training import sized_to_data

    assert sized_to_data(54_000, None, None, 10) == (100, 10)  # large data: the plain defaults, silently
    assert capsys.readouterr().out == ""
    assert sized_to_data(180, None, None, 10) == (90, 250)  # two even batches; 500 updates
    assert "180 training images: batches of 90, 250 epochs (500 updates)" in capsys.readouterr().out
    assert sized_to_data(180, 100, 3, 10) == (100, 3)  # what the user chose stands


def test_samples_of_several_models_are_panels_side_by_side(in_process, tmp_path):
    from PIL import Image

    result = in_process("sample", "mnist-z2", "mnist-z5", "-n", "4", "-o", tmp_path / "figure5.png")
    assert "samples of mnist-z2, mnist-z5" in result.stdout
    with Image.open(tmp_path / "figure5.png") as picture:
        assert picture.width > 1.5 * picture.height  # two panels in a row
    taken = in_process("sample", "mnist-z2", "mnist-z5", "-o", tmp_path / "figure5.png", check=False)
    assert taken.returncode == 2 and "exists" in taken.stderr
