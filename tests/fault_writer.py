"""Writes one kind of file over and over until killed (driven by test_faults.py).

    python fault_writer.py KIND TARGET [SOURCE or START TIME]

KIND: preset | export | checkpoint | download | race-preset. Prints "ready" after the first
complete write, so the test kills it in the middle of later ones.
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import vae_zoo  # noqa: E402
from vae_zoo import data, exporters, training  # noqa: E402
from vae_zoo.errors import OutputExistsError  # noqa: E402


def versioned_model(i: int):
    model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=64, seed=0)
    model.weights[0].assign(np.full(model.weights[0].shape, float(i), np.float32))
    return model


def main(kind: str, target: Path, source: str | None = None) -> None:
    if kind == "race-preset":  # one write at time SOURCE, no overwrite: exactly one of two racers may win
        model = versioned_model(os.getpid())
        time.sleep(max(0.0, float(source) - time.time()))
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
