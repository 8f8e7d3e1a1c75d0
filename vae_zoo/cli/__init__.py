"""The `vae-zoo` command line (also `python -m vae_zoo`).

Every command has `--help`; each module of this package defines its commands' arguments next
to their implementation (`add_parsers`), with the shared argument types and flag groups in
`arguments`. The package's own errors (`VaeZooError`: unknown preset, missing data, bad
arguments, a file that would be overwritten) print one line on stderr and exit with status 2;
any other exception is a bug and keeps its traceback (status 1).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from vae_zoo import _import_tensorflow_quietly
from vae_zoo.cli import analysis, catalog, evaluate, export, images, paper, training

# The command groups, in the order `vae-zoo --help` lists their commands.
COMMAND_GROUPS = (catalog, training, evaluate, images, analysis, paper, export)


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


# What a disk says when it is full, read-only or refuses a file's size: the environment, not a bug.
REFUSED_WRITES = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO}


def _refused_write(err: Exception) -> str | None:
    """What the file system said, in one line, when `err` is the disk refusing (or a path that
    cannot be one); None for anything else. TensorFlow's writers (SavedModel, TFRecord) report
    the operating system's words in their own error types."""
    if isinstance(err, OSError) and (err.filename is not None or err.errno in REFUSED_WRITES):
        where = f"{err.filename}: " if err.filename else "a write failed: "
        return where + (err.strerror or str(err)).strip().splitlines()[0]  # h5py's messages run over lines
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.OpError):
        said = [os.strerror(code) for code in REFUSED_WRITES if os.strerror(code) in err.message]
        if said:
            return f"a write failed: {said[0]} ({err.message.strip().splitlines()[0][-160:]})"
    return None


def _not_a_file_path(path) -> str | None:
    """Why `path` cannot become a file (a folder is there, or a parent is a file), or None."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return f"{path} is a folder; -o takes the name of a file to write (--overwrite never replaces a folder)."
    parent = os.path.dirname(path)
    while parent and not os.path.lexists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        return f"{parent} is a file, so {path} cannot be created in it: choose another -o."
    return None


def main(argv=None) -> int:
    from vae_zoo.core.errors import VaeZooError

    args = build_parser().parse_args(argv)
    if getattr(args, "output_is_file", False) and (problem := _not_a_file_path(args.output)):
        print(f"vae-zoo {args.command}: error: {problem}", file=sys.stderr)  # before any work, whatever the flags
        return 2
    if getattr(args, "output_is_file", False) and not args.overwrite and os.path.lexists(args.output):
        from vae_zoo.core.io import refuse_existing  # a file that is there is refused before TensorFlow starts

        print(f"vae-zoo {args.command}: error: {refuse_existing(args.output)}", file=sys.stderr)
        return 2
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
    except Exception as err:  # the file system refused (a file where a folder goes, no space, read-only, ...)
        reason = _refused_write(err)
        if reason is None:
            raise  # neither about a path nor the disk: a bug, keeps its traceback
        print(f"vae-zoo {args.command}: error: {reason}. Check the path (a folder where a folder is needed), the "
              "free space and the permissions; the unfinished output was removed.", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"vae-zoo {args.command}: {err or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

