import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One compute thread per TensorFlow process: the two xdist workers (and the processes the tests start)
# share two cores, and two threads each would oversubscribe them.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# XLA's programs are kept on disk (keyed by their HLO's fingerprint) and loaded by the next process
# that compiles the same one: both xdist workers and every process a test starts compile the same
# training steps and estimators.
os.environ.setdefault("TF_XLA_FLAGS", "--tf_xla_persistent_cache_directory="
                      + str(Path(tempfile.gettempdir()) / f"vae-zoo-tests-xla-cache-{os.getuid()}"))
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # a data folder beside the checkout, if any
if _SHARED.is_dir():
    os.environ.setdefault("VAE_ZOO_DATA", str(_SHARED))
os.environ.pop("VAE_ZOO_OFFLINE", None)  # the tests that need it set it themselves

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mnist_subset():
    """2,000 training and 500 test MNIST images (pixels in [0, 1]) with labels."""
    from vae_zoo import data

    x, y = data.load("mnist", "train", labels=True)
    xt, yt = data.load("mnist", "test", labels=True)
    return x[:2000], y[:2000], xt[:500], yt[:500]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def in_process(capsys, monkeypatch):
    """`vae-zoo ARGS` as `vae_zoo.cli.main(ARGS)` in this interpreter (TensorFlow already
    imported): the console script is `sys.exit(main())`, so its exit status, output and files
    are these. Used for refusals and small commands; the console script itself runs in the
    tests that train, export and evaluate."""
    from vae_zoo import cli

    def run(*args, cwd=None, check=True):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as stop:  # argparse's own errors and --help
            code = stop.code
        out = capsys.readouterr()
        if check and code != 0:
            raise AssertionError(f"vae-zoo {' '.join(map(str, args))} failed:\n{out.err}")
        return Result(code, out.out, out.err)

    return run


@pytest.fixture(scope="session")
def forked_cli():
    """A server of `vae-zoo` processes (forked_cli.py): each command a process of its own, forked
    from one that imported TensorFlow once."""
    from forked_cli import Server

    server = Server()
    yield server
    server.close()


# The files that take longest (`--durations` of a full run), started first: with `--dist loadfile`
# each file runs whole on one worker, so the long ones at the end of the queue would leave the
# other worker idle while they finish.
# (pyproject.toml turns off xdist's own reordering, by number of tests per file, which would undo this.)
LONGEST_FIRST = ["test_model.py", "test_marginal_likelihood.py", "test_cli.py", "test_exact.py", "test_reproduce.py",
                 "test_training.py", "test_distributed.py", "test_docs.py"]


def pytest_collection_modifyitems(items):
    def rank(item):
        name = Path(str(item.fspath)).name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file, and of the other files, is kept
