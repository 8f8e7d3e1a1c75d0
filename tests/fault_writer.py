"""Writers for test_faults.py: each writes one kind of file over and over until killed.

    python fault_writer.py KIND TARGET [SOURCE]

KIND: preset | export | checkpoint | download | race-preset. The process imports what the kind
needs (a download needs no TensorFlow), runs no TensorFlow op, prints "zygote" and then forks a
fresh writer for every line it reads on stdin: the writers start in a fraction of a second instead
of importing TensorFlow each (TensorFlow is safe to fork before its runtime starts).

- A writer of preset | export | checkpoint | download prints "ready PID" after its first complete
  write, so the test SIGKILLs PID in the middle of a later one.
- For race-preset, a line "race PATH" forks two writers: each builds its model, prints "ready PID",
  and writes a preset to PATH once (no overwrite) when the test sends "go": exactly one of the two
  may win; each then prints "won PID" or "lost PID".
"""

import contextlib
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from forked_cli import say  # noqa: E402  (one write(2) per line: racers' lines never interleave)

from vae_zoo import data  # noqa: E402
from vae_zoo.core.errors import OutputExistsError  # noqa: E402


def versioned_model(i: int):
    import vae_zoo

    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=64, seed=0)
    model.weights[0].assign(np.full(model.weights[0].shape, float(i), np.float32))
    return model


def race(target: Path, go: int) -> None:
    """One racer: the model built, a write when `go` becomes readable."""
    model = versioned_model(os.getpid())
    say(f"ready {os.getpid()}")
    os.read(go, 1)
    try:
        model.save_to_preset(target, card={"version": os.getpid()})
        say(f"won {os.getpid()}")
    except OutputExistsError:
        say(f"lost {os.getpid()}")


def write_until_killed(kind: str, target: Path) -> None:
    if kind != "download":
        from vae_zoo.deploy import exporters
        from vae_zoo.training import train as training
    i = 0
    while True:
        i += 1
        if kind == "preset":
            versioned_model(i).save_to_preset(target, card={"version": i}, overwrite=True)
        elif kind == "export":
            exporters.export(versioned_model(i), target, formats="onnx", parts="decoder", overwrite=True)
        elif kind == "checkpoint":
            model = versioned_model(i)
            model.compile("adam")
            training.save_checkpoint(model, target, {"epoch": i})
        elif kind == "download":
            (target / "vae_zoo" / "frey_rawface.mat").unlink(missing_ok=True)
            data.locate(data.FREY)
        if i == 1:
            say(f"ready {os.getpid()}")


def fork(run) -> int:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            run()
        finally:
            os._exit(0)
    return pid


def main(kind: str, target: Path, source: str | None = None) -> None:
    if kind == "download":
        os.environ["XDG_CACHE_HOME"] = str(target)
        os.environ.pop(data.DATA_ENV, None)
        data.FREY = data.Source("frey_rawface.mat", Path(source).as_uri(), data.FREY.sha256)
    else:
        import vae_zoo.deploy.exporters  # noqa: F401  (imported once, here, before any fork)
        import vae_zoo.training.train  # noqa: F401
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed writers are reaped at once
    say("zygote")
    for line in sys.stdin:
        if kind == "race-preset":  # two racers, released together by one write to a pipe
            go, release = os.pipe()
            path = Path(line.split(maxsplit=1)[1].strip())
            racers = [fork(lambda: race(path, go)) for _ in range(2)]
            sys.stdin.readline()  # "go"
            os.write(release, b"gg")
            for pid in racers:  # with SIGCHLD ignored, waitpid returns (ECHILD) once the child is gone
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            os.close(go)
            os.close(release)
        else:
            fork(lambda: write_until_killed(kind, target))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
