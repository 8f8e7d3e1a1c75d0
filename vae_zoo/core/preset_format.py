"""The preset folder format, after keras-hub's `preset_utils`: where presets are, how a
name finds its folder, and how a folder is read, verified and written. Knows no model class.

A preset folder holds

- `config.json`: the model's Keras config (`keras.saving.serialize_keras_object`);
- `model.weights.h5`: its weights (no optimizer state);
- `card.json`: the model card: data, recipe, training log, measured metrics;
- `checksums.json`: the sha256 of each of the three, checked before any of them is used,
  so a changed config, card or weights file is refused, never silently loaded.

The zoo's own presets are in `saved_models/` at the repository root, installed inside
the package as `vae_zoo/saved_models/`; `$VAE_ZOO_PRESETS` points to another folder.
A preset name always means the zoo's preset; a local folder of the same name is read
as `./NAME` (any path with a separator).
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from vae_zoo.core import model_card
from vae_zoo.core.errors import PresetError, UnknownPresetError
from vae_zoo.core.io import OFFLINE_ENV, atomic_write_text, file_sha256, staged_dir

CONFIG, WEIGHTS, CARD, CHECKSUMS = "config.json", "model.weights.h5", "card.json", "checksums.json"
_RESTORE = "Restore the file (e.g. reinstall vae-zoo or `git checkout` it)"
PRESETS_ENV = "VAE_ZOO_PRESETS"


def presets_dir() -> Path:
    """Where the zoo's trained presets are: $VAE_ZOO_PRESETS, the installed
    package's `saved_models/`, or the source checkout's `saved_models/`."""
    if os.environ.get(PRESETS_ENV):
        return Path(os.environ[PRESETS_ENV])
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "saved_models", package.parent / "saved_models"):
        if candidate.is_dir():
            return candidate
    return package / "saved_models"


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def shipped_presets() -> list[str]:
    """Names of the presets in `presets_dir()` that have a model card (mnist-z2, mnist-z3, ...)."""
    folder = presets_dir()
    names = [p.name for p in folder.iterdir() if (p / CARD).is_file()] if folder.is_dir() else []
    return sorted(names, key=lambda n: (not n.startswith("mnist"), _natural(n)))


def unknown_preset(name: str, available: list[str] | None = None) -> UnknownPresetError:
    """The error for an unknown preset name: lists the presets and the closest ones."""
    available = shipped_presets() if available is None else available
    close = difflib.get_close_matches(name, available, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UnknownPresetError(
        f"Unknown preset {name!r}. Available: {', '.join(available)}.{hint} "
        f"(A path to a preset folder also works, e.g. ./{name}.) Received: name={name!r}"
    )


def preset_path(name_or_path: str | os.PathLike) -> Path:
    """The folder of a preset name (see `shipped_presets`) or of a preset folder path.

    Raises:
        UnknownPresetError: neither a preset name nor an existing folder or path.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and "://" in text:
        return _remote(text)
    path = Path(text)
    is_name = isinstance(name_or_path, str) or not path.is_dir()  # Path("mnist-z2") names the preset too
    if is_name and (presets_dir() / text / CARD).is_file() and os.sep not in text:
        return presets_dir() / text
    if path.is_dir() or os.sep in text or text.startswith("."):
        return path
    raise unknown_preset(text)


# A Hugging Face Hub repository id's parts: letters, digits, "-", "_", ".", not starting or ending
# with "-" or ".", no "--" or ".." (so never a path step such as "..").
_HUB_PART = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")


def _remote(handle: str) -> Path:
    """The local folder of a remote preset handle: `hf://OWNER/NAME` through the Hugging Face Hub's
    client (downloaded once into its cache; only its cache when $VAE_ZOO_OFFLINE is set); a
    `file://` URL is its local folder; any other scheme is refused, saying how to fetch it."""
    scheme, _, rest = handle.partition("://")
    if scheme == "file":
        raise UnknownPresetError(f"{handle} is a folder of this machine: load it by its path ({rest or '/'}).")
    if scheme != "hf":
        raise UnknownPresetError(f"{handle}: vae-zoo reads presets by name, from a local folder, or from "
                                 f"hf://OWNER/NAME; copy the folder from {scheme}:// to this machine (e.g. with that "
                                 "service's own client) and load the local folder.")
    parts = rest.split("/")
    if len(parts) != 2 or not all(_HUB_PART.fullmatch(part) for part in parts):
        raise UnknownPresetError(f"{handle} is not a Hugging Face Hub handle: vae-zoo reads presets by name, from a "
                                 "local folder, or from hf://OWNER/NAME (each of letters, digits, '-', '_' and '.'), "
                                 "e.g. hf://someone/mnist-z20.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UnknownPresetError(f"{handle} is a Hugging Face Hub handle: install its client (pip install "
                                 "huggingface_hub), or download the folder (huggingface-cli download "
                                 f"{rest} --local-dir {parts[1]}) and load that folder.") from None
    offline = bool(os.environ.get(OFFLINE_ENV))
    try:
        return Path(snapshot_download(repo_id=rest, **({"local_files_only": True} if offline else {})))
    except Exception as err:  # the Hub client's errors (network, unknown repository, not cached) in one line
        reason = f"${OFFLINE_ENV} is set and it is not in the Hub's cache" if offline else type(err).__name__
        raise PresetError(f"{handle} could not be fetched from the Hugging Face Hub ({reason}: "
                          f"{str(err).splitlines()[0] if str(err) else 'no detail'}). Check the name and the "
                          "connection, or download the folder and load it by its path.") from None


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise PresetError(f"{path} is not valid JSON ({err}). {_RESTORE}.") from None
    if not isinstance(value, dict):
        raise PresetError(f"{path} holds a JSON {type(value).__name__}, not the object vae-zoo wrote. {_RESTORE}.")
    return value


def verified(folder: Path, name: str) -> Path:
    """The path of file `name` of a preset folder, after checking it against checksums.json.

    Raises:
        PresetError: the file or checksums.json is missing, or the file's sha256
            differs (truncated, edited or replaced).
    """
    path = folder / name
    if not path.is_file():
        if name == WEIGHTS:
            raise PresetError(f"Preset folder {folder} has no weights file {path}; refusing random weights.")
        if name == CONFIG:
            raise PresetError(f"Preset folder {folder} has no {CONFIG}. Train it (vae-zoo train NAME) "
                              "or pass a folder written by save_to_preset().")
        raise PresetError(f"No model card {path}. Train it first: vae-zoo train NAME.")
    if not (folder / CHECKSUMS).is_file():
        raise PresetError(f"Preset folder {folder} has no {CHECKSUMS}, so {name} cannot be verified. Save the "
                          "model again with save_to_preset(), or, if you trust its files, run "
                          f"vae_zoo.core.preset_format.write_checksums({str(folder)!r}).")
    expected = _read_json(folder / CHECKSUMS).get(name)
    actual = file_sha256(path)
    if actual != expected:
        raise PresetError(f"{'Weights file' if name == WEIGHTS else 'File'} {path} is corrupt or was changed: "
                          f"sha256 {actual}, expected {expected} (from {CHECKSUMS}). {_RESTORE}.")
    return path


def read_card(name_or_path: str | os.PathLike) -> dict:
    """The verified model card of a preset.

    Raises:
        PresetError: the folder has no card, or it fails its checksum.
    """
    return _read_json(verified(preset_path(name_or_path), CARD))


def read_config(folder: Path) -> dict:
    """The verified model config of a preset folder.

    Raises:
        PresetError: the folder has no config.json, or it fails its checksum.
    """
    return _read_json(verified(folder, CONFIG))


def preset_files(folder: Path) -> set[str] | None:
    """The files of a preset folder vae-zoo wrote (its checksums.json lists them), or None if it is not one."""
    try:
        sums = json.loads((Path(folder) / CHECKSUMS).read_text())
    except (OSError, ValueError):
        return None
    return {*sums, CHECKSUMS} if isinstance(sums, dict) else None


def write_checksums(folder: str | os.PathLike) -> dict:
    """Writes checksums.json for the config, weights, card and readable files present in `folder`."""
    folder = Path(folder)
    sums = {name: file_sha256(folder / name) for name in (CONFIG, WEIGHTS, CARD, model_card.README,
                                                          model_card.METADATA) if (folder / name).is_file()}
    atomic_write_text(folder / CHECKSUMS, json.dumps(sums, indent=1))
    return sums


def write_preset(path: str | os.PathLike, config: dict, write_weights: Callable[[Path], None],
                 card: dict | None = None, overwrite: bool = False) -> Path:
    """Writes a preset folder: assembled beside `path` and renamed into place,
    so it is complete or absent.

    Args:
        path: the preset folder to create.
        config: the model's serialized Keras config.
        write_weights: writes the weights file to the path it is given.
        card: model-card fields (recipe, metrics, ...); the weights' sha256,
            the package version and the date are added.
        overwrite: replace an existing folder.

    Returns:
        The folder's path.

    Raises:
        OutputExistsError: `path` exists and is not empty, and not `overwrite`; or it holds
            files that are not those of a preset vae-zoo wrote (they are never deleted).
    """
    from vae_zoo import __version__

    path = Path(path)
    with staged_dir(path, overwrite, preset_files, "preset") as tmp:
        atomic_write_text(tmp / CONFIG, json.dumps(config, indent=1))
        write_weights(tmp / WEIGHTS)
        card = {
            **(card or {}),
            "weights_sha256": file_sha256(tmp / WEIGHTS),
            "package_version": __version__,
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(tmp / CARD, json.dumps(card, indent=1))
        write_readable_files(tmp, card, config, name=path.name)
        write_checksums(tmp)
    return path


def write_readable_files(folder: Path, card: dict, config: dict, name: str | None = None) -> None:
    """README.md (a model card for people and model hubs) and metadata.json, from the card; titled
    with the card's name, else `name` (the folder the files are for), else the folder's own name."""
    title = card.get("name", name or folder.name)
    atomic_write_text(folder / model_card.README, model_card.readme(card, config, title))
    atomic_write_text(folder / model_card.METADATA, model_card.metadata(config, card))


def update_card(name_or_path: str | os.PathLike, **fields) -> dict:
    """Merges `fields` into a preset's card; the folder is replaced as a whole, with new checksums."""
    folder = preset_path(name_or_path)
    card = {**read_card(folder), **fields}
    with staged_dir(folder, True, preset_files, "preset") as tmp:
        for name in (CONFIG, WEIGHTS):
            shutil.copy2(verified(folder, name), tmp / name)
        atomic_write_text(tmp / CARD, json.dumps(card, indent=1))
        write_readable_files(tmp, card, read_config(folder), name=folder.name)
        write_checksums(tmp)
    return card
