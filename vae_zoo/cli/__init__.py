"""The `vae-zoo` command line (also `python -m vae_zoo`).

Every command has `--help`; each module of this package defines its commands' arguments next
to their implementation (`add_parsers`), with the shared argument types and flag groups in
`arguments`. The package's own errors (`VaeZooError`: unknown preset, missing data, bad
arguments, a file that would be overwritten) print one line on stderr and exit with status 2;
any other exception is a bug and keeps its traceback (status 1).
"""

from __future__ import annotations

import argparse
import os
import sys

from vae_zoo.cli import catalog, evaluate, export, images, paper, training

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The command groups, in the order `vae-zoo --help` lists their commands.
COMMAND_GROUPS = (catalog, training, evaluate, images, paper, export)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `vae-zoo train: error: argument --epochs: ...`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")




def build_parser() -> argparse.ArgumentParser:
    """The argument parser; building it imports nothing heavy, so --help is instant."""
    parser = _Parser(prog="vae-zoo", description="Pretrained AEVB variational auto-encoders "
                     "(Kingma & Welling, arXiv 1312.6114).")
    from vae_zoo import __version__

    parser.add_argument("--version", action="version", version=f"vae-zoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(sub)
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

        tf.get_logger().setLevel("ERROR")  # TensorFlow's advice to developers (retracing, eager collectives)
        if initialize:
            tf.constant(0.0) + 1.0  # initialises the devices, which logs too
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def main(argv=None) -> int:
    from vae_zoo.errors import VaeZooError

    args = build_parser().parse_args(argv)
    if getattr(args, "needs_tensorflow", True):
        _import_tensorflow_quietly(initialize=not (getattr(args, "workers", None) or os.environ.get("TF_CONFIG")))
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `vae-zoo list | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VaeZooError as err:  # the package's own errors: one line, no traceback
        print(f"vae-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system refused (a file where a folder goes, no space, read-only, ...)
        if err.filename is None:
            raise  # not about a path: a bug, keeps its traceback
        print(f"vae-zoo {args.command}: error: {err.filename}: {err.strerror or err}. Check the path (a folder "
              "where a folder is needed), the free space and the permissions.", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"vae-zoo {args.command}: {err or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

