"""The `vae-zoo` command line (also `python -m vae_zoo`).

Every command has `--help`. The package's own errors (`VaeZooError`: unknown
preset, missing data, bad arguments, a file that would be overwritten) print one
line on stderr and exit with status 2; any other exception is a bug and keeps
its traceback (status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _load(name_or_path: str):
    from vae_zoo import registry

    return registry.load(name_or_path, compile=False)


def _image_shape(model, name_or_path: str) -> tuple[int, int]:
    """The image size of a model's data: from its card (models of the user's data), else its data set."""
    from vae_zoo import registry
    from vae_zoo.data import DATASETS
    from vae_zoo.evaluation import dataset_of

    shape = registry.read_card(name_or_path).get("data", {}).get("image_shape")
    return tuple(shape) if shape else DATASETS[dataset_of(model)].image_shape


def _metric(card: dict, key: str) -> str:
    value = card.get("metrics", {}).get(key)
    return f"{value['mean']:.2f}" if value else "-"


def cmd_list(args) -> int:
    from vae_zoo import registry
    from vae_zoo.presets import PRESETS

    print(f"{'name':<11} {'data':<6} {'z':>4} {'hidden':>6} {'likelihood':<10} {'test ELBO':>10} {'test log p(x)':>17} "
          f"{'train ELBO':>10}")
    shipped = registry.shipped_presets()
    for name, spec in PRESETS.items():
        card = registry.read_card(name) if name in shipped else {"metrics": {}}
        ll = _metric(card, "test_log_likelihood")
        k = card.get("metrics", {}).get("test_log_likelihood", {}).get("k")
        print(f"{name:<11} {spec.dataset:<6} {spec.latent_dim:>4} {spec.hidden_units:>6} {spec.likelihood:<10} "
              f"{_metric(card, 'test_elbo_B'):>10} {ll + (f' (k={k})' if k else ''):>17} "
              f"{_metric(card, 'train_elbo_B'):>10}")
    print(f"\npresets folder: {registry.presets_dir()}; `vae-zoo info NAME` shows a model card")
    return 0


def cmd_info(args) -> int:
    from vae_zoo import registry

    card = registry.read_card(args.model)
    if args.json:
        print(json.dumps(card, indent=1))
        return 0
    training = card.get("training", {})
    lines = [f"{card.get('name', args.model)}: {card.get('description', '')}", ""]
    data = card.get("data", {})
    if "sha256" in data:  # the user's own data
        lines += [f"data        {data['source']} ({data['kind']}, {data['examples']} examples of {data['input_dim']} "
                  f"pixels, sha256 {data['sha256'][:16]}...); {data['split']}"]
        if card.get("source"):
            source = card["source"]
            lines += [f"source      {source['preset']} (weights sha256 {source['weights_sha256'][:16]}...)"]
    else:
        lines += [f"data        {data.get('dataset')}: train {data.get('train')}; test {data.get('test')}"]
    lines += [f"            scaling {data.get('scaling')}; binarization: {data.get('binarization')}"]
    recipe = card.get("recipe", {})
    if recipe:
        drops = ", ".join(f"{lr:g} from epoch {e}" for e, lr in recipe.get("lr_drops", []))
        lines += [f"recipe      {recipe['optimizer']} lr {recipe['learning_rate']:g}" + (f" ({drops})" if drops else "")
                  + f", batch {recipe['batch_size']}, estimator {recipe['estimator']}, L={recipe['num_samples']}, "
                  f"seed {recipe['seed']}" + (", N(0, I) parameter prior" if recipe.get("parameter_prior") else "")]
    if training:
        lines += [f"training    {training['epochs']} epochs, {training['samples_seen']:,} samples, "
                  f"{training['wall_seconds'] / 60:.1f} min on {training['machine']}",
                  f"            command: {training['command']}"]
    metrics = card.get("metrics")
    if metrics:
        ll = metrics.get("test_log_likelihood")
        lines += [f"metrics     ({metrics['units']}; {metrics['test_set']})",
                  f"            test ELBO (B, L=1)  {metrics['test_elbo_B']['mean']:.2f} "
                  f"+- {metrics['test_elbo_B']['standard_error']:.2f}",
                  f"            test ELBO (A, L=1)  {metrics['test_elbo_A']['mean']:.2f} "
                  f"+- {metrics['test_elbo_A']['standard_error']:.2f}"]
        if ll:
            lines += [f"            test log p(x)       {ll['mean']:.2f} +- {ll['standard_error']:.2f} "
                      f"(importance sampling, k={ll['k']})"]
        before = metrics.get("source_preset_test_log_likelihood")
        if before:
            lines += [f"            before fine-tuning  {before['mean']:.2f} +- {before['standard_error']:.2f} "
                      f"(the source preset's log p(x), same rows)"]
        lines += [f"            train ELBO (B)      {metrics['train_elbo_B']['mean']:.2f} ({metrics['train_set']})"]
        if card.get("metrics_command"):
            lines += [f"            reproduce with: {card['metrics_command']}"]
    else:
        lines += ["metrics     not measured yet: vae-zoo evaluate NAME --write-card"]
    lines += [f"weights     sha256 {card.get('weights_sha256')}, vae-zoo {card.get('package_version')}"]
    print("\n".join(lines))
    return 0


def _cluster(args):
    """The cluster of --workers/--task-index or TF_CONFIG, joined before any other TensorFlow work."""
    from vae_zoo import distributed

    cluster = distributed.cluster_from(args.workers, args.task_index)
    if cluster is not None:
        distributed.connect(cluster, args.peer_timeout)
    return cluster


def _train_on_data(args, preset: str | None, architecture: dict | None) -> int:
    from vae_zoo import user_data
    from vae_zoo.recipes import Recipe
    from vae_zoo.training import train_on_data

    cluster = _cluster(args)
    recipe = Recipe(optimizer=args.optimizer or "adam", learning_rate=args.lr or (1e-4 if preset else 1e-3),
                    epochs=args.epochs or (10 if preset else 100), batch_size=args.batch_size or 100,
                    seed=args.seed or 0, estimator=getattr(args, "estimator", None) or "B",
                    num_samples=getattr(args, "samples", None) or 1)
    path = train_on_data(user_data.read(args.data), args.out, recipe, args.workdir, preset, architecture,
                         getattr(args, "freeze", None), args.binarize, args.holdout, args.resume, args.overwrite,
                         command=" ".join(["vae-zoo", *sys.argv[1:]]), verbose=1 if sys.stdout.isatty() else 2,
                         cluster=cluster, peer_timeout=args.peer_timeout)
    print(f"Saved preset to {path}" if path else
          f"Worker {cluster.index} done; the chief (worker 0) writes the preset.")
    return 0


def cmd_shard(args) -> int:
    from vae_zoo import shards, user_data
    from vae_zoo.errors import InvalidArgumentError

    data = user_data.read(args.data)
    if isinstance(data, shards.Shards):
        raise InvalidArgumentError(f"{args.data} is already a shard folder.")
    manifest = shards.write(data.x, args.out, data.image_shape, args.shard_size, args.holdout, args.seed or 0,
                            source=data.describe())
    print(f"Wrote {len(manifest['train'])} training shards ({sum(e['count'] for e in manifest['train'])} images) "
          f"and {manifest['heldout']['count']} held-out images to {args.out}; {manifest['split']}")
    return 0


def cmd_finetune(args) -> int:
    return _train_on_data(args, args.preset, None)


def cmd_train(args) -> int:
    from vae_zoo.errors import InvalidArgumentError
    from vae_zoo.training import train_preset

    if args.data is not None:
        if args.out is None:
            raise InvalidArgumentError("With --data, name the preset folder to write: --out DIR.")
        if args.name is not None or args.latent_dim is None:
            raise InvalidArgumentError("With --data, give --latent-dim (and no preset name); to continue training a "
                                       "preset on your data use: vae-zoo finetune PRESET --data PATH --out DIR.")
        return _train_on_data(args, None, dict(latent_dim=args.latent_dim, hidden_units=args.hidden,
                                                likelihood=args.likelihood))
    if args.name is None:
        raise InvalidArgumentError("Name a preset to train (vae-zoo list), or give --data PATH --latent-dim Z.")
    if args.workers or args.task_index is not None:
        raise InvalidArgumentError("--workers trains your data (--data) across workers; a preset of the zoo trains "
                                   "in one process.")
    overrides = dict(epochs=args.epochs, estimator=args.estimator, num_samples=args.samples,
                     batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.lr, seed=args.seed)
    path = train_preset(args.name, args.workdir, args.out or Path("presets"), args.resume, overrides,
                        overwrite=args.overwrite, verbose=1 if sys.stdout.isatty() else 2)
    print(f"Saved preset to {path}")
    return 0


def cmd_evaluate(args) -> int:
    from vae_zoo import registry
    from vae_zoo.errors import InvalidArgumentError
    from vae_zoo.evaluation import evaluate

    if args.write_card and (args.n_test is not None or args.k != 5000):
        raise InvalidArgumentError("--write-card records the card's protocol only: the full test set and k=5000. "
                         f"Received: --n-test {args.n_test} --k {args.k}")
    cluster = _cluster(args)
    model = _load(args.model)
    sharded = None
    if cluster is not None:
        from vae_zoo import distributed

        def sharded(m, x, k, seed, verbose):
            return distributed.log_likelihood(m, x, k, seed, cluster, args.peer_timeout, verbose)
    metrics = evaluate(model, k=args.k, n_test=args.n_test, seed=args.seed, verbose=not args.quiet,
                       log_likelihood=sharded)
    if cluster is not None and not cluster.is_chief:
        print(f"Worker {cluster.index} done; the chief (worker 0) prints the metrics.")
        return 0
    print(json.dumps(metrics, indent=1))
    if args.write_card:
        registry.update_card(args.model, metrics=metrics,
                             metrics_command=f"vae-zoo evaluate {args.model} --seed {args.seed}")
        print(f"Updated the model card of {args.model}")
    return 0


def cmd_sample(args) -> int:
    from vae_zoo import viz

    model = _load(args.model)
    images = model.sample(args.n, seed=args.seed)
    viz.save_png(viz.grid(images, _image_shape(model, args.model)), args.output, overwrite=args.overwrite)
    print(f"Wrote {args.n} samples of {args.model} to {args.output}")
    return 0


def cmd_reconstruct(args) -> int:
    import numpy as np

    from vae_zoo import data, viz
    from vae_zoo.errors import InvalidArgumentError
    from vae_zoo.evaluation import dataset_of

    model = _load(args.model)
    x = data.test_set(dataset_of(model), model.is_binary)
    if args.n > len(x):
        raise InvalidArgumentError(f"-n must be at most the {len(x)} test images. Received: -n {args.n}")
    x = x[: args.n]
    pairs = np.stack([x, model.reconstruct(x)], axis=1).reshape(-1, model.input_dim)
    viz.save_png(viz.grid(pairs, _image_shape(model, args.model), columns=2 * args.pairs_per_row), args.output,
                 overwrite=args.overwrite)
    print(f"Wrote {len(x)} test images (left) and their reconstructions (right) to {args.output}")
    return 0


def cmd_manifold(args) -> int:
    from vae_zoo import viz

    model = _load(args.model)
    shape = _image_shape(model, args.model)
    viz.save_png(viz.grid(viz.manifold(model, args.grid), shape, columns=args.grid, pad=0), args.output,
                 overwrite=args.overwrite)
    print(f"Wrote the {args.grid}x{args.grid} latent manifold of {args.model} to {args.output}")
    return 0


def _read_log(source: str) -> tuple[str, list[dict]]:
    from vae_zoo import registry
    from vae_zoo.errors import InvalidArgumentError

    path = Path(source)
    if path.is_file():
        content = json.loads(path.read_text())
        return path.parent.name if path.name == "state.json" else path.stem, content["log"]
    for state in (path / "state.json", path / "checkpoint" / "state.json"):  # a checkpoint or a run folder
        if state.is_file():
            return path.name, json.loads(state.read_text())["log"]
    card = registry.read_card(source)
    if "training" not in card:
        raise InvalidArgumentError(f"{source}'s card has no training log.")
    return card.get("name", source), card["training"]["log"]


def cmd_curves(args) -> int:
    from vae_zoo import viz

    logs = dict(_read_log(s) for s in args.logs)
    viz.plot_curves(logs, args.output, overwrite=args.overwrite)
    print(f"Wrote lower-bound curves of {', '.join(logs)} to {args.output}")
    return 0


def cmd_reproduce(args) -> int:
    from vae_zoo import reproduce, viz

    if args.plot_only:
        from vae_zoo.errors import DataNotFoundError

        path = args.out / f"{args.figure}.json"
        if not path.is_file():
            raise DataNotFoundError(f"{path} does not exist: run `vae-zoo reproduce {args.figure}` first, or point "
                                    "--out to the folder of its results.")
        results = json.loads(path.read_text())
        viz.plot_figure(results, args.out / f"{args.figure}.png", overwrite=True)
    else:
        selection = {"datasets": args.dataset, "latent_dims": args.nz, "n_train": args.n_train, "methods": args.methods}
        settings = {k: v for k, v in {"seed": args.seed, "learning_rate": args.lr, "eval_points": args.eval_points,
                                      "ml_samples": args.ml_samples, "ml_burnin": args.ml_burnin,
                                      "ml_leapfrog": args.ml_leapfrog}.items() if v is not None}
        results = reproduce.run(args.figure, args.out, args.workdir, args.samples, selection, settings,
                                command=" ".join(["vae-zoo", *sys.argv[1:]]), overwrite=args.overwrite,
                                verbose=not args.quiet)
    print(reproduce.table(results))
    print(f"Wrote {args.out / args.figure}.json and .png")
    return 0


def cmd_export(args) -> int:
    from vae_zoo.errors import InvalidArgumentError
    from vae_zoo.exporters import build_bundle, export

    if args.all_presets:
        bundle = build_bundle(args.output, quantize=args.quantize)
        for name, manifest in bundle["presets"].items():
            errors = ", ".join(f"{a['part']} {a['max_abs_error']:.1e}" for a in manifest["artifacts"]
                               if "quantize" not in a)
            print(f"{name:<11} ONNX max abs error vs Keras: {errors}")
            if "quality" in manifest:
                results = manifest["quality"]["results"]["onnx"]
                shipped = {a["quantize"] for a in manifest["artifacts"] if "quantize" in a}
                for mode in (m for m in results if m != "float32"):
                    drop = results[mode]["pair"]["log_px_drop"]
                    print(f"{'':<11} decoder.{mode}.onnx: test log p(x) drop {drop['mean']:.3f} +- "
                          f"{drop['standard_error']:.3f} nats, {'shipped' if mode in shipped else 'not shipped'}")
        print(f"Wrote the ONNX bundle of {len(bundle['presets'])} presets and manifest.json to {args.output}")
        return 0
    if not args.model:
        raise InvalidArgumentError("Name a preset or folder to export, or pass --all-presets.")
    manifest = export(args.model, args.output, formats=args.format, parts=args.part, overwrite=args.overwrite,
                      quantize=args.quantize, data=args.data, max_drop=args.max_drop, seed=args.seed,
                      quality_k=args.quality_k, quality_points=args.quality_points)
    for a in manifest["artifacts"]:
        if "quantize" not in a:
            print(f"{a['file']:<28} {a['format']:<12} max abs error vs Keras {a['max_abs_error']:.2e}")
            continue
        pair = manifest["quality"]["results"][a["format"]][a["quantize"]]["pair"]
        print(f"{a['file']:<28} {a['format']:<12} {a['size_bytes']:>9,} bytes ({a['smaller_by']:.1f}x smaller), "
              f"max abs diff {a['difference_from_float32']['max_abs']:.2e}, test log p(x) drop "
              f"{pair['log_px_drop']['mean']:.3f} +- {pair['log_px_drop']['standard_error']:.3f} nats")
    print(f"Wrote {len(manifest['artifacts'])} artifacts and manifest.json to {args.output}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `vae-zoo train: error: argument --epochs: ...`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, test, accepted: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {accepted}. Received: {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {accepted}. Received: {text!r}")
        return value

    parse.__name__ = accepted  # what argparse names in its own messages
    return parse


POSITIVE_INT = _number(int, lambda v: v > 0, "a positive int")
NON_NEGATIVE_INT = _number(int, lambda v: v >= 0, "an int >= 0")
POSITIVE_FLOAT = _number(float, lambda v: 0 < v < float("inf"), "a finite number > 0")
NON_NEGATIVE_FLOAT = _number(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0")
GRID = _number(int, lambda v: 0 < v <= 200, "an int in 1..200")
FRACTION = _number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def _whole(text: str) -> int:
    """An int written plainly or in scientific notation ("3e6")."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


SAMPLE_COUNT = _number(_whole, lambda v: 0 < v <= 10**12, "a positive whole number such as 3000000 or 3e6")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; building it imports nothing heavy, so --help is instant."""
    from vae_zoo.quantization import MAX_DROP, QUALITY_K, QUALITY_POINTS

    parser = _Parser(prog="vae-zoo", description="Pretrained AEVB variational auto-encoders "
                     "(Kingma & Welling, arXiv 1312.6114).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(run=fn)
        return p

    def add_output(p, default):
        p.add_argument("-o", "--output", type=Path, default=Path(default), help=f"PNG file (default {default})")
        p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")

    add("list", cmd_list, "list the presets with their headline test numbers")

    p = add("info", cmd_info, "show a preset's model card")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--json", action="store_true", help="print the raw card.json")

    def add_data_flags(p, resume_help):
        p.add_argument("--data", type=Path, help="a .npy/.npz array file, a folder of PNG/JPEG images "
                       "(grayscale, one size; pixels uint8 0-255 or floats in [0, 1]), or a shard folder "
                       "(vae-zoo shard), streamed from disk")
        p.add_argument("--binarize", action="store_true", help="Bernoulli models of grey-level data: train on "
                       "x ~ Bernoulli(pixel), resampled every epoch")
        p.add_argument("--holdout", type=FRACTION, default=0.1, help="share of the data held out and measured "
                       "(default 0.1, split by --seed; shards keep the split they were written with)")
        p.add_argument("--resume", action="store_true", help=resume_help)
        p.add_argument("--workdir", type=Path, default=Path("runs"), help="checkpoint folder (default: runs)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing preset folder")
        add_cluster_flags(p, "train")

    def add_cluster_flags(p, what):
        p.add_argument("--workers", nargs="+", metavar="HOST:PORT", help=f"{what} data-parallel across these "
                       "worker processes (tf.distribute; or set TF_CONFIG); start each with the same list")
        p.add_argument("--task-index", type=NON_NEGATIVE_INT, help="this worker's place in --workers (0: the chief, "
                       "which alone writes checkpoints and results)")
        p.add_argument("--peer-timeout", type=POSITIVE_FLOAT, default=300.0,
                       help="seconds to wait for the other workers before stopping with an error (default 300)")

    def add_recipe_flags(p, epochs_help, lr_help):
        p.add_argument("--epochs", type=POSITIVE_INT, help=epochs_help)
        p.add_argument("--batch-size", type=POSITIVE_INT, help="minibatch size M (default 100)")
        p.add_argument("--optimizer", choices=["adam", "adagrad"])
        p.add_argument("--lr", type=POSITIVE_FLOAT, help=lr_help)
        p.add_argument("--seed", type=NON_NEGATIVE_INT)

    p = add("train", cmd_train, "train a preset, or a fresh model on your data (--data); checkpoints every epoch, "
            "--resume continues")
    p.add_argument("name", nargs="?", help="preset name, e.g. mnist-z20 (omit with --data)")
    add_recipe_flags(p, "total epochs (default: the preset's recipe; 100 with --data)",
                     "initial learning rate (default: the preset's; 1e-3 with --data)")
    p.add_argument("--estimator", choices=["A", "B"], help="SGVB estimator (eq. 6 or eq. 7)")
    p.add_argument("--samples", type=POSITIVE_INT, help="L, samples of z per datapoint")
    p.add_argument("--latent-dim", type=POSITIVE_INT, help="with --data: N_z of the fresh model")
    p.add_argument("--hidden", type=POSITIVE_INT, nargs="+", default=[500],
                   help="with --data: hidden units per layer (default 500)")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli",
                   help="with --data: the decoder (default bernoulli)")
    add_data_flags(p, "continue from the checkpoint in WORKDIR/NAME (or WORKDIR/<OUT's name> with --data)")
    p.add_argument("--out", type=Path, help="the finished preset goes to OUT/NAME (default: presets; the zoo's "
                   "own: saved_models); with --data, OUT is the preset folder itself (required)")

    p = add("shard", cmd_shard, "write your data as TFRecord shards (+ a held-out file) that train and finetune "
            "stream from disk")
    p.add_argument("--data", type=Path, required=True, help="a .npy/.npz file or a folder of PNG/JPEG images")
    p.add_argument("--out", type=Path, required=True, help="the shard folder to create")
    p.add_argument("--shard-size", type=POSITIVE_INT, default=50_000, help="images per shard (default 50000)")
    p.add_argument("--holdout", type=FRACTION, default=0.1, help="share held out (default 0.1)")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, help="seed of the order and the split (default 0)")

    p = add("finetune", cmd_finetune, "continue training a preset on your data; writes a preset folder")
    p.add_argument("preset", help="preset name or folder, e.g. mnist-z20")
    add_recipe_flags(p, "epochs (default 10)", "learning rate (default 1e-4, Adam)")
    p.add_argument("--freeze", choices=["encoder", "decoder"], help="keep one network's weights fixed")
    add_data_flags(p, "continue from the checkpoint in WORKDIR/<OUT's name>")
    p.add_argument("--out", type=Path, required=True, help="the preset folder to write")

    p = add("evaluate", cmd_evaluate, "test ELBO (A and B), importance-weighted log-likelihood, train ELBO")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--k", type=NON_NEGATIVE_INT, default=5000,
                   help="importance samples per test point (default 5000; 0 skips)")
    p.add_argument("--n-test", type=POSITIVE_INT, help="first N test points only (default: the full test set)")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of the Monte Carlo noise")
    p.add_argument("--write-card", action="store_true", help="record the metrics in the preset's card.json")
    add_cluster_flags(p, "share the log p(x) estimate")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("sample", cmd_sample, "write a PNG grid of decoder means at z ~ N(0, I)")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("-n", type=POSITIVE_INT, default=64, help="number of samples (default 64)")
    add_output(p, "samples.png")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)

    p = add("reconstruct", cmd_reconstruct, "write test images beside their reconstructions as a PNG")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("-n", type=POSITIVE_INT, default=32, help="number of test images (default 32)")
    p.add_argument("--pairs-per-row", type=POSITIVE_INT, default=8)
    add_output(p, "reconstructions.png")

    p = add("manifold", cmd_manifold, "write the learned 2-D manifold as a PNG (paper Figure 4)")
    p.add_argument("model", help="a preset with a 2-D latent space, e.g. mnist-z2")
    p.add_argument("--grid", type=GRID, default=20, help="images per side (default 20, at most 200)")
    add_output(p, "manifold.png")

    p = add("curves", cmd_curves, "plot lower bound against training samples (paper Figure 2)")
    p.add_argument("logs", nargs="+", help="preset names/folders, checkpoint folders or state.json files")
    add_output(p, "curves.png")

    p = add("reproduce", cmd_reproduce, "rerun the paper's Figure 2 (AEVB vs wake-sleep) or Figure 3 "
            "(AEVB vs wake-sleep vs MCEM); rerunning continues an interrupted run")
    p.add_argument("figure", choices=["figure2", "figure3"])
    p.add_argument("--dataset", nargs="+", help="figure2: mnist and/or frey (default both)")
    p.add_argument("--nz", nargs="+", type=POSITIVE_INT, help="latent sizes (default: the paper's)")
    p.add_argument("--n-train", nargs="+", type=POSITIVE_INT, help="figure3: training-set sizes (default 1000 50000)")
    p.add_argument("--methods", nargs="+", help="aevb, wake-sleep, mcem (figure3) (default: all of the figure's)")
    p.add_argument("--samples", type=SAMPLE_COUNT, help="training samples evaluated per curve, e.g. 3e6 "
                   "(default 1e7; the paper went to 1e8)")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, help="shared seed of every method (default 0)")
    p.add_argument("--lr", type=POSITIVE_FLOAT, help="Adagrad step size (default 0.02, from the paper's grid)")
    p.add_argument("--eval-points", type=POSITIVE_INT,
                   help="first N training and test points measured (default 10000 / 1000)")
    p.add_argument("--ml-samples", type=POSITIVE_INT, help="figure3: App. D posterior samples L per point "
                   "(default 100)")
    p.add_argument("--ml-burnin", type=POSITIVE_INT, help="figure3: HMC burn-in steps (default 100)")
    p.add_argument("--ml-leapfrog", type=POSITIVE_INT, help="figure3: leapfrog steps per HMC step (default 4)")
    p.add_argument("--workdir", type=Path, default=Path("runs/reproduce"),
                   help="checkpoints of the curves (default runs/reproduce)")
    p.add_argument("--out", type=Path, default=Path("results"), help="folder of FIGURE.json and FIGURE.png "
                   "(default results)")
    p.add_argument("--overwrite", action="store_true", help="replace results of a run with other settings")
    p.add_argument("--plot-only", action="store_true", help="redraw OUT/FIGURE.png from OUT/FIGURE.json")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = add("export", cmd_export, "export encoder/decoder graphs, parity-checked against Keras")
    p.add_argument("model", nargs="?", help="preset name or preset folder")
    p.add_argument("--all-presets", action="store_true",
                   help="write the ONNX encoder and decoder of every shipped preset (the edge bundle) to OUTPUT, and "
                        "with --quantize the quantized decoders that pass the quality gate")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to create")
    p.add_argument("--format", nargs="+",
                   help="any of saved_model, onnx, tflite (default: all; with --quantize: onnx tflite)")
    p.add_argument("--part", nargs="+", default=["encoder", "decoder"],
                   help="any of encoder, decoder, sampling_encoder (default: encoder decoder)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--quantize", nargs="+", default=["none"], metavar="MODE",
                   help="any of none (float32), float16, int8-dynamic, int8-static (onnx and tflite); quantized "
                        "graphs are measured (size, speed, test ELBO and log p(x) through the graphs) in manifest.json")
    p.add_argument("--data", type=Path, help="images to calibrate (int8-static) and measure quantized graphs on "
                   "(default: the zoo data set of the model's input size)")
    p.add_argument("--max-drop", type=NON_NEGATIVE_FLOAT, default=MAX_DROP,
                   help=f"refuse quantized graphs losing more test log p(x), nats per image (default {MAX_DROP:g})")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of calibration and measurement")
    p.add_argument("--quality-k", type=POSITIVE_INT, default=QUALITY_K,
                   help=f"importance samples of the log p(x) measurement (default {QUALITY_K})")
    p.add_argument("--quality-points", type=POSITIVE_INT, default=QUALITY_POINTS,
                   help=f"test images of the log p(x) measurement (default {QUALITY_POINTS})")
    return parser


def _import_tensorflow_quietly(initialize: bool = True) -> None:
    """Imports TensorFlow with file descriptor 2 muted: its C++ start-up logs
    (CUDA probing, CPU features) bypass TF_CPP_MIN_LOG_LEVEL and would bury
    the command's own messages. Without `initialize` the devices are left alone
    (a worker of a cluster configures them when it joins)."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401

        if initialize:
            tf.constant(0.0) + 1.0  # initialises the devices, which logs too
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def main(argv=None) -> int:
    from vae_zoo.errors import VaeZooError

    args = build_parser().parse_args(argv)
    _import_tensorflow_quietly(initialize=not (getattr(args, "workers", None) or os.environ.get("TF_CONFIG")))
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `vae-zoo list | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VaeZooError as err:  # the package's own errors: one line, no traceback
        print(f"vae-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"vae-zoo {args.command}: {err or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
