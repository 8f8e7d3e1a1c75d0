"""Image grids written as PNG files (Pillow)."""

from __future__ import annotations

import io
import os

import numpy as np

from vae_zoo.errors import InvalidArgumentError
from vae_zoo.io import atomic_write_bytes, refuse_existing
from vae_zoo.validation import check_positive_int


def grid(images: np.ndarray, image_shape: tuple[int, int], columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tiles flat images (n, h*w) with values in [0, 1] into one uint8 array."""
    n = len(images)
    h, w = image_shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    canvas = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad), np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0).reshape(n, h, w)):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = image
    return np.round(canvas * 255).astype(np.uint8)


def save_png(pixels: np.ndarray, path: str | os.PathLike, scale: int = 3, overwrite: bool = False) -> None:
    """Writes a grey uint8 array as a PNG, enlarged `scale` times so digits are legible.

    Raises:
        OutputExistsError: `path` exists and `overwrite` is False (checked first).
    """
    from PIL import Image

    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)  # before rendering
    image = Image.fromarray(pixels, mode="L")
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue(), overwrite)


def manifold(model, n: int = 20) -> np.ndarray:
    """Decoder means over a regular grid of a 2-D latent space (paper Figure 4).

    z = Phi^-1(u) for u on an n x n grid inside (0, 1)^2, so the grid covers the
    prior's probability mass evenly.

    Returns:
        float32 array (n * n, input_dim), row-major from top-left.
    """
    from scipy.stats import norm

    n = check_positive_int("n", n)
    if model.latent_dim != 2:
        raise InvalidArgumentError(f"A manifold needs a 2-D latent space. Received: latent_dim={model.latent_dim}")
    u = (np.arange(n) + 0.5) / n
    z1, z2 = np.meshgrid(norm.ppf(u), norm.ppf(u)[::-1])
    z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)
    return np.asarray(model.decode(z).mean(), np.float32)


def plot_curves(logs: dict[str, list[dict]], path: str | os.PathLike, overwrite: bool = False) -> None:
    """Lower bound against training samples seen, train and test (paper Figure 2).

    Args:
        logs: label -> training log rows (with `samples_seen`, `train_elbo` and,
            on some rows, `test_elbo`).
        path: PNG file to write.
        overwrite: replace an existing file.
    """
    import matplotlib

    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)  # before rendering
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, (label, rows) in enumerate(logs.items()):
        color = f"C{i % 10}"
        ax.plot([r["samples_seen"] for r in rows], [r["train_elbo"] for r in rows], color=color, lw=1,
                label=f"{label} train")
        test = [r for r in rows if "test_elbo" in r]
        ax.plot([r["samples_seen"] for r in test], [r["test_elbo"] for r in test], color=color, lw=1, ls="--",
                label=f"{label} test")
    ax.set_xscale("log")
    ax.set_xlabel("training samples evaluated")
    ax.set_ylabel("lower bound (nats per datapoint)")
    finals = [rows[-1]["train_elbo"] for rows in logs.values() if rows]
    if finals:  # frame the converged part of every curve; the first epochs fall below
        top, bottom = max(finals), min(finals)
        ax.set_ylim(bottom - 0.1 * abs(top) - 10, top + 0.02 * abs(top) + 2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue(), overwrite)
