"""The package's own errors: one family under `VaeZooError`.

Each is raised for a user mistake or a problem of the environment that its
message explains (what is wrong, what is accepted, what was received, and the
fix), so the command line prints it as one line and exits with status 2. Each
also derives from the built-in exception of its kind, so `except ValueError`
(or `FileNotFoundError`, `OSError`, ...) keeps working. Anything else a call
raises is a bug and keeps its traceback.
"""


class VaeZooError(Exception):
    """Base of every error the package raises on purpose."""


class InvalidArgumentError(VaeZooError, ValueError):
    """An argument (or data passed as one) has a wrong type, shape or value."""


class UnknownPresetError(VaeZooError, ValueError):
    """A preset name that is neither in the zoo nor a preset folder (a ValueError, as in keras-hub)."""


class PresetError(VaeZooError, ValueError):
    """A preset folder is missing a file, or a file fails its checksum."""


class IntegrityError(VaeZooError, ValueError):
    """An exported file is missing or differs from the sha256 its manifest records."""


class DataIntegrityError(VaeZooError, ValueError):
    """A data file exists but its contents do not match the published sha256."""


class DataNotFoundError(VaeZooError, FileNotFoundError):
    """A data file is not on disk and cannot be downloaded."""


class OutputExistsError(VaeZooError, FileExistsError):
    """A file or folder would be overwritten without permission."""


class WriteError(VaeZooError, OSError):
    """A file could not be written (read-only folder, full disk); nothing was changed."""


class TrainingError(VaeZooError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class ParityError(VaeZooError, RuntimeError):
    """An exported graph disagrees with the Keras model beyond the tolerance."""


class QualityGateError(VaeZooError, RuntimeError):
    """A quantized graph loses more log-likelihood than the export allows; nothing was written."""


class ClusterError(VaeZooError, RuntimeError):
    """A worker of a data-parallel run could not reach, or lost, its peers."""


class EstimateError(VaeZooError, RuntimeError):
    """A measurement that cannot be true (log p(x) > 0 for binary data, NaN) or was not made as
    stated (HMC acceptance far from its target): never plotted, never published."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """`error` as one short line (its type and the first line of its message), to quote it in
    one of the package's own one-line messages."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:limit] if lines else ''}".rstrip(": ")
