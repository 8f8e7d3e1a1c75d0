"""`vae-zoo train`, `shard` and `finetune`: presets of the zoo and models of your own data."""

from __future__ import annotations

import sys
from pathlib import Path

from vae_zoo.cli.arguments import (
    FRACTION,
    POSITIVE_INT,
    SEED,
    add_command,
    add_data_flags,
    add_recipe_flags,
    join_cluster,
)


def _train_on_data(args, preset: str | None, architecture: dict | None) -> int:
    from vae_zoo.data import user_data
    from vae_zoo.model.recipes import Recipe
    from vae_zoo.training.train import train_on_data

    cluster = join_cluster(args)
    data = user_data.read(args.data)
    batch_size, epochs = sized_to_data(_training_rows(data, args.holdout), args.batch_size, args.epochs,
                                       10 if preset else 100)
    recipe = Recipe(optimizer=args.optimizer or "adam", learning_rate=args.lr or (1e-4 if preset else 1e-3),
                    epochs=epochs, batch_size=batch_size, seed=args.seed or 0,
                    estimator=getattr(args, "estimator", None) or "B", num_samples=getattr(args, "samples", None) or 1)
    path = train_on_data(data, args.out, recipe, args.workdir, preset, architecture,
                         getattr(args, "freeze", None), args.binarize, args.holdout, args.resume, args.overwrite,
                         command=" ".join(["vae-zoo", *sys.argv[1:]]), verbose=1, cluster=cluster,
                         peer_timeout=args.peer_timeout)
    if path is None:
        print(f"Worker {cluster.index} done; the chief (worker 0) writes the preset.")
        return 0
    _summary(path, args.workdir / Path(args.out).name)
    return 0


# Defaults fitted to the data: at least this many optimizer updates, in batches of about
# DEFAULT_BATCH that leave no more than a few rows of an epoch out.
MIN_UPDATES, DEFAULT_BATCH = 500, 100


def _training_rows(data, holdout: float) -> int:
    from vae_zoo.data import shards

    if isinstance(data, shards.Shards):
        return len(data)
    return len(data.x) - max(1, int(round(holdout * len(data.x))))


def sized_to_data(n_train: int, batch_size: int | None, epochs: int | None, default_epochs: int) -> tuple[int, int]:
    """(batch size, epochs): the given ones, or defaults fitted to `n_train` training rows: batches of
    about DEFAULT_BATCH that split the rows evenly, and at least MIN_UPDATES updates (and
    `default_epochs`). Says so when a default was fitted."""
    import math

    chosen = batch_size or math.ceil(n_train / max(1, math.ceil(n_train / DEFAULT_BATCH)))
    steps = max(1, n_train // chosen)
    fitted = epochs or max(default_epochs, math.ceil(MIN_UPDATES / steps))
    if (batch_size is None and chosen != DEFAULT_BATCH) or (epochs is None and fitted != default_epochs):
        print(f"{n_train} training images: batches of {chosen}, {fitted} epochs ({fitted * steps} updates); "
              "--batch-size and --epochs choose others.")
    return chosen, fitted


def _summary(path: Path, run: Path) -> None:
    """The numbers a training run measured, where its checkpoints are, and where the preset is."""
    from vae_zoo.core import preset_format
    from vae_zoo.core.io import files_in
    from vae_zoo.core.summaries import plus_minus

    metrics = preset_format.read_card(path).get("metrics", {})
    ll, before = metrics.get("test_log_likelihood"), metrics.get("source_preset_test_log_likelihood")
    if metrics:
        print(f"Measured on {metrics['test_set']}: test ELBO (B) {plus_minus(metrics['test_elbo_B'], 2)}"
              + (f", log p(x) {plus_minus(ll, 2)} (k={ll['k']})" if ll else "")
              + (f"; before fine-tuning {plus_minus(before, 2)}" if before else "") + " nats per image")
        if ll and before:
            change = ll["mean"] - before["mean"]
            noise = 2 * (ll["standard_error"] ** 2 + before["standard_error"] ** 2) ** 0.5
            if abs(change) < noise:
                print(f"The change, {change:+.2f} nats, is within its noise (two standard errors: {noise:.2f}): "
                      "more epochs or more data would show whether fine-tuning helps.")
    if run.is_dir():
        size = sum((run / name).stat().st_size for name in files_in(run))
        print(f"Checkpoints: {run} ({size / 2**20:.1f} MB; --resume continues from them; delete the folder when "
              "you no longer need to)")
    print(f"Saved preset to {path}")


def cmd_shard(args) -> int:
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.core.io import overlap
    from vae_zoo.data import shards, user_data

    overlap({"--out": args.out}, {"--data": args.data})
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
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.training.train import train_preset

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
                        overwrite=args.overwrite, verbose=1)
    _summary(path, args.workdir / args.name)
    return 0




def add_parsers(sub) -> None:
    p = add_command(sub, "train", cmd_train, "train a preset, or a fresh model on your data (--data); checkpoints "
                    "every epoch, --resume continues")
    p.add_argument("name", nargs="?", help="preset name, e.g. mnist-z20 (omit with --data)")
    add_recipe_flags(p, "total epochs (default: the preset's recipe; with --data 100, more for small data: "
                        "at least 500 updates)",
                     "initial learning rate (default: the preset's; 1e-3 with --data)")
    p.add_argument("--estimator", choices=["A", "B", "IW", "IW-DReG"],
                   help="SGVB estimator (eq. 6 or eq. 7), or the importance-weighted bound with k = --samples "
                        "(IW; IW-DReG: doubly reparameterized gradients for the encoder)")
    p.add_argument("--samples", type=POSITIVE_INT, help="L, samples of z per datapoint (k for IW and IW-DReG)")
    p.add_argument("--latent-dim", type=POSITIVE_INT, help="with --data: N_z of the fresh model")
    p.add_argument("--hidden", type=POSITIVE_INT, nargs="+", default=[500],
                   help="with --data: hidden units per layer (default 500)")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli",
                   help="with --data: the decoder (default bernoulli)")
    add_data_flags(p, "continue from the checkpoint in WORKDIR/NAME (or WORKDIR/<OUT's name> with --data)")
    p.add_argument("--out", type=Path, help="the finished preset goes to OUT/NAME (default: presets; the zoo's "
                   "own: saved_models); with --data, OUT is the preset folder itself (required)")

    p = add_command(sub, "shard", cmd_shard, "write your data as TFRecord shards (+ a held-out file) that train "
                    "and finetune stream from disk")
    p.add_argument("--data", type=Path, required=True, help="a .npy/.npz file or a folder of PNG/JPEG images")
    p.add_argument("--out", type=Path, required=True, help="the shard folder to create")
    p.add_argument("--shard-size", type=POSITIVE_INT, default=50_000, help="images per shard (default 50000)")
    p.add_argument("--holdout", type=FRACTION, default=0.1, help="share held out (default 0.1)")
    p.add_argument("--seed", type=SEED, help="seed of the order and the split (default 0)")

    p = add_command(sub, "finetune", cmd_finetune, "continue training a preset on your data; writes a preset folder")
    p.add_argument("preset", help="preset name or folder, e.g. mnist-z20")
    add_recipe_flags(p, "epochs (default 10, more for small data: at least 500 updates)",
                     "learning rate (default 1e-4, Adam)")
    p.add_argument("--freeze", choices=["encoder", "decoder"], help="keep one network's weights fixed")
    add_data_flags(p, "continue from the checkpoint in WORKDIR/<OUT's name>")
    p.add_argument("--out", type=Path, required=True, help="the preset folder to write")
