"""`vae-zoo sample`, `reconstruct`, `manifold` and `curves`: pictures of a model, as PNG files."""

from __future__ import annotations

import json
from pathlib import Path

from vae_zoo.cli.arguments import GRID, POSITIVE_INT, SEED, add_command, add_output, image_shape, load

DEFAULT_RECONSTRUCTIONS = 32  # images `reconstruct` shows unless -n says otherwise (or there are fewer)


def cmd_sample(args) -> int:
    from vae_zoo.paper import viz

    grids = {}
    for name in args.model:
        model = load(name)
        grids[name] = (model.latent_dim, viz.grid(model.sample(args.n, seed=args.seed), image_shape(model, name)))
    if len(grids) == 1:
        viz.save_png(grids[args.model[0]][1], args.output, overwrite=args.overwrite)
    else:  # side by side, as the paper's Figure 5
        viz.plot_panels({f"{name} ({z}-D latent space)": pixels for name, (z, pixels) in grids.items()},
                        args.output, overwrite=args.overwrite)
    print(f"Wrote {args.n} samples of {', '.join(args.model)} to {args.output}")
    return 0


def cmd_reconstruct(args) -> int:
    import numpy as np

    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.paper import viz
    from vae_zoo.zoo.evaluation import evaluation_data

    model = load(args.model)
    chosen = evaluation_data(model, args.model, args.data)
    x = chosen.x_test
    if args.n is not None and args.n > len(x):
        raise InvalidArgumentError(f"-n must be at most {len(x)}, the images there are ({chosen.test_set}). "
                                   f"Received: -n {args.n}")
    x = x[: args.n or DEFAULT_RECONSTRUCTIONS]
    pairs = np.stack([x, model.reconstruct(x)], axis=1).reshape(-1, model.input_dim)
    viz.save_png(viz.grid(pairs, image_shape(model, args.model), columns=2 * args.pairs_per_row), args.output,
                 overwrite=args.overwrite)
    print(f"Wrote {len(x)} images (left; from {chosen.test_set}) and their reconstructions (right) to {args.output}")
    return 0


def cmd_manifold(args) -> int:
    from vae_zoo.paper import viz

    model = load(args.model)
    shape = image_shape(model, args.model)
    viz.save_png(viz.grid(viz.manifold(model, args.grid), shape, columns=args.grid, pad=0), args.output,
                 overwrite=args.overwrite)
    print(f"Wrote the {args.grid}x{args.grid} latent manifold of {args.model} to {args.output}")
    return 0


def _read_log(source: str) -> tuple[str, list[dict]]:
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.zoo import registry

    path = Path(source)
    if path.is_file():
        return path.parent.name if path.name == "state.json" else path.stem, _training_log(path)
    for state in (path / "state.json", path / "checkpoint" / "state.json"):  # a checkpoint or a run folder
        if state.is_file():
            return path.name, _training_log(state)
    card = registry.read_card(source)
    training = card.get("training")
    if not isinstance(training, dict):
        raise InvalidArgumentError(f"{source}'s card has no training log.")
    return card.get("name", source), _training_log(source, training)


def _training_log(source, content=None) -> list[dict]:
    """The log of a run's state.json (or of a card's `training`), checked for its shape first."""
    from vae_zoo.core.errors import InvalidArgumentError, first_line

    if content is None:
        try:
            content = json.loads(Path(source).read_text())
        except (OSError, ValueError) as err:
            raise InvalidArgumentError(f"{source} cannot be read as JSON ({first_line(err)}): give a run's "
                                       "state.json, a run or checkpoint folder, or a preset.") from None
    log = content.get("log") if isinstance(content, dict) else None
    def is_row(row) -> bool:
        return isinstance(row, dict) and all(isinstance(row.get(k), int | float) and not isinstance(row.get(k), bool)
                                             for k in ("samples_seen", "train_elbo", *(["test_elbo"] if "test_elbo"
                                                                                       in row else [])))

    if not isinstance(log, list) or not all(map(is_row, log)):
        raise InvalidArgumentError(f"{source} is not a training log (an object whose 'log' is a list of rows with "
                                   "numbers 'samples_seen' and 'train_elbo'): give a run's state.json, a run or "
                                   "checkpoint folder, or a preset.")
    return log


def cmd_curves(args) -> int:
    from vae_zoo.paper import viz

    logs = dict(_read_log(s) for s in args.logs)
    viz.plot_curves(logs, args.output, overwrite=args.overwrite)
    print(f"Wrote lower-bound curves of {', '.join(logs)} to {args.output}")
    return 0


def add_parsers(sub) -> None:
    p = add_command(sub, "sample", cmd_sample, "write a PNG grid of decoder means at z ~ N(0, I) (several "
                    "models: their grids side by side, e.g. the paper's Figure 5)")
    p.add_argument("model", nargs="+", help="preset name or preset folder (several: one panel each)")
    p.add_argument("-n", type=POSITIVE_INT, default=64, help="number of samples (default 64)")
    add_output(p, "samples.png")
    p.add_argument("--seed", type=SEED, default=0)

    p = add_command(sub, "reconstruct", cmd_reconstruct, "write test images beside their reconstructions as a PNG")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("-n", type=POSITIVE_INT, help=f"number of test images (default {DEFAULT_RECONSTRUCTIONS}, or all "
                                                  "of them when there are fewer)")
    p.add_argument("--data", type=Path, help="reconstruct these images (a .npy/.npz file, a folder of PNG/JPEG "
                   "images, or shards); default: the preset's test set or the held-out rows its card records")
    p.add_argument("--pairs-per-row", type=POSITIVE_INT, default=8)
    add_output(p, "reconstructions.png")

    p = add_command(sub, "manifold", cmd_manifold, "write the learned 2-D manifold as a PNG (paper Figure 4)")
    p.add_argument("model", help="a preset with a 2-D latent space, e.g. mnist-z2")
    p.add_argument("--grid", type=GRID, default=20, help="images per side (default 20, at most 200)")
    add_output(p, "manifold.png")

    p = add_command(sub, "curves", cmd_curves, "plot lower bound against training samples (paper Figure 2)")
    p.add_argument("logs", nargs="+", help="preset names/folders, checkpoint folders or state.json files")
    add_output(p, "curves.png")
