"""The paper's comparisons, one command per figure (section 5).

- Figure 2: AEVB against wake-sleep, the lower bound per datapoint (estimator B, L = 1, with
  each method's recognition model as q) on train and test data against training samples
  evaluated; MNIST (500 hidden units) with N_z in {3, 5, 10, 20, 200} and Frey Face (200 hidden
  units) with N_z in {2, 5, 10, 20}.
- Figure 3: AEVB, wake-sleep and Monte Carlo EM on MNIST with 100 hidden units and N_z = 3,
  trained on the first N = 1,000 or 50,000 training images; the marginal log-likelihood of App. D
  (`marginal_likelihood.app_d`) on the first 1,000 training and test images, with its diagnostics
  (acceptance, median, non-finite count, time) beside every point; an impossible point is an error.
  MCEM is the batch form ("not an on-line algorithm"): per pass over the data one HMC transition of
  every chain, then 5 full-batch weight updates; "mcem-online" (per minibatch of 100) is available
  beside it.

Every method trains with the paper's recipe (the author's Adagrad, M = 100, L = 1, N(0, I) parameter
prior, initial weights ~ N(0, 0.01)) from the same seed, through `training.fit_with_checkpoints`, so
each curve checkpoints and resumes exactly. The Adagrad step size is chosen per curve as the paper
did: short runs at 0.01, 0.02 and 0.1, and the best training-set number after `selection_updates`
weight updates (past Adagrad's warm-up) wins and continues; the three numbers and the choice are in
the curve's record. A run goes in rounds (10^6 samples per curve, then 10^7, ..., then the budget),
so an interrupted figure has comparable coverage of all its curves; rerunning the command continues
where it stopped, and a larger `--samples` extends the curves. The curves go to OUT/STEM.json (each
with the command that trains it) and OUT/STEM.png after every measured point, STEM being the
figure's name (and the initial scale when it is not the paper's, e.g. figure2-init-std-0.1).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vae_zoo.core.errors import EstimateError, OutputExistsError, TrainingError
from vae_zoo.core.io import atomic_write_text, exclusive_lock, read_json_object
from vae_zoo.core.summaries import mean_and_se
from vae_zoo.core.validation import check_choice, check_positive_float, check_positive_int, check_seed
from vae_zoo.data import datasets as data_lib
from vae_zoo.estimators import marginal_likelihood
from vae_zoo.model.recipes import ADAGRAD_WARMUP, RECIPES
from vae_zoo.paper import viz
from vae_zoo.paper.figures import (
    FIGURES,
    METHODS,
    STEP_SIZES,
    Curve,
    Settings,
    curves,
    evaluation_epochs,
    rounds,
)
from vae_zoo.training.train import build_model, fit_with_checkpoints, has_checkpoint

# App. D's step sizes adapt toward this acceptance; a published point is within ACCEPTANCE_TOLERANCE of it.
TARGET_ACCEPT, ACCEPTANCE_TOLERANCE = 0.9, 0.05


def check_point(curve: str, point: dict, binary: bool, metric: str) -> None:
    """Refuses a measured point that cannot be true or was not measured as stated.

    Raises:
        EstimateError: a non-finite value, a log p(x) > 0 of binary data, or (marginal likelihood)
            an HMC acceptance more than ACCEPTANCE_TOLERANCE from TARGET_ACCEPT; names the curve
            and the point.
    """
    where = f"{curve} at {point['samples']:,} samples" if "samples" in point else curve
    for split in ("train", "test"):
        value = point[split]
        if not math.isfinite(value) or point.get(f"{split}_nonfinite", 0):
            raise EstimateError(f"{where}: the {split} estimate is not finite ({value}; "
                                f"{point.get(f'{split}_nonfinite', 0):.0f} images non-finite). Nothing was written.")
        if binary and value > 0:
            raise EstimateError(f"{where}: the {split} log p(x) = {value:.2f} > 0 is impossible for binary data "
                                "(p(x) <= 1). Nothing was written.")
        acceptance = point.get(f"{split}_acceptance")
        if metric == "marginal_likelihood" and abs(acceptance - TARGET_ACCEPT) > ACCEPTANCE_TOLERANCE:
            raise EstimateError(f"{where}: the {split} HMC acceptance {acceptance:.3f} is not within "
                                f"{ACCEPTANCE_TOLERANCE} of its target {TARGET_ACCEPT}; raise --ml-burnin. "
                                "Nothing was written.")


def image_statistics(name: str, values: np.ndarray) -> dict:
    """Per-image values -> `name` (their mean), `name_se` (its standard error over the images) and
    `name_median`, both over the finite values (the mean is not finite if any value is not; a
    standard error needs two values)."""
    finite = values[np.isfinite(values)]
    out = {name: float(np.mean(values))}
    if len(finite) > 1:
        out[f"{name}_se"] = mean_and_se(finite)["standard_error"]
    if len(finite):
        out[f"{name}_median"] = float(np.median(finite))
    return out


def _measure(curve: Curve, settings: Settings):
    """model -> the figure's metric on the curve's train and test data, with its diagnostics:
    `train`, `test` (means over images) with `*_se` (their standard errors over the images) and
    `*_median`; for the marginal likelihood also `*_acceptance` (mean HMC acceptance over chains),
    `*_nonfinite` (images whose estimate is not finite) and `measure_seconds`."""
    binary = curve.dataset == "mnist"
    x_train = data_lib.load(curve.dataset, "train")[: min(curve.n_train, settings.eval_points)]
    x_train = data_lib.binarize(x_train, settings.seed) if binary else x_train
    x_test = data_lib.test_set(curve.dataset, binary)[: settings.eval_points]
    spec = FIGURES[settings.figure]
    # App. D's version 2 (the published Figure 3) runs one chain per image; later versions
    # several, with their disagreement beside every point.
    chains = 1 if settings.ml_estimator <= 2 else marginal_likelihood.APP_D_CHAINS

    def measure(model) -> dict:
        if spec.metric == "bound":
            out = {}
            for name, x in (("train", x_train), ("test", x_test)):
                out.update(image_statistics(name, np.asarray(model.elbo(x, "B", 1, seed=settings.seed))))
            return out
        start, out = time.perf_counter(), {}
        for name, x in (("train", x_train), ("test", x_test)):
            estimate = marginal_likelihood.app_d(
                model, x, settings.ml_samples, settings.ml_burnin, settings.ml_leapfrog, seed=settings.seed,
                batch_size=len(x), num_chains=chains)
            estimates = estimate.log_likelihood
            out.update(image_statistics(name, estimates))
            out.update({f"{name}_acceptance": float(np.mean(estimate.acceptance)),
                        f"{name}_nonfinite": int(np.sum(~np.isfinite(estimates)))})
            if chains > 1:
                out.update({f"{name}_flagged": len(marginal_likelihood.flagged(estimate)),
                            f"{name}_max_disagreement": float(np.max(estimate.disagreement))})
        out["measure_seconds"] = time.perf_counter() - start
        check_point(curve.name, out, binary, spec.metric)
        return out

    return measure


def _fit(curve: Curve, settings: Settings, learning_rate: float, epochs: int, directory: Path, evaluate_at,
         verbose: bool, after_evaluation=None) -> dict:
    """Trains (or continues) `curve` at `learning_rate` to `epochs` in `directory`; returns its state
    (`after_evaluation(state)` runs after every measured point, see `fit_with_checkpoints`)."""
    x_train = data_lib.load(curve.dataset, "train")[: curve.n_train]
    recipe = RECIPES["paper"].replace(epochs=epochs, seed=settings.seed, learning_rate=learning_rate,
                                      init_stddev=settings.init_std, batch_size=curve.batch_size,
                                      steps_per_execution=min(50, curve.n_train // curve.batch_size))
    architecture = dict(input_dim=data_lib.DATASETS[curve.dataset].input_dim, latent_dim=curve.latent_dim,
                        hidden_units=curve.hidden_units,
                        likelihood="bernoulli" if curve.dataset == "mnist" else "gaussian")
    model = build_model(architecture, recipe, len(x_train), METHODS[curve.method][0])
    _, state = fit_with_checkpoints(model, x_train, recipe, directory, binarize=curve.dataset == "mnist",
                                    resume=has_checkpoint(directory), verbose=0, report=verbose,
                                    evaluate=_measure(curve, settings), evaluate_at=evaluate_at,
                                    after_evaluation=after_evaluation)
    return state


def selection_epochs(curve: Curve, settings: Settings) -> int:
    """Epochs of the step-size selection runs: Adagrad's warm-up plus `selection_updates` weight updates."""
    updates_per_epoch = curve.n_train // curve.batch_size * curve.updates_per_batch
    return math.ceil((ADAGRAD_WARMUP + settings.selection_updates) / updates_per_epoch)


def select_step_size(curve: Curve, settings: Settings, workdir: Path, verbose: bool = False) -> dict:
    """The paper's rule: a short run at each of STEP_SIZES, then the best training-set number
    (the figure's metric on the training points) wins; a run that diverges or measures an
    impossible value loses. Decided once per curve and kept in WORKDIR/CURVE/step_size.json.

    Returns:
        {"chosen", "epochs", "samples", "updates", "train": {step size: number or None}, "failed": {...}}.

    Raises:
        TrainingError: every step size failed.
    """
    path = workdir / curve.name / "step_size.json"
    if path.is_file():
        return read_json_object(path, {"chosen": (int, float), "epochs": int, "train": dict}, TrainingError,
                                f"Delete it to choose the step size of {curve.name} again.")
    epochs = selection_epochs(curve, settings)
    # Measured where the curve will be, so the winner's curve is whole.
    measured = evaluation_epochs(curve.samples_per_epoch, epochs, FIGURES[settings.figure].linear_every)
    train, failed = {}, {}
    for lr in STEP_SIZES:
        try:
            state = _fit(curve, settings, lr, epochs, workdir / curve.name / f"lr-{lr:g}", measured.__contains__,
                         verbose)
            train[f"{lr:g}"] = state["log"][-1]["train"]
        except (TrainingError, EstimateError) as error:
            train[f"{lr:g}"], failed[f"{lr:g}"] = None, str(error)
    candidates = {lr: value for lr, value in train.items() if value is not None}
    if not candidates:
        raise TrainingError(f"{curve.name}: every step size of {STEP_SIZES} failed: {failed}")
    selection = {"chosen": float(max(candidates, key=candidates.get)), "epochs": epochs,
                 "samples": epochs * curve.samples_per_epoch,
                 "updates": epochs * curve.samples_per_epoch // curve.batch_size * curve.updates_per_batch,
                 "train": train, "failed": failed}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(selection, indent=1), overwrite=True)
    return selection


def train_curve(curve: Curve, settings: Settings, samples: int, workdir: Path, verbose: bool = False,
                publish=None) -> dict:
    """Trains (or continues) `curve` to at least `samples` training samples (and at least through
    the step-size selection); returns its record. `publish(record)` receives the record so far
    after every measured point, so a long run shows how far it got."""
    spe = curve.samples_per_epoch
    selection = None if settings.learning_rate else select_step_size(curve, settings, workdir, verbose)
    learning_rate = settings.learning_rate or selection["chosen"]
    epochs = max(math.ceil(samples / spe), selection["epochs"] if selection else 1)
    wanted = evaluation_epochs(spe, epochs, FIGURES[settings.figure].linear_every)

    def record(state: dict) -> dict:
        points = [{"samples": row["samples_seen"], **{k: v for k, v in row.items() if k.split("_")[0] in
                                                      ("train", "test", "measure") and not k.startswith("train_elbo")
                                                      and k != "train_kl"}}
                  for row in state["log"] if "test" in row]
        for point in points:
            check_point(curve.name, point, curve.dataset == "mnist", FIGURES[settings.figure].metric)
        return {**asdict(curve), "name": curve.name, "learning_rate": learning_rate, "step_size_selection": selection,
                "batch_size": curve.batch_size, "updates_per_sample": curve.updates_per_batch / curve.batch_size,
                "samples_per_epoch": state["samples_per_epoch"], "samples": state["epoch"] * state["samples_per_epoch"],
                "wall_seconds": round(state["wall_seconds"], 1), "points": points}

    state = _fit(curve, settings, learning_rate, epochs, workdir / curve.name / f"lr-{learning_rate:g}",
                 wanted.__contains__, verbose, None if publish is None else lambda state: publish(record(state)))
    return record(state)


def merged(published: dict | None, rerun: dict) -> dict:
    """The record to publish when `rerun` (a curve rerun from its seed, e.g. on a machine without its
    checkpoints) meets the `published` one: the published record until the rerun goes further, so a
    rerun never shortens a curve, with `rerun_check` saying how the points both measured compare
    (same samples: the largest absolute difference of train and test; 0 when the rerun reproduces
    them exactly). A rerun of equal length replaces the published curve only where its points carry
    standard errors that the published points lack (a point needs its own). The check is always
    against the first published run: a rerun that replaces a curve and differs keeps what it
    replaced under `replaced`. A published point the rerun reproduces exactly gains the rerun's
    diagnostics it lacks (e.g. standard errors)."""
    if published is None:
        return rerun
    reference = published.get("replaced", published)
    same_step = reference.get("learning_rate") == rerun.get("learning_rate")
    old = {p["samples"]: p for p in reference["points"]} if same_step else {}
    shared = [(old[p["samples"]], p) for p in rerun["points"] if p["samples"] in old]
    check = {"points": len(shared), "rerun_samples": rerun["samples"], "rerun_learning_rate": rerun["learning_rate"],
             "max_abs_difference": max((abs(a[k] - b[k]) for a, b in shared for k in ("train", "test")),
                                       default=None)}
    gains_errors = (any("test_se" not in p for p in published["points"])
                    and all("test_se" in p for p in rerun["points"]))
    if rerun["samples"] < published["samples"] or (rerun["samples"] == published["samples"] and not gains_errors):
        points = _with_diagnostics(published["points"], rerun["points"]) if same_step else published["points"]
        return {**published, "points": points, "rerun_check": check}
    if check["max_abs_difference"] == 0 and check["points"] == len(reference["points"]):
        return {**rerun, "rerun_check": check}  # the same curve, continued
    kept = {k: reference[k] for k in ("learning_rate", "samples", "wall_seconds", "points", "command")
            if k in reference}
    return {**rerun, "rerun_check": check, "replaced": kept}


def _with_diagnostics(points: list[dict], rerun_points: list[dict]) -> list[dict]:
    """`points`, each completed by the fields of the rerun's point at the same samples when that
    point has the same train and test values."""
    again = {p["samples"]: p for p in rerun_points}
    return [{**again[p["samples"]], **p}
            if p["samples"] in again and all(again[p["samples"]][k] == p[k] for k in ("train", "test")) else p
            for p in points]


def run(figure: str, out: str | os.PathLike, workdir: str | os.PathLike, samples: int | None = None,
        selection: dict | None = None, settings: dict | None = None, command: str = "",
        overwrite: bool = False, verbose: bool = False) -> dict:
    """Trains every curve of `figure` (or a `selection`: datasets, latent_dims, n_train, methods)
    to `samples` training samples each, in rounds, and writes OUT/FIGURE.json and OUT/FIGURE.png
    after every measured point (a curve in progress shows how far it got).

    Args:
        figure: "figure2" or "figure3".
        out: folder of the results.
        workdir: folder of the curves' checkpoints (rerunning continues them).
        samples: training samples per curve (default: the figure's).
        selection: keyword arguments of `curves`.
        settings: fields of `Settings` other than `figure`.
        command: the command line, recorded with every curve it trains (and, for the file, the last one).
        overwrite: replace results of a run with other settings.
        verbose: print a line per measurement and per finished curve.

    Returns:
        The results (what FIGURE.json holds).
    """
    spec = FIGURES[check_choice("figure", figure, FIGURES)]
    samples = check_positive_int("samples", spec.default_samples if samples is None else samples)
    settings = Settings(figure, **{"eval_points": spec.eval_points, **(settings or {})})
    for name in ("eval_points", "ml_samples", "ml_burnin", "ml_leapfrog", "selection_updates"):
        check_positive_int(name, getattr(settings, name))
    check_positive_float("init_std", settings.init_std)
    if settings.learning_rate is not None:
        check_positive_float("learning_rate", settings.learning_rate)
    check_seed("seed", settings.seed, allow_none=False)
    todo = curves(figure, **(selection or {}))
    out, workdir = Path(out), Path(workdir) / settings.key
    path = out / f"{settings.stem}.json"
    results = {"figure": figure, "metric": spec.metric, "settings": asdict(settings), "curves": {}}
    if path.exists():
        previous = read_results(path)
        if previous.get("settings") == results["settings"]:
            results["curves"] = previous["curves"]  # the same experiment: continue it
        elif not overwrite:
            raise OutputExistsError(f"{path} holds a run with other settings ({previous.get('settings')}). "
                                    "Choose another --out, or pass --overwrite to replace it.")
    results.update(command=command, machine=f"{platform.machine()}, {os.cpu_count()} cores")
    if verbose:
        print(f"{settings.stem}: {len(todo)} curves to {samples:,} samples each; {_eta(results, todo, samples)}",
              flush=True)

    def publish(record: dict) -> None:
        # Processes running other curves of the experiment take turns writing its results.
        with exclusive_lock(out, f"writing {settings.stem} results", wait=600):
            if path.exists():  # another process may run other curves of the same experiment
                on_disk = read_results(path)
                if on_disk.get("settings") == results["settings"]:
                    results["curves"] = on_disk["curves"]
            results["curves"][record["name"]] = merged(results["curves"].get(record["name"]),
                                                       {**record, "command": command})
            atomic_write_text(path, json.dumps(results, indent=1), overwrite=True)
            viz.plot_figure(results, out / f"{settings.stem}.png", overwrite=True)

    for budget in rounds(samples):
        for curve in todo:
            record = train_curve(curve, settings, budget, workdir, verbose, publish)
            publish(record)
            if verbose:
                last = record["points"][-1]
                print(f"{settings.stem} {curve.name}: {record['samples']:,} samples (step size "
                      f"{record['learning_rate']:g}), train {last['train']:.2f}, test {last['test']:.2f}, "
                      f"{record['wall_seconds']:.0f} s; {_eta(results, todo, samples)}", flush=True)
    return results


def read_results(path: Path) -> dict:
    """A figure's results file, or an error naming it when it is not one."""
    try:
        results = json.loads(path.read_text())
        if isinstance(results, dict) and isinstance(results.get("curves"), dict):
            return results
        problem = "it has no curves"
    except (ValueError, UnicodeDecodeError) as err:
        problem = f"it is not valid JSON: {err}"
    raise OutputExistsError(f"{path} is not the results of vae-zoo reproduce ({problem}). Move it away, or choose "
                            "another --out.")


def _eta(results: dict, todo: list[Curve], samples: int) -> str:
    """The expected time left for `todo` to reach `samples`, at the speed each curve (or its
    method, on its data set) has shown on this machine in `results`."""
    rates: dict[tuple, list[float]] = {}
    for c in results["curves"].values():
        if c["samples"]:
            rates.setdefault((c["dataset"], c["method"]), []).append(c["wall_seconds"] / c["samples"])
    seconds = 0.0
    for curve in todo:
        done = results["curves"].get(curve.name)
        rate = (done["wall_seconds"] / done["samples"] if done and done["samples"]
                else np.mean(rates[curve.dataset, curve.method]) if (curve.dataset, curve.method) in rates else None)
        if rate is None:
            return "the expected time follows once every method has trained on this machine"
        seconds += rate * max(0, samples - (done["samples"] if done else 0))
    return f"expected time left on this machine: {seconds / 3600:.1f} h"


def nearest(points: list[dict], samples: float) -> dict:
    """The point measured nearest to `samples` (on the log scale)."""
    return min(points, key=lambda p: abs(math.log(p["samples"] / samples)))


def table(results: dict, at: float = 1e6) -> str:
    """A markdown table: per panel and method, train/test at ~`at` samples and at the end, and
    who is ahead by the test number at `at` and at the panel's common end (the most samples
    every method of the panel reached), with the wall time."""
    panels: dict[tuple, dict] = {}
    for c in results["curves"].values():
        panels.setdefault((c["dataset"], c["latent_dim"], c["n_train"]), {})[c["method"]] = c
    head = (f"| data | N_z | N | method | train @ {at:.0e} | test @ {at:.0e} | samples | train | test | "
            "wall time | ahead (test) @ 1e6 / @ common end |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for (dataset, z, n), methods in sorted(panels.items()):
        reached = all(c["samples"] >= at for c in methods.values())
        early = max(methods, key=lambda m: nearest(methods[m]["points"], at)["test"]) if reached else "-"
        common = min(c["samples"] for c in methods.values())
        late = max(methods, key=lambda m: nearest(methods[m]["points"], common)["test"])
        for method, c in methods.items():
            p, last = nearest(c["points"], at), c["points"][-1]
            early_values = f"{p['train']:.2f} | {p['test']:.2f}" if reached else "- | -"
            lines.append(f"| {dataset} | {z} | {n:,} | {method} | {early_values} | "
                         f"{c['samples']:.2g} | {last['train']:.2f} | {last['test']:.2f} | "
                         f"{c['wall_seconds'] / 60:.1f} min | {early} / {late} @ {common:.2g} |")
    return "\n".join(lines)


def step_size_table(results: dict) -> str:
    """A markdown table of each curve's step-size selection: the training-set number of the short
    run at each step size ("diverged" where it failed), the choice, and weight updates per sample."""
    lines = [f"| curve | {' | '.join(f'{lr:g}' for lr in STEP_SIZES)} | chosen | weight updates per sample |",
             "|" + " --- |" * (len(STEP_SIZES) + 3)]
    for name, c in sorted(results["curves"].items()):
        selection = c.get("step_size_selection") or {}
        scores, failed = selection.get("train", {}), selection.get("failed", {})
        cells = [("-" if f"{lr:g}" not in failed else "diverged") if f"{lr:g}" not in scores else
                 f"{scores[f'{lr:g}']:.2f}" if abs(scores[f"{lr:g}"]) < 1e6 else f"{scores[f'{lr:g}']:.1e}"
                 for lr in STEP_SIZES]
        lines.append(f"| {name} | {' | '.join(cells)} | {c['learning_rate']:g} | {c['updates_per_sample']:g} |")
    return "\n".join(lines)
