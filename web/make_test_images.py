"""Writes web/test-images.json: the first 8 test images of MNIST (binarized with the test set's
fixed seed, as the presets are measured) and of Frey Face, as uint8 rows, for the page's
interpolation panel.

    VAE_ZOO_DATA=../shared/data python web/make_test_images.py
"""

import json
from pathlib import Path

import numpy as np

from vae_zoo import data

OUT = Path(__file__).resolve().parent / "test-images.json"


def main() -> None:
    images = {}
    for name in ("mnist", "frey"):
        x = data.test_set(name, binary=name == "mnist")[:8]
        images[str(data.DATASETS[name].input_dim)] = {
            "dataset": name, "image_shape": list(data.DATASETS[name].image_shape),
            "rows": np.round(x * 255).astype(np.uint8).tolist()}
    OUT.write_text(json.dumps(images, separators=(",", ":")))
    print(f"Wrote {OUT}")


if __name__ == "__main__":
    main()
