"""Writes one kind of file over and over until killed (driven by test_faults.py).

    python fault_writer.py KIND TARGET [SOURCE]

KIND: preset | export | checkpoint | download | race-preset. Prints "ready" after the first
complete write, so the test kills it in the middle of later ones. A race-preset writer prints
"ready" once its model is built and writes when it reads a line on stdin, so the test starts
two writes at one moment. Only what a kind uses is imported (a download needs no TensorFlow).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vae_zoo import data  # noqa: E402
from vae_zoo.errors import OutputExistsError  # noqa: E402


def versioned_model(i: int):
    import vae_zoo

    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=64, seed=0)
    model.weights[0].assign(np.full(model.weights[0].shape, float(i), np.float32))
    return model


def main(kind: str, target: Path, source: str | None = None) -> None:
    if kind == "race-preset":  # one write when told, no overwrite: exactly one of two racers may win
        model = versioned_model(os.getpid())
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            model.save_to_preset(target, card={"version": os.getpid()})
            print("won", flush=True)
        except OutputExistsError:
            print("lost", flush=True)
        return
    if kind == "download":
        os.environ["XDG_CACHE_HOME"] = str(target)
        os.environ.pop(data.DATA_ENV, None)
        data.FREY = data.Source("frey_rawface.mat", Path(source).as_uri(), data.FREY.sha256)
    else:
        from vae_zoo import exporters, training
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
            print("ready", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
