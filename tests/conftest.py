import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("VAE_ZOO_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

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
