"""Files written for other programs read back, cell for cell, in those programs' standard readers,
whatever the text in them (file names with commas, quotes, line breaks, formulas, undecodable bytes)."""

import csv
import io

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from vae_zoo.core.tables import FORMULA_STARTS, csv_text, neutralised

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30) | st.sampled_from(
    ['a,b.png', 'say "hi".png', 'two\nlines.png', '=HYPERLINK("http://x")', '+1.png', '-2.png', '@sum',
     '\tx.png', 'cr\r.png', '', ' ', 'NaN', 'null', '\ufeffbom.png', 'x\x00y'])
values = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(names, values, st.integers(0, 10**6)), max_size=8))
def test_csv_round_trips_through_python_csv_and_pandas(rows):
    text = csv_text(["name", "log_px", "rank"], rows)
    expected = [neutralised(name) for name, _, _ in rows]
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read[0] == ["name", "log_px", "rank"] and len(read) == len(rows) + 1
    assert [r[0] for r in read[1:]] == expected
    assert [float(r[1]) for r in read[1:]] == [v for _, v, _ in rows]
    frame = pd.read_csv(io.StringIO(text), dtype={"name": str}, keep_default_na=False)
    assert list(frame["name"]) == expected
    assert list(frame["rank"]) == [r for _, _, r in rows]
    assert all(not cell.startswith(FORMULA_STARTS) for cell in frame["name"])


def test_text_a_spreadsheet_would_run_gets_a_leading_quote_and_numbers_stay_numbers():
    text = csv_text(["name", "value"], [["=1+1", -3.5], ["-cmd", 2], ["ok.png", 0.25]])
    assert text.splitlines() == ["name,value", "'=1+1,-3.5", "'-cmd,2", "ok.png,0.25"]


def test_undecodable_file_names_are_written_as_valid_utf8():
    name = b"caf\xe9.png".decode("utf-8", "surrogateescape")
    text = csv_text(["name"], [[name]])
    assert text.encode("utf-8") and "caf\\udce9.png" in text


# A file name is any text without "/" or NUL; undecodable bytes arrive as surrogate escapes.
file_names = st.text(st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=["Cs"]),
                     min_size=1, max_size=30) | st.sampled_from(
    ['a,b.png', 'say "hi".png', 'two\nlines.png', '=1+1.png', '"', "\\", "\ufeff.png",
     b"caf\xe9.png".decode("utf-8", "surrogateescape"), b"\xff\xfe".decode("utf-8", "surrogateescape")])


@settings(max_examples=200, deadline=None)
@given(names=st.lists(file_names, max_size=6))
def test_names_round_trip_through_numpys_npz_reader_without_pickle(names):
    import numpy as np

    from vae_zoo.core.tables import names_array, printable

    buffer = io.BytesIO()
    np.savez(buffer, z_mean=np.zeros((len(names), 2)), names=names_array(names))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as read:
        assert read["names"].tolist() == [printable(n) for n in names]
    assert all(printable(n) == n for n in names if not any("\udc80" <= c <= "\udcff" for c in n))  # only
    # undecodable bytes are changed


@settings(max_examples=100, deadline=None)
@given(names=st.lists(file_names, max_size=6))
def test_names_round_trip_through_a_png_text_chunk_in_pillow(tmp_path_factory, names):
    import json

    import numpy as np
    from PIL import Image

    from vae_zoo.core.tables import names_json, printable
    from vae_zoo.paper.viz import save_png

    path = tmp_path_factory.mktemp("png") / "grid.png"
    save_png(np.zeros((4, 4), np.uint8), path, text={"vae-zoo rows": names_json(names)})
    with Image.open(path) as image:
        assert json.loads(image.text["vae-zoo rows"]) == [printable(n) for n in names]
