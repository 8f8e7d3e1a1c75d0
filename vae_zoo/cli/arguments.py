"""What the commands share: argument types that answer in one line, flag groups, and the
helpers that load a model or join a cluster. Building a parser imports nothing heavy."""

from __future__ import annotations

import argparse
from pathlib import Path


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
STEPS = _number(int, lambda v: 0 < v <= 1000, "an int in 1..1000")  # decoded images, bounded before any work
FRACTION = _number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
SEED = _number(int, lambda v: 0 <= v <= 2**31 - 1, "an int from 0 to 2147483647")  # validation.MAX_SEED


def _whole(text: str) -> int:
    """An int written plainly or in scientific notation ("3e6")."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


SAMPLE_COUNT = _number(_whole, lambda v: 0 < v <= 10**12, "a positive whole number such as 3000000 or 3e6")


def add_command(sub, name: str, run, help_text: str) -> argparse.ArgumentParser:
    """A sub-command `name` that calls `run(args)`."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(run=run)
    return p


def add_output(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("-o", "--output", type=Path, default=Path(default), help=f"PNG file (default {default})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(output_is_file=True)  # checked before TensorFlow starts (see cli.main)


def add_cluster_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--workers", nargs="+", metavar="HOST:PORT", help=f"{what} data-parallel across these "
                   "worker processes (tf.distribute; or set TF_CONFIG); start each with the same list")
    p.add_argument("--task-index", type=NON_NEGATIVE_INT, help="this worker's place in --workers (0: the chief, "
                   "which alone writes checkpoints and results)")
    p.add_argument("--peer-timeout", type=POSITIVE_FLOAT, default=300.0,
                   help="seconds to wait for the other workers before stopping with an error (default 300)")


def add_data_flags(p: argparse.ArgumentParser, resume_help: str) -> None:
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


def add_recipe_flags(p: argparse.ArgumentParser, epochs_help: str, lr_help: str) -> None:
    p.add_argument("--epochs", type=POSITIVE_INT, help=epochs_help)
    p.add_argument("--batch-size", type=POSITIVE_INT, help="minibatch size M (default 100; with --data, batches of "
                   "about 100 that split the training rows evenly)")
    p.add_argument("--optimizer", choices=["adam", "adagrad"])
    p.add_argument("--lr", type=POSITIVE_FLOAT, help=lr_help)
    p.add_argument("--seed", type=SEED)


def load(name_or_path: str):
    """A preset by name or folder, uncompiled."""
    from vae_zoo.zoo import registry

    return registry.load(name_or_path, compile=False)


def image_shape(model, name_or_path: str) -> tuple[int, int]:
    """The image size of a model's data: from its card (models of the user's data), else its data set."""
    from vae_zoo.data.shapes import image_shape as shape_of
    from vae_zoo.zoo.evaluation import dataset_of

    shape = shape_of(name_or_path, model.input_dim)
    if shape is None:
        dataset_of(model)  # raises, naming the sizes the zoo knows
    return shape


def join_cluster(args):
    """The cluster of --workers/--task-index or TF_CONFIG, joined before any other TensorFlow work."""
    from vae_zoo.core.cluster import cluster_from

    found = cluster_from(args.workers, args.task_index)
    if found is not None:
        from vae_zoo.training import distributed

        distributed.connect(found, args.peer_timeout)
    return found
