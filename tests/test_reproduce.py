"""`vae-zoo reproduce`: the paper's figures end to end with tiny budgets, exact resume after a
SIGKILL, the figure's layout, and the bookkeeping (rounds, measuring points, tables)."""

import json
import os
import signal
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from vae_zoo.core.errors import InvalidArgumentError, OutputExistsError
from vae_zoo.paper import reproduce, viz

# The smallest App. D settings whose points pass the gate (5 burn-in steps and 5 samples gave log p(x) > 0).
# A fixed step size: the selection runs are tested on their own below.
TINY_FIGURE3 = ["reproduce", "figure3", "--n-train", "200", "--samples", "1000", "--eval-points", "50",
                "--ml-samples", "20", "--ml-burnin", "40", "--ml-leapfrog", "2", "--lr", "0.02", "--quiet"]


def test_rounds_and_measuring_points():
    assert reproduce.rounds(500) == [500]
    assert reproduce.rounds(10**7) == [10**6, 10**7]
    assert reproduce.rounds(3 * 10**7) == [10**6, 10**7, 3 * 10**7]
    epochs = reproduce.evaluation_epochs(60_000, 170)  # MNIST: epoch 1 is 6e4 samples, 170 epochs ~ 1e7
    assert min(epochs) == 1 and max(epochs) == 170
    samples = sorted(e * 60_000 for e in epochs)
    for decade in (10**5, 10**6):  # about 4 per decade
        assert 3 <= sum(decade <= s < 10 * decade for s in samples) <= 5, samples
    assert round(10**6 / 60_000) in epochs  # 1e6 samples is measured (the tables compare there)


def test_curves_are_the_papers_and_refuse_what_a_figure_lacks():
    fig2 = reproduce.curves("figure2")
    assert len(fig2) == 2 * (5 + 4)
    assert {(c.dataset, c.hidden_units) for c in fig2} == {("mnist", 500), ("frey", 200)}
    fig3 = reproduce.curves("figure3")
    assert {(c.latent_dim, c.hidden_units, c.n_train, c.method) for c in fig3} == {
        (3, 100, n, m) for n in (1000, 50_000) for m in ("aevb", "wake-sleep", "mcem")}
    assert [c.name for c in reproduce.curves("figure2", ["frey"], [5], None, ["aevb"])] == ["frey-n1765-z5-aevb"]
    for kwargs, message in [({"latent_dims": [7]}, "N_z = 7"), ({"methods": ["mcem"]}, "mcem"),
                            ({"datasets": ["cifar"]}, "cifar"), ({"n_train": [1000]}, "--n-train")]:
        with pytest.raises(InvalidArgumentError, match=message):
            reproduce.curves("figure2", **kwargs)
    with pytest.raises(InvalidArgumentError, match="figure"):
        reproduce.curves("figure4")


def test_step_size_selection_takes_the_best_training_number_of_the_grid_once(tmp_path, monkeypatch):
    from vae_zoo.core.errors import TrainingError

    calls = []
    numbers = {0.01: -130.0, 0.02: -120.5, 0.1: None}  # 0.1 diverges

    def fake_fit(curve, settings, lr, epochs, directory, evaluate_at, verbose):
        calls.append((lr, epochs, directory.name))
        assert evaluate_at(epochs)  # the selection point is measured
        if numbers[lr] is None:
            raise TrainingError("Training diverged: the loss is nan at step 40.")
        return {"log": [{"epoch": epochs, "train": numbers[lr], "test": numbers[lr] - 1}]}

    monkeypatch.setattr(reproduce, "_fit", fake_fit)
    curve = reproduce.curves("figure3", n_train=[1000], methods=["aevb"])[0]
    settings = reproduce.Settings("figure3", selection_updates=500)
    selection = reproduce.select_step_size(curve, settings, tmp_path)
    # Adagrad's 101 warm-up updates + 500, at 10 updates per epoch: 61 epochs, each step size in its folder.
    assert calls == [(0.01, 61, "lr-0.01"), (0.02, 61, "lr-0.02"), (0.1, 61, "lr-0.1")]
    assert selection["chosen"] == 0.02 and selection["train"] == {"0.01": -130.0, "0.02": -120.5, "0.1": None}
    assert "diverged" in selection["failed"]["0.1"] and selection["samples"] == 61_000
    assert reproduce.select_step_size(curve, settings, tmp_path) == selection and len(calls) == 3  # decided once
    # Batch MCEM makes 5 updates per pass over its 1,000 examples: 121 passes.
    mcem = reproduce.curves("figure3", n_train=[1000], methods=["mcem"])[0]
    assert mcem.batch_size == 1000 and reproduce.selection_epochs(mcem, settings) == 121
    numbers.update({0.01: None, 0.02: None})
    with pytest.raises(TrainingError, match="every step size"):
        reproduce.select_step_size(mcem, settings, tmp_path)


@pytest.mark.slow
def test_step_size_selection_runs_the_grid_and_continues_the_winner(tmp_path):
    out = reproduce.run("figure2", tmp_path / "o", tmp_path / "w", 3400, {"datasets": ["frey"], "latent_dims": [2],
                        "methods": ["aevb"]}, {"eval_points": 100, "selection_updates": 20})
    curve = out["curves"]["frey-n1765-z2-aevb"]
    selection = curve["step_size_selection"]
    assert set(selection["train"]) == {"0.01", "0.02", "0.1"} and selection["epochs"] == 8  # (101 + 20) / 17
    finite = {float(lr): v for lr, v in selection["train"].items() if v is not None}
    assert curve["learning_rate"] == selection["chosen"] == max(finite, key=finite.get)
    assert curve["samples"] == 8 * 1700 and curve["updates_per_sample"] == 0.01  # the selection run, continued
    (work,) = (tmp_path / "w").iterdir()
    assert work.name.startswith("figure2-")
    assert sorted(p.name for p in (work / "frey-n1765-z2-aevb").iterdir()) == [
        "lr-0.01", "lr-0.02", "lr-0.1", "step_size.json"]


def _results(curves):
    return {"figure": "figure3", "metric": "marginal_likelihood", "settings": {}, "curves": {
        name: {"dataset": "mnist", "latent_dim": 3, "n_train": n, "method": m, "samples": pts[-1][0],
               "wall_seconds": 60.0, "points": [{"samples": s, "train": tr, "test": te} for s, tr, te in pts]}
        for name, n, m, pts in curves}}


def test_table_says_who_is_ahead_at_1e6_and_at_the_end(tmp_path):
    results = _results([
        ("a", 1000, "aevb", [(10**5, -200, -201), (10**6, -150, -160), (10**7, -140, -170)]),
        ("w", 1000, "wake-sleep", [(10**5, -210, -211), (10**6, -170, -171), (10**7, -150, -165)]),
    ])
    rows = reproduce.table(results).splitlines()
    assert len(rows) == 4 and rows[2].startswith("| mnist | 3 | 1,000 | aevb | -150.00 | -160.00 |")
    assert rows[2].endswith("| aevb / wake-sleep @ 1e+07 |")  # by the test numbers: AEVB early, wake-sleep late
    viz.plot_figure(results, tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").size[0] > 300
    short = _results([("a", 1000, "aevb", [(10**5, -200, -201)]), ("w", 1000, "wake-sleep", [(10**5, -1, -1)])])
    assert "| - | - |" in reproduce.table(short)  # not run to 1e6: no comparison there
    uneven = _results([("a", 1000, "aevb", [(10**6, -150, -150), (10**7, -100, -100)]),
                       ("w", 1000, "wake-sleep", [(10**6, -140, -140)])])
    assert reproduce.table(uneven).splitlines()[2].endswith("| wake-sleep / wake-sleep @ 1e+06 |")


def _weights(workdir):
    """Each curve's weights and optimizer state. The tiny budget ends inside Adagrad's warm-up
    (the weights stay at their start), so the accumulated squared gradients and the step count
    are what show a resume that skipped or repeated steps."""
    def state(model):
        return model.get_weights() + [v.numpy() for v in model.optimizer.variables]

    return {d.parent.name: state(keras.saving.load_model(d / "checkpoint" / "model.keras"))
            for d in sorted(workdir.glob("figure3-*/*/lr-*"))}


@pytest.mark.slow
def test_app_d_version_4_measures_four_chains_and_records_their_disagreement(tmp_path):
    # Version 2 (the published figure) measures one chain per image (its points carry no flags: the
    # end-to-end test below); version 4 four chains from distinct posterior modes, each point
    # recording its flagged images and largest disagreement.
    results = reproduce.run("figure3", tmp_path / "o", tmp_path / "w", 200, {"n_train": [200], "methods": ["aevb"]},
                            {"learning_rate": 0.02, "eval_points": 50, "ml_samples": 20, "ml_burnin": 40,
                             "ml_leapfrog": 2, "ml_estimator": 4})
    (point,) = results["curves"]["mnist-n200-z3-aevb"]["points"]
    for split in ("train", "test"):
        assert 0 <= point[f"{split}_flagged"] <= 50 and point[f"{split}_max_disagreement"] >= 0
        assert (point[f"{split}_flagged"] > 0) == (point[f"{split}_max_disagreement"] > 0.5)
    assert len({reproduce.Settings("figure3", ml_estimator=v).key for v in (2, 4)}) == 2  # never continued


@pytest.mark.slow
def test_figure3_end_to_end_resumes_after_sigkill_with_the_same_result(tmp_path, in_process, monkeypatch,
                                                                       forked_cli):
    def command(*args):  # the command in this interpreter, as the console script runs it (sys.argv recorded)
        monkeypatch.setattr(sys, "argv", ["vae-zoo", *map(str, args)])
        return in_process(*args)

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    result = command(*TINY_FIGURE3, "--workdir", straight / "w", "--out", straight / "o")
    assert "| mnist | 3 | 200 | mcem |" in result.stdout
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [*TINY_FIGURE3, "--workdir", killed / "w", "--out", killed / "o"]
    process = forked_cli.start(args, env=env)  # a process of its own, to SIGKILL
    # The work folder is keyed by the run's settings.
    key = reproduce.Settings("figure3", learning_rate=0.02, eval_points=50, ml_samples=20, ml_burnin=40,
                             ml_leapfrog=2).key
    state = killed / "w" / key / "mnist-n200-z3-wake-sleep" / "lr-0.02" / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # in the middle of the second curve
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be interrupted"
    assert json.loads(state.read_text())["epoch"] < 5
    command(*args)  # the same command continues (the killed run was a process of its own)
    a, b = (json.loads((d / "o" / "figure3.json").read_text()) for d in (straight, killed))
    def measured(points):  # the points without the time their measurement took
        return [{k: v for k, v in p.items() if k != "measure_seconds"} for p in points]

    for name, curve in a["curves"].items():
        assert measured(curve["points"]) == measured(b["curves"][name]["points"]), name
        for point in curve["points"]:  # every point carries its diagnostics, and passed the gate
            assert point["train_nonfinite"] == point["test_nonfinite"] == 0 and point["measure_seconds"] > 0
            assert point["test"] <= 0 and abs(point["test_acceptance"] - 0.9) <= 0.05, (name, point)
            assert point["test_median"] <= 0 and point["train_se"] > 0 and point["test_se"] > 0
            assert not any(k.endswith(("_flagged", "_max_disagreement")) for k in point)  # one chain: no flags
    assert sorted(a["curves"]) == [f"mnist-n200-z3-{m}" for m in ("aevb", "mcem", "wake-sleep")]
    assert a["command"] == "vae-zoo " + " ".join(map(str, [*TINY_FIGURE3, "--workdir", straight / "w", "--out",
                                                            straight / "o"]))
    resumed = _weights(killed / "w")
    for name, weights in _weights(straight / "w").items():
        assert len(weights) == len(resumed[name]) and any(np.any(v != 0) for v in weights[-3:]), name
        for x, y in zip(weights, resumed[name], strict=True):
            np.testing.assert_array_equal(x, y)
    assert Image.open(straight / "o" / "figure3.png").mode in ("RGBA", "RGB")
    # Other settings in the same results folder are refused, not mixed in.
    with pytest.raises(OutputExistsError, match="--overwrite"):
        reproduce.run("figure3", straight / "o", straight / "w", 1000, {"n_train": [200]},
                      {"eval_points": 60, "ml_samples": 5, "ml_burnin": 5, "ml_leapfrog": 2})


@pytest.mark.slow
def test_figure2_end_to_end_with_a_tiny_budget(tmp_path, in_process, monkeypatch):
    written = []  # what the results file held each time it was written: {curve: its points' samples}
    plot = viz.plot_figure

    def plot_and_note(results, path, **kwargs):
        written.append({name: [p["samples"] for p in c["points"]] for name, c in results["curves"].items()})
        return plot(results, path, **kwargs)

    monkeypatch.setattr(viz, "plot_figure", plot_and_note)
    args = ["reproduce", "figure2", "--dataset", "frey", "--nz", "2", "--samples", "3400", "--eval-points", "100",
            "--lr", "0.02", "--workdir", tmp_path / "w", "--out", tmp_path / "o"]
    monkeypatch.setattr(sys, "argv", ["vae-zoo", *map(str, args)])  # as the console script records it
    result = in_process(*args)
    results = json.loads((tmp_path / "o" / "figure2.json").read_text())
    assert sorted(results["curves"]) == ["frey-n1765-z2-aevb", "frey-n1765-z2-wake-sleep"]
    for curve in results["curves"].values():
        assert curve["samples"] == 3400 and [p["samples"] for p in curve["points"]] == [1700, 3400]
        assert all(np.isfinite([p["train"], p["test"]]).all() for p in curve["points"])
        for p in curve["points"]:  # the spread over the 100 images beside every mean
            assert p["train_se"] > 0 and p["test_se"] > 0 and np.isfinite([p["train_median"], p["test_median"]]).all()
        assert curve["command"] == "vae-zoo " + " ".join(map(str, args))
    # Published after every measured point, not only when a curve ends: a long run shows how far it got.
    assert {"frey-n1765-z2-aevb": [1700]} in written
    assert {"frey-n1765-z2-aevb": [1700, 3400], "frey-n1765-z2-wake-sleep": [1700]} in written
    assert "| frey | 2 | 1,765 | aevb |" in result.stdout
    assert Image.open(tmp_path / "o" / "figure2.png").size[0] > 300


@pytest.mark.parametrize("point, message", [
    ({"samples": 6000, "train": -202.4, "test": 37.76, "train_acceptance": 0.9, "test_acceptance": 0.9},
     "mcem at 6,000 samples: the test log p.x. = 37.76 > 0 is impossible"),
    ({"samples": 10_000, "train": -200.0, "test": float("nan"), "train_acceptance": 0.9, "test_acceptance": 0.9},
     "at 10,000 samples: the test estimate is not finite"),
    ({"samples": 10_000, "train": -200.0, "test": -201.0, "test_nonfinite": 1, "train_acceptance": 0.9,
      "test_acceptance": 0.9}, "1 images non-finite"),
    ({"samples": 10_000, "train": -200.0, "test": -201.0, "train_acceptance": 0.73, "test_acceptance": 0.9},
     "train HMC acceptance 0.730 is not within 0.05 of its target 0.9"),
])
def test_an_impossible_or_badly_measured_point_is_an_error_naming_curve_and_point(point, message):
    from vae_zoo.core.errors import EstimateError

    with pytest.raises(EstimateError, match=message):
        reproduce.check_point("mnist-n1000-z3-mcem", point, binary=True, metric="marginal_likelihood")
    reproduce.check_point("frey-n1765-z2-aevb", {"samples": 1, "train": 600.0, "test": 590.0}, False, "bound")


def test_a_rerun_from_the_seed_never_shortens_a_published_curve_and_says_how_it_compares():
    def record(samples, values, lr=0.02):
        return {"learning_rate": lr, "samples": samples[-1],
                "points": [{"samples": n, "train": v, "test": v - 1} for n, v in zip(samples, values)]}

    published = record([10, 100, 1000], [-150.0, -130.0, -120.0])
    shorter = reproduce.merged(published, record([10, 100], [-150.0, -130.5]))
    assert shorter["points"] == published["points"]
    assert shorter["rerun_check"] == {"points": 2, "rerun_samples": 100, "rerun_learning_rate": 0.02,
                                      "max_abs_difference": 0.5}
    longer = reproduce.merged(published, record([10, 100, 1000, 10000], [-150.0, -130.0, -120.0, -110.0]))
    assert longer["samples"] == 10000 and longer["rerun_check"]["max_abs_difference"] == 0.0
    other_step = reproduce.merged(published, record([10], [-160.0], lr=0.01))
    assert other_step["points"] == published["points"] and other_step["rerun_check"]["points"] == 0
    assert reproduce.merged(None, record([10], [-1.0]))["samples"] == 10
    # A rerun of equal length does not replace the published curve; one that goes further and differs
    # keeps what it replaced, and every later check still compares with the first published run.
    differing = record([10, 100, 1000], [-150.0, -131.0, -121.0])
    assert reproduce.merged(published, differing)["points"] == published["points"]
    # Unless its points carry the standard errors the published points lack: every point needs its own.
    with_errors = {**differing, "points": [{**p, "train_se": 0.3, "test_se": 0.4} for p in differing["points"]]}
    replacing = reproduce.merged(published, with_errors)
    assert replacing["points"] == with_errors["points"] and replacing["replaced"]["points"] == published["points"]
    assert reproduce.merged(replacing, with_errors) == {**replacing, "rerun_check": replacing["rerun_check"]}
    first = reproduce.merged(published, record([10, 100, 1000, 10000], [-150.0, -131.0, -121.0, -111.0]))
    assert first["samples"] == 10000 and first["replaced"]["points"] == published["points"]
    later = reproduce.merged(first, record([10, 100, 1000, 10000, 20000], [-150.0, -131.0, -121.0, -111.0, -105.0]))
    assert later["samples"] == 20000 and later["replaced"]["points"] == published["points"]
    assert later["rerun_check"] == {"points": 3, "rerun_samples": 20000, "rerun_learning_rate": 0.02,
                                    "max_abs_difference": 1.0}


def test_a_published_point_a_rerun_reproduces_gains_the_reruns_standard_errors_and_medians():
    def record(values, extra=None, lr=0.02):
        return {"learning_rate": lr, "samples": 10 ** len(values),
                "points": [{"samples": 10 ** (i + 1), "train": v, "test": v - 1, **(extra or {})}
                           for i, v in enumerate(values)]}

    published = record([-150.0, -130.0, -120.0])
    extra = {"train_se": 0.4, "test_se": 0.9, "train_median": -119.0, "test_median": -121.0}
    rerun = record([-150.0, -130.5], extra)
    points = reproduce.merged(published, rerun)["points"]
    assert points[0] == {**published["points"][0], **extra}  # reproduced exactly: completed
    assert points[1:] == published["points"][1:]  # differs (or not rerun yet): as published
    assert reproduce.merged(published, record([-150.0], extra, lr=0.01))["points"] == published["points"]
    with_nan = reproduce.image_statistics("test", np.array([1.0, 3.0, np.nan]))
    assert np.isnan(with_nan.pop("test")) and with_nan == {"test_se": 0.707, "test_median": 2.0}
    stats = reproduce.image_statistics("test", np.array([1.0, 3.0, 8.0]))
    assert stats == {"test": 4.0, "test_se": 1.7, "test_median": 3.0}
    assert reproduce.image_statistics("test", np.array([2.0])) == {"test": 2.0, "test_median": 2.0}
