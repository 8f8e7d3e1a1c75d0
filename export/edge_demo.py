"""Run an exported vae-zoo model with nothing but numpy and onnxruntime.

Samples z ~ N(0, I), decodes them to a PNG grid, and reconstructs a few given
images through encoder + decoder. TensorFlow is not needed (nor imported).

    python export/edge_demo.py --model mnist-z20 -o demo.png [--quantized int8-dynamic] [--images images.npy]

`--model` names a folder under export/ (or any folder written by `vae-zoo export --format
onnx`). A folder with a decoder only (`--part decoder`) gives samples; with an encoder only
(`--part encoder`) it writes the posterior means of `--images` to `-o codes.npy`.
`--quantized MODE` runs decoder.MODE.onnx (and encoder.MODE.onnx where the folder has one)
instead of the float32 graphs; a folder holding only one quantized decoder runs it without the
flag. Every file is checked against the sha256 in its manifest.json before it runs.
`--images` is a .npy array of shape (n, D) or (n, height, width) with pixels in [0, 1];
without it the demo reconstructs some of its own samples. Bad input exits with status 2 and
one line naming the problem.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
IMAGE_SHAPES = {784: (28, 28), 560: (28, 20)}


class DemoError(Exception):
    """A problem with the demo's input: reported in one line, status 2."""


def _sha256(path: Path) -> str:
    if path.is_dir():  # a SavedModel: names and contents of its files, as vae-zoo records them
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + b"\0" + _sha256(f).encode())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(folder: Path, names: tuple[str, ...] = ("encoder.onnx", "decoder.onnx")) -> None:
    """Checks the graphs `names` of `folder` against the manifest.json that lists them
    (the folder's own, or the bundle's one level up)."""
    for manifest_path in (folder / "manifest.json", folder.parent / "manifest.json"):
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["presets"].values() if "presets" in manifest else [manifest]
        recorded = {(manifest_path.parent / a["file"]).resolve(): a["sha256"] for e in entries for a in e["artifacts"]}
        for name in names:
            path = (folder / name).resolve()
            if path not in recorded:
                break
            if _sha256(path) != recorded[path]:
                raise DemoError(f"{folder / name} is corrupt or was changed: its sha256 differs from "
                                f"{manifest_path}. Restore it or export again (vae-zoo export).")
        else:
            return
    raise DemoError(f"No manifest.json lists {' and '.join(f'{folder}/{n}' for n in names)}, so they cannot be "
                    "verified. Use a folder written by vae-zoo export.")


def read_images(path: Path, input_dim: int, shape: tuple[int, int]) -> np.ndarray:
    """The images of a .npy file as (n, D) float32 in [0, 1], or a DemoError saying what is wrong."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DemoError(f"Cannot read {path} as a .npy array ({err}).") from None
    if x.ndim == 3 and x.shape[1:] == shape:
        x = x.reshape(len(x), input_dim)
    if x.ndim != 2 or x.shape[1] != input_dim or len(x) == 0:
        raise DemoError(f"--images must have shape (n, {input_dim}) or (n, {shape[0]}, {shape[1]}) with n >= 1. "
                        f"Received: shape {x.shape} from {path}")
    try:
        x = x.astype(np.float32)
    except (TypeError, ValueError):
        raise DemoError(f"--images must be numeric. Received: dtype {x.dtype} from {path}") from None
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DemoError(f"--images must hold finite pixels in [0, 1] (scale uint8 images by 1/255). Received: "
                        f"values in [{np.nanmin(x):g}, {np.nanmax(x):g}] from {path}")
    return x


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive int. Received: {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be an int >= 0. Received: {text!r}")
    return int(text)


def write_png(pixels: np.ndarray, path: Path) -> None:
    """Writes a grey uint8 array as a PNG using only zlib (no imaging library)."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
    parser.add_argument("--quantized", metavar="MODE", help="run decoder.MODE.onnx (e.g. int8-dynamic, float16)")
    parser.add_argument("--images", type=Path, help=".npy array (n, D), pixels in [0, 1], to reconstruct")
    parser.add_argument("-n", type=positive_int, default=64, help="number of samples")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except DemoError as err:
        print(f"edge_demo: error: {err}", file=sys.stderr)
        return 2


def _pick(folder: Path, part: str, quantized: str | None) -> str | None:
    """The file of `part` to run: the `quantized` one (else None); without `quantized`, the float32
    graph, or the only quantized one when the folder holds nothing else."""
    if quantized is not None:
        return f"{part}.{quantized}.onnx" if (folder / f"{part}.{quantized}.onnx").is_file() else None
    if (folder / f"{part}.onnx").is_file():
        return f"{part}.onnx"
    others = sorted(p.name for p in folder.glob(f"{part}.*.onnx"))
    if len(others) > 1:
        modes = ", ".join(name[len(part) + 1:-len(".onnx")] for name in others)
        raise DemoError(f"{folder} holds several quantized {part}s ({modes}): choose one with --quantized MODE.")
    return others[0] if others else None


def graph_names(folder: Path, quantized: str | None) -> tuple[str | None, str | None]:
    """The encoder and decoder files to run, either of which may be absent (a folder exported
    with --part decoder or --part encoder): float32, or the `quantized` decoder (and encoder,
    where the folder has one; else the float32 encoder)."""
    decoder, encoder = _pick(folder, "decoder", quantized), _pick(folder, "encoder", quantized)
    if quantized is not None and decoder is None and encoder is None:
        modes = sorted({p.name.split(".")[1] for p in folder.glob("*.*.onnx")})
        raise DemoError(f"no decoder.{quantized}.onnx or encoder.{quantized}.onnx in {folder}. Quantized graphs "
                        f"there: {', '.join(modes) or 'none'}.")
    encoder = encoder or _pick(folder, "encoder", None)  # a float32 encoder beside a quantized decoder
    if encoder is None and decoder is None:
        raise DemoError(f"no encoder or decoder ONNX graph in {folder}: give a folder written by vae-zoo export "
                        "--format onnx.")
    return encoder, decoder


def image_shape(session: ort.InferenceSession, input_dim: int) -> tuple[int, int]:
    """(height, width) from the graph's metadata (vae-zoo writes it), else the zoo's data sets'."""
    recorded = session.get_modelmeta().custom_metadata_map.get("vae_zoo.image_shape", "")
    if recorded:
        height, width = map(int, recorded.split("x"))
        return height, width
    if input_dim not in IMAGE_SHAPES:
        raise DemoError(f"the graphs do not record their image shape and {input_dim} pixels is no zoo data set's "
                        "size: export them again with this version of vae-zoo.")
    return IMAGE_SHAPES[input_dim]


def run(args) -> int:
    folder = Path(args.model) if Path(args.model).is_dir() else HERE / args.model
    names = graph_names(folder, args.quantized)
    encoder_name, decoder_name = names
    if decoder_name is None and args.output.suffix != ".npy":
        raise DemoError(f"{folder} holds an encoder only, which turns images into latent codes: give --images "
                        "PATH.npy and -o codes.npy.")
    if decoder_name is None and args.images is None:
        raise DemoError("an encoder-only folder needs images to encode: --images PATH.npy.")
    if args.output.exists() and not args.overwrite:
        raise DemoError(f"{args.output} exists. Choose another name or pass --overwrite.")
    verify(folder, tuple(n for n in names if n))
    encoder, decoder = (ort.InferenceSession(str(folder / n), providers=["CPUExecutionProvider"]) if n else None
                        for n in names)
    some = decoder or encoder
    input_dim = decoder.get_outputs()[0].shape[1] if decoder else encoder.get_inputs()[0].shape[1]
    shape = image_shape(some, input_dim)
    x = read_images(args.images, input_dim, shape)[:16] if args.images is not None else None
    report = {"model": str(folder), "graphs": [n for n in names if n], "output": str(args.output)}

    if decoder is None:  # encoder only: the posterior means of the given images
        z_mean, _ = encoder.run(["z_mean", "z_log_var"], {"x": x})
        tmp = args.output.with_name(f".{args.output.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, z_mean)
        tmp.replace(args.output)
        print(json.dumps({**report, "encoded": len(x), "latent_dim": int(z_mean.shape[1])}))
        return 0

    rng = np.random.default_rng(args.seed)
    latent_dim = decoder.get_inputs()[0].shape[1]
    z = rng.standard_normal((args.n, latent_dim)).astype(np.float32)  # z ~ p(z) = N(0, I)
    (samples,) = decoder.run(["x_mean"], {"z": z})  # pixel means (Bernoulli probabilities or Gaussian means)
    columns = 16
    grid = [samples]
    if encoder is not None:  # then rows of (input, reconstruction) pairs
        if x is None:
            x = (rng.random(samples[:16].shape) < samples[:16]).astype(np.float32) if input_dim == 784 else \
                samples[:16]
        z_mean, _ = encoder.run(["z_mean", "z_log_var"], {"x": x})
        (recon,) = decoder.run(["x_mean"], {"z": z_mean})
        grid += [np.ones(((-len(samples)) % columns, input_dim), np.float32),
                 np.stack([x, recon], axis=1).reshape(-1, input_dim)]
    write_png(tile(np.concatenate(grid), shape, columns), args.output)
    print(json.dumps({**report, "samples": len(samples), "reconstructions": 0 if encoder is None else len(x)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
