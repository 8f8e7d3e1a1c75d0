"""Train a preset: `vae-zoo train NAME [--resume]` (or `python -m vae_zoo.train NAME`).

Checkpoints into `runs/NAME/` (resume with --resume); when done, writes the
preset folder `saved_models/NAME/` with a card holding the recipe, the training
log and the wall time. Metrics are added by `vae-zoo evaluate NAME --write-card`.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


_FLAGS = {"num_samples": "samples", "learning_rate": "lr", "batch_size": "batch-size"}


def train_preset(name: str, workdir: Path, out: Path, resume: bool, overrides: dict | None = None,
                 verbose: int | str = 2, overwrite: bool = False) -> Path:
    """Trains preset `name` (its recipe, with `overrides` such as epochs or lr) and saves it to out/name."""
    from vae_zoo import data, registry, training
    from vae_zoo.presets import PRESETS

    if name not in PRESETS:
        raise registry.unknown_preset(name)
    spec = PRESETS[name]
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    recipe = spec.recipe.replace(**overrides)
    binary = spec.likelihood == "bernoulli"
    x_train = data.load(spec.dataset, "train")
    x_test = data.test_set(spec.dataset, binary)
    model = training.build_model(spec.architecture, recipe, len(x_train))
    model, state = training.fit_with_checkpoints(
        model, x_train, recipe, workdir / name, binary, x_test, resume=resume, verbose=verbose,
    )
    card = {
        "name": name,
        "description": spec.description,
        "data": data.protocol(spec.dataset, binary),
        "recipe": recipe.to_dict(),
        "training": {
            "epochs": state["epoch"],
            "samples_seen": state["epoch"] * state["samples_per_epoch"],
            "wall_seconds": round(state["wall_seconds"], 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}",
            "command": f"vae-zoo train {name}" + "".join(f" --{_FLAGS.get(k, k)} {v}" for k, v in overrides.items()),
            "log": state["log"],
        },
    }
    return registry.save_preset(model, out / name, card, overwrite=overwrite)


def main(argv=None) -> int:
    from vae_zoo.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
