"""Tables written for other programs: CSV that Python's `csv`, pandas and spreadsheets read back
cell for cell, whatever the text in it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

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
        writer.writerow([neutralised(_printable(cell)) if isinstance(cell, str) else cell for cell in row])
    return buffer.getvalue()


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
