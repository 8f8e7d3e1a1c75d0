"""The `vae-zoo` command line (also `python -m vae_zoo`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _image_shape(model) -> tuple[int, int]:
    from vae_zoo.data import DATASETS

    for dim, shape in DATASETS.values():
        if dim == model.input_dim:
            return shape
    raise ValueError(f"No image shape known for input_dim={model.input_dim}.")


def cmd_train(args) -> int:
    from vae_zoo.registry import presets_dir
    from vae_zoo.train import train_preset

    path = train_preset(args.name, args.workdir, args.out or presets_dir(), args.resume, args.epochs,
                        overwrite=args.overwrite)
    print(f"Saved preset to {path}")
    return 0


def cmd_sample(args) -> int:
    from vae_zoo import registry, viz

    model = registry.load(args.model, compile=False)
    images = model.sample(args.n, seed=args.seed)
    viz.save_png(viz.grid(images, _image_shape(model)), args.output)
    print(f"Wrote {args.n} samples of {args.model} to {args.output}")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from vae_zoo import registry
    from vae_zoo.evaluation import evaluate

    model = registry.load(args.model, compile=False)
    metrics = evaluate(model, k=args.k, n_test=args.n_test, seed=args.seed, verbose=not args.quiet)
    print(json.dumps(metrics, indent=1))
    if args.write_card:
        if args.n_test is not None or args.k != 5000:
            raise ValueError("--write-card records the card's protocol only: full test set and k=5000. "
                             f"Received: --n-test {args.n_test} --k {args.k}")
        registry.update_card(args.model, metrics=metrics,
                             metrics_command=f"vae-zoo evaluate {args.model} --seed {args.seed}")
        print(f"Updated the model card of {args.model}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae-zoo", description="Pretrained AEVB variational auto-encoders.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a preset (checkpoints every epoch; --resume continues)")
    p.add_argument("name", help="preset name, e.g. mnist-z20")
    p.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in WORKDIR/NAME")
    p.add_argument("--workdir", type=Path, default=Path("runs"), help="checkpoint folder (default: runs)")
    p.add_argument("--out", type=Path, help="folder for the finished preset (default: the zoo's saved_models)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing preset folder")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="write a PNG grid of samples from the prior")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("-o", "--output", type=Path, default=Path("samples.png"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("evaluate", help="test ELBO (A and B), importance-weighted log-likelihood, train ELBO")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--k", type=int, default=5000, help="importance samples per test point (default 5000; 0 skips)")
    p.add_argument("--n-test", type=int, help="first N test points only (default: the full test set)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo noise")
    p.add_argument("--write-card", action="store_true", help="record the metrics in the preset's card.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"vae-zoo {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vae-zoo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
