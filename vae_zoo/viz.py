"""Image grids written as PNG files (Pillow)."""

from __future__ import annotations

import io
import os

import numpy as np

from vae_zoo.io import atomic_write_bytes


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


def save_png(pixels: np.ndarray, path: str | os.PathLike, scale: int = 3, overwrite: bool = True) -> None:
    """Writes a grey uint8 array as a PNG, enlarged `scale` times so digits are legible."""
    from PIL import Image

    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists. Choose another name or allow overwriting.")
    image = Image.fromarray(pixels, mode="L")
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
