"""The user's own data: read from an array file or a folder of images, checked row by row
and file by file, fingerprinted, and split into training and held-out parts.

Accepted inputs (all pixels scaled to [0, 1]):

- a `.npy` file, or a `.npz` file holding one array (or one named `x`): shape (n, D),
  (n, h, w) or (n, h, w, 1); uint8 (divided by 255, or taken as is when every value is 0 or 1:
  binarized data) or floating point (taken as is);
- a folder of PNG/JPEG images: grayscale, all one size, read in file-name order, turned upright
  by their EXIF orientation; scaled as uint8 arrays are; or one such image file (one row);
- a shard folder (`shards.Shards`, for data larger than memory): streamed, not read whole.

Nothing the user owns is modified: files are only read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_zoo.core.errors import DataNotFoundError, InvalidArgumentError
from vae_zoo.data import shards

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class UserData:
    """Data read from the user's path.

    Attributes:
        x: float32 pixels in [0, 1], shape (n, D).
        image_shape: (height, width), or None when the source had flat rows.
        source: the path as given.
        kind: "npy", "npz" or "images".
        scaling: how the stored values became pixels ("uint8 / 255", "uint8 0/1 as is",
            "floats as given").
        names: the image files' names, in row order (a folder of images), else None.
        fingerprint: sha256 of the pixels (float32, C order) and their shape: the same data
            read from any format gives the same fingerprint.
    """

    x: np.ndarray
    image_shape: tuple[int, int] | None
    source: str
    kind: str
    fingerprint: str
    scaling: str = "uint8 / 255"
    names: tuple[str, ...] | None = None

    @property
    def input_dim(self) -> int:
        return self.x.shape[1]

    @property
    def binary(self) -> bool:
        """Every pixel is 0 or 1."""
        return bool(np.isin(self.x, (0.0, 1.0)).all())

    def split(self, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
        """(training rows, held-out rows, how they were split): see `holdout`."""
        return holdout(self.x, fraction, seed)

    def describe(self) -> dict:
        """For a model card: where the data came from, what it is, and its fingerprint."""
        return {"source": self.source, "kind": self.kind, "examples": len(self.x), "input_dim": self.x.shape[1],
                "image_shape": list(self.image_shape) if self.image_shape else None,
                "scaling": self.scaling,
                "sha256": self.fingerprint}


def read(path: str | os.PathLike) -> UserData | shards.Shards:
    """Reads the user's data set at `path` (see the module doc for the formats); a shard
    folder is opened (checked, not loaded).

    Raises:
        DataNotFoundError: nothing at `path`, or a folder with no images.
        InvalidArgumentError: a file that cannot be read, images of another size or with
            colour channels, a wrong array shape, NaN/inf, or values outside [0, 1]; the
            message names the file (and row) and the fix.
    """
    path = Path(path)
    if shards.is_shards(path):
        return shards.Shards(path)
    names = None
    if path.is_dir():
        (x, scaling), shape, kind = _read_images(path)
        names = tuple(f.name for f in image_files(path))
    elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:  # one image: one row
        (x, scaling), shape, kind = _read_image_files([path], str(path))
        names = (path.name,)
    elif path.is_file():
        (x, scaling), shape, kind = _read_array(path)
    elif path.exists():
        raise InvalidArgumentError(f"{path} is neither a file nor a folder (a pipe, socket or device): give a .npy "
                                   "or .npz file or a folder of PNG/JPEG images.")
    else:
        raise DataNotFoundError(f"No data at {path}: give a .npy or .npz file or a folder of PNG/JPEG images.")
    x = np.ascontiguousarray(x, np.float32)
    digest = hashlib.sha256(repr(x.shape).encode() + x.tobytes()).hexdigest()
    return UserData(x, shape, str(path), kind, digest, scaling, names)


def image_files(folder: Path) -> list[Path]:
    """The PNG/JPEG files of `folder`, in name order (the order of the rows read from it)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# Images larger than this are refused before they are decoded (a VAE's images are small; a
# "decompression bomb" PNG of a few KB can declare billions of pixels).
MAX_IMAGE_PIXELS = 4096 * 4096


def memory_budget() -> int:
    """Bytes the float32 copy of a data set may take: half of the memory available now."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _check_fits(where: str, shape: tuple, what: str) -> None:
    """Refuses data whose float32 copy would not fit in memory, before anything is allocated."""
    need = 4 * int(np.prod([int(d) for d in shape], dtype=object))
    if need > memory_budget():
        raise InvalidArgumentError(
            f"{where}: {what} of shape {tuple(shape)} takes {need / 2**30:.1f} GiB as float32, more than the "
            f"{memory_budget() / 2**30:.1f} GiB this machine can spare. Write it as shards (vae-zoo shard) from "
            "smaller parts, which training streams from disk, or use fewer rows.")


def _npz_member_shape(path: Path, key: str) -> tuple:
    """The shape a .npz member declares in its header, read without decompressing the data."""
    import zipfile

    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return reader(member)[0]


def _read_array(path: Path) -> tuple[tuple[np.ndarray, str], tuple[int, int] | None, str]:
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise InvalidArgumentError(f"{path}: unknown data format {suffix!r}. Accepted: a .npy or .npz array file, "
                                   "a PNG/JPEG image, or a folder of PNG/JPEG images.")
    try:
        # By content, not by name (an .npz renamed .npy, or the other way round, reads as what it is);
        # a .npy is mapped, so its header is checked against memory before anything is allocated.
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = list(loaded.keys())
                if "x" in keys:
                    key = "x"
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    raise InvalidArgumentError(f"{path} holds several arrays ({', '.join(keys) or 'none'}): name the "
                                               "data `x`, or keep only one array in the file.")
                _check_fits(str(path), _npz_member_shape(path, key), f"the array {key!r}")
                array = loaded[key]
        else:
            _check_fits(str(path), loaded.shape, "the array")
            array = np.array(loaded)
    except InvalidArgumentError:
        raise
    except (OSError, ValueError, EOFError, KeyError) as err:  # truncated, corrupt, or an object array
        raise InvalidArgumentError(f"{path} cannot be read as a numpy array ({err}). Check that the file is complete "
                                   "and was written by numpy.save / numpy.savez.") from None
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or array.shape[0] == 0 or 0 in array.shape:
        raise InvalidArgumentError(f"{path}: the array must have shape (n, D), (n, h, w) or (n, h, w, 1) with n >= 1 "
                                   f"(grayscale). Received: shape {array.shape}")
    shape = tuple(array.shape[1:]) if array.ndim == 3 else None
    return _scaled(array.reshape(len(array), -1), f"{path}", row_name="row"), shape, suffix[1:]


def _scaled(array: np.ndarray, where: str, row_name: str, names: list[str] | None = None) -> tuple[np.ndarray, str]:
    """(float32 pixels in [0, 1], how they were scaled); refuses what is not pixels."""
    if array.dtype == np.uint8:
        if array.max() <= 1:  # binarized data stored as uint8 0/1, not grey levels of 1/255
            return array.astype(np.float32), "uint8 0/1 as is"
        return array.astype(np.float32) / 255.0, "uint8 / 255"
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidArgumentError(f"{where}: pixels must be uint8 or real numbers. Received: dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"{where}: integer pixels must be uint8 (0-255, divided by 255). Received: dtype "
                                   f"{array.dtype}; convert them (x / x.max()) or save them as uint8.")
    # Checked before the float32 cast, which would turn a finite 1e300 into inf.
    for bad, what in ((~np.isfinite(array), "NaN or inf"), ((array < 0) | (array > 1), "a value outside [0, 1]")):
        rows = np.flatnonzero(bad.any(axis=1))
        if len(rows):
            first = names[rows[0]] if names else f"{row_name} {rows[0]}"
            raise InvalidArgumentError(f"{where}: {first} has {what} ({len(rows)} rows in all). Pixels must be finite "
                                       "and in [0, 1]: floats as x / 255, or uint8 0-255.")
    return array.astype(np.float32), "floats as given"


def _read_images(folder: Path) -> tuple[tuple[np.ndarray, str], tuple[int, int], str]:
    files = image_files(folder)
    if not files:
        raise DataNotFoundError(f"{folder} holds no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)}).")
    return _read_image_files(files, str(folder))


def read_image_files(files: list[str | os.PathLike]) -> tuple[np.ndarray, tuple[int, int]]:
    """Given PNG/JPEG files (grayscale, one size), checked as a folder's are: (float32 pixels
    (n, D) in [0, 1], (height, width)).

    Raises:
        DataNotFoundError: a file that does not exist.
        InvalidArgumentError: as `read` for a folder of images.
    """
    files = [Path(f) for f in files]
    for file in files:
        if not file.is_file():
            raise DataNotFoundError(f"No image at {file}: give PNG or JPEG files.")
    (x, _), shape, _ = _read_image_files(files, ", ".join(map(str, files)))
    return x, shape


def _read_image_files(files: list[Path], where: str) -> tuple[tuple[np.ndarray, str], tuple[int, int], str]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    images, size = [], None
    for file in files:
        try:
            with Image.open(file) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InvalidArgumentError(
                        f"{file} declares {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} a VAE's image "
                        "can have here; it was not decoded. Resize it, or remove it.")
                if size is None:
                    _check_fits(where, (len(files), height, width), f"{len(files)} images")
                image.load()
                upright = ImageOps.exif_transpose(image)  # a camera's rotation, as every viewer shows it
                mode, pixels = upright.mode, np.asarray(upright)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
            raise InvalidArgumentError(f"{file} cannot be read as an image ({err}). Remove or replace it.") from None
        if mode not in ("L", "1", "I;16", "I", "F") or pixels.ndim != 2:
            raise InvalidArgumentError(f"{file} is a {mode} image with colour channels; the models take grayscale. "
                                       "Convert it, e.g. PIL.Image.open(f).convert('L').save(f2).")
        if size is None:
            size, first = pixels.shape, file
        elif pixels.shape != size:
            raise InvalidArgumentError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]} pixels but {first.name} is "
                                       f"{size[1]}x{size[0]}: all images must have one size. Resize them.")
        if mode == "1":
            pixels = pixels.astype(np.uint8) * 255
        elif pixels.dtype != np.uint8:
            raise InvalidArgumentError(f"{file} has {pixels.dtype} pixels ({mode}); 8-bit grayscale is accepted. "
                                       "Convert it with PIL.Image.convert('L').")
        images.append(pixels)
    scaled = _scaled(np.stack(images).reshape(len(images), -1), where, "image", [f.name for f in files])
    return scaled, size, "images"


def holdout(x: np.ndarray, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Splits `x` into training and held-out rows, deterministically.

    Args:
        x: the data, shape (n, D).
        fraction: the held-out share, in (0, 1); at least one row each way.
        seed: seed of the permutation.

    Returns:
        (train, held_out, statement): the statement says how the split was made.
    """
    train, held, split = shards.holdout_rows(len(x), fraction, seed)
    return x[np.sort(train)], x[np.sort(held)], f"{split}; trained on the other {len(train)}"
