"""Run an exported vae-zoo model with nothing but numpy and onnxruntime.

Samples z ~ N(0, I), decodes them to a PNG grid, and reconstructs a few given
images through encoder + decoder. TensorFlow is not needed (nor imported).

    python export/edge_demo.py --model mnist-z20 -o demo.png [--images images.npy] [-n 64] [--seed 0]

`--model` names a folder under export/ (or any folder with encoder.onnx and
decoder.onnx). `--images` is a .npy array of shape (n, D) with pixels in
[0, 1]; without it the demo reconstructs some of its own samples.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
IMAGE_SHAPES = {784: (28, 28), 560: (28, 20)}


def write_png(pixels: np.ndarray, path: Path) -> None:
    """Writes a grey uint8 array as a PNG using only zlib (no imaging library)."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png)
    tmp.replace(path)


def tile(images: np.ndarray, shape: tuple[int, int], columns: int, scale: int = 3) -> np.ndarray:
    h, w = shape
    rows = -(-len(images) // columns)
    canvas = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = \
            np.round(np.clip(image, 0, 1).reshape(h, w) * 255).astype(np.uint8)
    return np.kron(canvas, np.ones((scale, scale), np.uint8))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mnist-z20", help="folder with encoder.onnx and decoder.onnx")
    parser.add_argument("-o", "--output", type=Path, default=Path("edge_demo.png"))
    parser.add_argument("--images", type=Path, help=".npy array (n, D), pixels in [0, 1], to reconstruct")
    parser.add_argument("-n", type=int, default=64, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    folder = Path(args.model) if Path(args.model).is_dir() else HERE / args.model
    if not (folder / "decoder.onnx").is_file():
        print(f"edge_demo: error: no decoder.onnx in {folder}", file=sys.stderr)
        return 2
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    latent_dim = decoder.get_inputs()[0].shape[1]
    input_dim = encoder.get_inputs()[0].shape[1]
    shape = IMAGE_SHAPES[input_dim]

    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((args.n, latent_dim)).astype(np.float32)  # z ~ p(z) = N(0, I)
    (samples,) = decoder.run(["x_mean"], {"z": z})  # pixel means (Bernoulli probabilities or Gaussian means)

    if args.images is not None:
        x = np.load(args.images).astype(np.float32).reshape(-1, input_dim)[:16]
    else:
        x = (rng.random(samples[:16].shape) < samples[:16]).astype(np.float32) if input_dim == 784 else samples[:16]
    z_mean, _ = encoder.run(["z_mean", "z_log_var"], {"x": x})
    (recon,) = decoder.run(["x_mean"], {"z": z_mean})

    # Rows of samples, then rows of (input, reconstruction) pairs.
    columns = 16
    padding = np.ones(((-len(samples)) % columns, input_dim), np.float32)
    pairs = np.stack([x, recon], axis=1).reshape(-1, input_dim)
    grid = np.concatenate([samples, padding, pairs])
    write_png(tile(grid, shape, columns), args.output)
    print(json.dumps({"model": str(folder), "samples": len(samples), "reconstructions": len(x),
                      "output": str(args.output)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
