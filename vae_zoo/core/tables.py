"""Text written for other programs: CSV that Python's `csv`, pandas and spreadsheets read back
cell for cell, and names stored in .npz and PNG files, whatever the text (file names with commas,
quotes, line breaks, formulas, undecodable bytes)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

import numpy as np

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula (OWASP)


def neutralised(cell: str) -> str:
    """`cell`, with a leading ' when a spreadsheet would read it as a formula (OWASP's advice for
    CSV injection); other text is left as it is."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV file's text: RFC 4180 quoting (commas, quotes and line breaks inside a cell are kept
    within it), text cells neutralised, numbers as they are, CRLF line endings (RFC 4180).

    Text the file system gave undecodable bytes (surrogate escapes) is written with backslash escapes,
    so the file is valid UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)  # RFC 4180; a \r quotes its cell
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralised(printable(cell)) if isinstance(cell, str) else cell for cell in row])
    return buffer.getvalue()


def printable(text: str) -> str:
    """`text` as valid Unicode: undecodable bytes of a file name (surrogate escapes) become backslash
    escapes (b"caf\\xe9" read as "caf\\udce9" is written "caf\\\\udce9"); all other text is unchanged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def names_array(names: Sequence[str]) -> np.ndarray:
    """Row names for a .npz file: a unicode array that `np.load` reads back without pickle, one
    `printable` name per row."""
    return np.array([printable(name) for name in names], dtype=str).reshape(len(names))


def names_json(names: Sequence[str]) -> str:
    """Row names as a JSON list of `printable` names, in ASCII (for PNG text chunks and other
    metadata fields that take plain text)."""
    return json.dumps([printable(name) for name in names])
