"""Image grids written as PNG files (Pillow)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from vae_zoo.core.errors import InvalidArgumentError, WriteError
from vae_zoo.core.io import atomic_write_bytes, refuse_existing
from vae_zoo.core.validation import check_positive_int


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


def _write_picture(path: str | os.PathLike, payload: bytes, overwrite: bool) -> None:
    """Writes a picture atomically, making its folder first (`-o new/folder/x.png` works)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(err.errno, f"Cannot make the folder of {path}: {err.strerror}. Check the path.") from err
    atomic_write_bytes(path, payload, overwrite)


def save_png(pixels: np.ndarray, path: str | os.PathLike, scale: int = 3, overwrite: bool = False,
             text: dict[str, str] | None = None) -> None:
    """Writes a grey uint8 array as an image (PNG, or the format of the path's suffix), enlarged
    `scale` times so digits are legible; a PNG carries `text` as UTF-8 text chunks (iTXt), which
    `PIL.Image.open(path).text` reads back.

    Raises:
        OutputExistsError: `path` exists and `overwrite` is False (checked first).
    """
    from PIL import Image

    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)  # before rendering
    image_format = Image.registered_extensions().get(Path(path).suffix.lower())
    if image_format not in ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"):
        raise InvalidArgumentError(f"{path}: name the file .png (or .jpg, .webp, .tiff, .bmp, .gif); its "
                                   "suffix chooses the image format.")
    image = Image.fromarray(pixels, mode="L")
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    if image_format == "PNG" and text:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value)
        image.save(buffer, format=image_format, pnginfo=info)
    else:
        image.save(buffer, format=image_format)
    _write_picture(path, buffer.getvalue(), overwrite)


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
        from vae_zoo.zoo.presets import PRESETS

        two_d = ", ".join(name for name, spec in PRESETS.items() if spec.latent_dim == 2)
        raise InvalidArgumentError(f"A manifold needs a 2-D latent space; the zoo's 2-D presets are {two_d}. "
                                   f"Received: latent_dim={model.latent_dim}")
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
    from matplotlib.figure import Figure  # not pyplot: the caller's backend stays as it is

    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)  # before rendering
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
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
    _write_picture(path, buffer.getvalue(), overwrite)


def plot_panels(panels: dict[str, np.ndarray], path: str | os.PathLike, overwrite: bool = False) -> None:
    """Image grids side by side, each under its title (e.g. the paper's Figure 5: samples of models
    with 2-, 5-, 10- and 20-D latent spaces).

    Args:
        panels: title -> uint8 pixels (height, width), as `grid` makes them.
        path: PNG file to write.
        overwrite: replace an existing file.
    """
    from matplotlib.figure import Figure

    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)  # before rendering
    fig = Figure(figsize=(3.2 * len(panels), 3.6), dpi=120)
    for ax, (title, pixels) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels.items()):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _write_picture(path, buffer.getvalue(), overwrite)


_METRIC_LABELS = {"bound": "lower bound (nats per datapoint)", "marginal_likelihood": "marginal log-likelihood (nats)"}
_DATASET_NAMES = {"mnist": "MNIST", "frey": "Frey Face"}
# The paper's y ranges: Figure 2 per data set, Figure 3 per training-set size.
_PAPER_Y = {("figure2", "mnist"): (-150, -100), ("figure2", "frey"): (0, 1600),
            ("figure3", 1000): (-160, -100), ("figure3", 50_000): (-160, -125)}


def plot_figure(results: dict, path: str | os.PathLike, overwrite: bool = False) -> None:
    """A figure of the paper as `reproduce.run` measured it: one panel per N_z (Figure 2, a row per
    data set, log axis from 10^5 to 10^8) or per training-set size (Figure 3, linear axis to 6 x 10^7),
    one colour per method, train solid, test dashed, a band of +- 2 standard errors over the images
    where a point records one; the paper's y ranges, widened where a curve ends outside them.

    Args:
        results: what `reproduce.run` returns (curves with their measured points).
        path: PNG file to write.
        overwrite: replace an existing file.
    """
    from matplotlib.figure import Figure  # not pyplot: the caller's backend stays as it is

    if not overwrite and os.path.lexists(path):
        raise refuse_existing(path)  # before rendering

    curves = [c for c in results["curves"].values() if c["points"]]
    by_panel: dict[str, dict[tuple, list]] = {}
    for c in curves:
        key = (c["latent_dim"],) if results["figure"] == "figure2" else (c["n_train"],)
        by_panel.setdefault(c["dataset"], {}).setdefault(key, []).append(c)
    rows = len(by_panel) or 1
    columns = max([len(p) for p in by_panel.values()] or [1])
    fig = Figure(figsize=(3.2 * columns, 2.9 * rows), dpi=110)
    axes = fig.subplots(rows, columns, squeeze=False)
    methods = sorted({c["method"] for c in curves})
    for r, (dataset, panels) in enumerate(sorted(by_panel.items(), key=lambda kv: kv[0] != "mnist")):
        for col, (key, group) in enumerate(sorted(panels.items())):
            ax = axes[r][col]
            for c in group:
                color = f"C{methods.index(c['method'])}"
                for split, style in (("train", "-"), ("test", "--")):
                    xs = [p["samples"] for p in c["points"]]
                    ys = np.array([p[split] for p in c["points"]])
                    ax.plot(xs, ys, color=color, lw=1.2, ls=style, label=f"{c['method']} {split}")
                    # +- 2 standard errors over the images, where the point records one
                    se = np.array([p.get(f"{split}_se", np.nan) for p in c["points"]])
                    if np.isfinite(se).any():
                        ax.fill_between(xs, ys - 2 * se, ys + 2 * se, color=color, alpha=0.2, lw=0)
            finals = [c["points"][-1][s] for c in group for s in ("train", "test")]
            low, high = _PAPER_Y.get((results["figure"], dataset if results["figure"] == "figure2" else key[0]),
                                     (min(finals), max(finals)))
            margin = 0.05 * (high - low) + 1  # the paper's range, widened to show where every curve ended
            ax.set_ylim(min(low, min(finals) - margin), max(high, max(finals) + margin))
            if results["figure"] == "figure2":
                ax.set_xscale("log")
                ax.set_xlim(1e5, max(1e8, max(c["samples"] for c in group)))
            else:
                ax.set_xlim(0, max(60e6, max(c["samples"] for c in group)))
                ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1e6:g}")
            label = f"N_z = {key[0]}" if results["figure"] == "figure2" else f"N_z = 3, N = {key[0]:,}"
            ax.set_title(f"{_DATASET_NAMES.get(dataset, dataset)}, {label}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel(_METRIC_LABELS[results["metric"]], fontsize=8)
            if r == rows - 1:
                ax.set_xlabel("training samples evaluated" + (" (millions)" if results["figure"] == "figure3" else ""),
                              fontsize=8)
        for col in range(len(panels), columns):
            axes[r][col].axis("off")
    if curves:
        axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _write_picture(path, buffer.getvalue(), overwrite)

