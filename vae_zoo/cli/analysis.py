"""`vae-zoo score`, `embed` and `interpolate`: what a model says about your images."""

from __future__ import annotations

import time
from pathlib import Path

from vae_zoo.cli.arguments import POSITIVE_INT, SEED, STEPS, add_command, image_shape, load

DATA_HELP = "a .npy/.npz file, a PNG/JPEG image or a folder of them, or shards"
ROWS_KEY = "vae-zoo rows"  # the PNG text chunk naming the images of a picture, as a JSON list in grid order


def _check_outputs(args, inputs: dict) -> None:
    """Before any work: outputs that overlap an input, and a --unusual file that exists (without
    --overwrite); `-o` itself was checked before TensorFlow started (`cli.main`)."""
    import os

    from vae_zoo.core.io import overlap, refuse_existing

    unusual = getattr(args, "unusual", None)
    overlap({"-o": args.output, "--unusual": unusual}, inputs)
    if unusual is not None and os.path.lexists(unusual) and not args.overwrite:
        raise refuse_existing(unusual)


def _row_names(data: Path, n: int) -> list[str]:
    """The image files' names (a folder of images, or one image), else "row i" (arrays, shards'
    held-out rows)."""
    from vae_zoo.data.shards import is_shards
    from vae_zoo.data.user_data import IMAGE_SUFFIXES, image_files

    if data.is_dir() and not is_shards(data):
        names = [f.name for f in image_files(data)]
    else:
        names = [data.name] if data.suffix.lower() in IMAGE_SUFFIXES else []
    return names if len(names) == n else [f"row {i}" for i in range(n)]


def cmd_score(args) -> int:
    import numpy as np

    from vae_zoo.core.io import atomic_write_text
    from vae_zoo.core.tables import csv_text, names_json
    from vae_zoo.paper import viz
    from vae_zoo.zoo.evaluation import evaluation_data

    if args.output.suffix.lower() != ".csv":
        from vae_zoo.core.errors import InvalidArgumentError

        raise InvalidArgumentError(f"-o takes a .csv file. Received: {args.output}")
    _check_outputs(args, {"--data": args.data})
    model = load(args.model)
    chosen = evaluation_data(model, args.model, args.data)
    started = time.time()
    print(f"Scoring {chosen.test_set}: importance-weighted log p(x), k={args.k}", flush=True)
    log_px, se = model.score(chosen.x_test, num_samples=args.k, seed=args.seed, verbose=not args.quiet)
    order = np.argsort(log_px, kind="stable")  # most unusual first
    rank = np.empty(len(order), int)
    rank[order] = np.arange(1, len(order) + 1)
    names = _row_names(args.data, len(log_px))
    table = csv_text(["row", "name", "log_px", "standard_error", "rank"],
                     ([i, names[i], round(float(log_px[i]), 4), round(float(se[i]), 4), int(rank[i])]
                      for i in range(len(log_px))))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, table, overwrite=args.overwrite)
    images = f"{len(log_px)} image{'s' * (len(log_px) != 1)}"
    print(f"Wrote the log p(x) of {images} to {args.output} ({time.time() - started:.1f} s); most "
          f"unusual: {', '.join(f'{names[i]} ({log_px[i]:.1f})' for i in order[:3])}")
    if args.unusual:
        top = order[:args.top]
        viz.save_png(viz.grid(chosen.x_test[top], image_shape(model, args.model)), args.unusual,
                     overwrite=args.overwrite, text={ROWS_KEY: names_json([names[i] for i in top])})
        print(f"Wrote the {len(top)} most unusual images, lowest log p(x) first, to {args.unusual}")
    return 0


def cmd_embed(args) -> int:
    import io

    import numpy as np

    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.core.io import atomic_write_bytes
    from vae_zoo.core.tables import names_array
    from vae_zoo.zoo.evaluation import evaluation_data

    if args.output.suffix.lower() not in (".npz", ".npy"):
        raise InvalidArgumentError(f"-o takes a .npz file (means and variances) or a .npy file (means). Received: "
                                   f"{args.output}")
    _check_outputs(args, {"--data": args.data})
    model = load(args.model)
    chosen = evaluation_data(model, args.model, args.data, binarize=False)
    means, variances = model.embed(chosen.x_test)
    buffer = io.BytesIO()
    names = _row_names(args.data, len(means))
    if args.output.suffix.lower() == ".npz":
        np.savez(buffer, z_mean=means, z_var=variances, names=names_array(names))
    else:
        np.save(buffer, means)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.output, buffer.getvalue(), overwrite=args.overwrite)
    what = ("means (z_mean), variances (z_var) and row names (names)" if args.output.suffix.lower() == ".npz"
            else "means")
    print(f"Wrote the posterior {what} of {chosen.test_set}, shape {means.shape}, to {args.output}")
    return 0


def cmd_interpolate(args) -> int:
    import numpy as np

    from vae_zoo.core.tables import names_json
    from vae_zoo.data.shapes import check_image_shape
    from vae_zoo.data.user_data import read_image_files
    from vae_zoo.paper import viz

    _check_outputs(args, {"A": args.a, "B": args.b})
    model = load(args.model)
    shape = image_shape(model, args.model)
    ends, read_shape = read_image_files([args.a, args.b])
    check_image_shape(f"{args.a} and {args.b}", read_shape, shape, args.model)
    path = model.interpolate(ends[0], ends[1], steps=args.steps)
    row = np.concatenate([ends[:1], path, ends[1:]])
    names = [args.a.name, *(f"decoded point {i + 1} of {args.steps}" for i in range(args.steps)), args.b.name]
    viz.save_png(viz.grid(row, shape, columns=len(row)), args.output, overwrite=args.overwrite,
                 text={ROWS_KEY: names_json(names)})
    print(f"Wrote {args.a.name}, the {args.steps} decoded points between its and {args.b.name}'s posterior means, "
          f"and {args.b.name} to {args.output}")
    return 0


def add_parsers(sub) -> None:
    p = add_command(sub, "score", cmd_score, "per-image log p(x) with its standard error (an anomaly score) as a "
                    "CSV, and the most unusual images as a PNG")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    p.add_argument("-o", "--output", type=Path, required=True, help="CSV file: row, name, log_px, standard_error, "
                   "rank (1 = most unusual)")
    p.add_argument("--k", type=POSITIVE_INT, default=1000, help="importance samples per image (default 1000)")
    p.add_argument("--unusual", type=Path, help="also write the most unusual images to this PNG (their names, "
                   "in order, in its text chunk 'vae-zoo rows' as a JSON list)")
    p.add_argument("--top", type=POSITIVE_INT, default=32, help="images in --unusual (default 32)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the importance samples")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(output_is_file=True)

    p = add_command(sub, "embed", cmd_embed, "the posterior means and variances of your images, as .npz")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    p.add_argument("-o", "--output", type=Path, required=True, help=".npz (z_mean, z_var, names: the rows' file "
                   "names) or .npy (z_mean)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(output_is_file=True)

    p = add_command(sub, "interpolate", cmd_interpolate, "decode the straight path between two images' posterior "
                    "means, as a PNG row")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("a", type=Path, help="first image (PNG/JPEG, the model's image size)")
    p.add_argument("b", type=Path, help="second image")
    p.add_argument("--steps", type=STEPS, default=10, help="decoded points, ends included (default 10, at most 1000)")
    p.add_argument("-o", "--output", type=Path, default=Path("interpolation.png"),
                   help="PNG file (default interpolation.png)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(output_is_file=True)
