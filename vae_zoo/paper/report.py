"""The paper's write-up generated from its results: the tables and every number quoted in the
prose of a document (docs/paper.md) are filled in from results/*.json, so the text cannot drift
from the record.

A document marks what is generated:

- a table between `<!-- STEM-KIND -->` and `<!-- /STEM-KIND -->`, from results/STEM.json: KIND
  `table` (`reproduce.table`), `steps` (`reproduce.step_size_table`), `leads` (`lead_table`: the
  first method's lead over the others per panel), `reruns` (`rerun_table`) or `rows` (`rows_table`:
  a table stored as its `columns` and `rows`, e.g. the estimator validation's);
- a quoted number as `<!--=QUOTE-->VALUE<!--/-->`, where QUOTE is a reference
  `STEM:CURVE:FIELD@SAMPLES` (FIELD train or test, SAMPLES a number such as 1e7 or `end`; the
  point measured nearest to SAMPLES, which must lie within 10 % of it; points also have
  train_median, test_median, train_se and test_se where they were measured with them),
  `STEM:CURVE:rerun_check.FIELD` (a field of the curve's rerun check), `STEM:CURVE:minutes_per_million`
  (its wall time per 10^6 training samples), `STEM:[ROW]:COLUMN` (a cell of a rows table: ROW its
  first two cells joined by " / ", COLUMN the column's name), or the difference of two
  (`REF - REF`), optionally followed by `|FORMAT` (a Python format spec, default `.2f`; `+.1f` for a
  signed difference).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.paper import reproduce

BLOCK = re.compile(r"(<!-- (?P<name>[\w.-]+)-(?P<kind>table|steps|leads|reruns|rows) -->\n)(?P<body>.*?)"
                   r"(\n<!-- /(?P=name)-(?P=kind) -->)", re.S)
QUOTE = re.compile(r"(<!--=(?P<quote>[^>]*?)-->)(?P<value>.*?)(<!--/-->)", re.S)
REFERENCE = re.compile(r"^(?P<stem>[\w.-]+):(?P<curve>[\w.-]+):(?:(?P<field>(?:train|test)(?:_median|_se)?)@"
                       r"(?P<at>end|[0-9.e+]+)|rerun_check\.(?P<check>\w+)|(?P<rate>minutes_per_million))$")
ROW_REFERENCE = re.compile(r"^(?P<stem>[\w.-]+):\[(?P<row>[^\]]+)\]:(?P<column>.+)$")
MILESTONES = (1e6, 1e7, 1e8)  # the samples at which lead_table compares the methods


def render(text: str, results: Mapping[str, dict]) -> str:
    """`text` with every marked table and quote filled in from `results` (stem -> results dict).

    Raises:
        InvalidArgumentError: a marker names results, a curve or a point that is not there, or a
            quote does not parse.
    """
    def table(match):
        data = _results(results, match["name"])
        body = {"table": reproduce.table, "steps": reproduce.step_size_table, "leads": lead_table,
                "reruns": rerun_table, "rows": rows_table}[match["kind"]](data)
        return match.group(1) + body + match.group(5)

    def quote(match):
        return match.group(1) + value(match["quote"], results) + match.group(4)

    return QUOTE.sub(quote, BLOCK.sub(table, text))


def value(quote: str, results: Mapping[str, dict]) -> str:
    """The text of one quote (see the module doc): a reference or a difference, formatted."""
    expression, _, spec = quote.partition("|")
    terms = [t.strip() for t in expression.split(" - ")]
    if len(terms) > 2 or not all(terms):
        raise InvalidArgumentError(f"Quote {quote!r}: expected REF or REF - REF, optionally |FORMAT.")
    numbers = [_point(term, results) for term in terms]
    number = numbers[0] - numbers[1] if len(numbers) == 2 else numbers[0]
    try:
        return format(number, spec.strip() or ".2f")
    except ValueError as err:
        raise InvalidArgumentError(f"Quote {quote!r}: {err}") from None


def _point(reference: str, results: Mapping[str, dict]) -> float:
    cell = ROW_REFERENCE.match(reference)
    if cell:
        return _cell(reference, _results(results, cell["stem"]), cell["row"], cell["column"])
    match = REFERENCE.match(reference)
    if match is None:
        raise InvalidArgumentError(f"Quote reference {reference!r}: expected STEM:CURVE:FIELD@SAMPLES "
                                   "(FIELD train or test, optionally with _median or _se; SAMPLES a number such as "
                                   "1e7, or end), STEM:CURVE:rerun_check.FIELD, STEM:CURVE:minutes_per_million or "
                                   "STEM:[ROW]:COLUMN.")
    curves = _results(results, match["stem"]).get("curves", {})
    if match["curve"] not in curves:
        raise InvalidArgumentError(f"Quote reference {reference!r}: no curve {match['curve']} in {match['stem']}.")
    if match["rate"]:
        curve = curves[match["curve"]]
        return curve["wall_seconds"] / 60 / (curve["samples"] / 1e6)
    if match["check"]:
        number = curves[match["curve"]].get("rerun_check", {}).get(match["check"])
        if not isinstance(number, (int, float)):
            raise InvalidArgumentError(f"Quote reference {reference!r}: the curve has no number there.")
        return float(number)
    points = curves[match["curve"]]["points"]
    point = points[-1] if match["at"] == "end" else _near(points, float(match["at"]))
    if point is None:
        raise InvalidArgumentError(f"Quote reference {reference!r}: {match['curve']} has no point within 10 % of "
                                   f"{match['at']} samples.")
    if match["field"] not in point:
        raise InvalidArgumentError(f"Quote reference {reference!r}: the point at {point['samples']:,} samples has no "
                                   f"{match['field']}.")
    return float(point[match["field"]])


def _cell(reference: str, table: dict, row: str, column: str) -> float:
    """The number in `column` of the row of a rows table (see `rows_table`) whose first two cells,
    joined by " / ", are `row`."""
    columns, rows = table.get("columns", []), table.get("rows", [])
    found = [r for r in rows if " / ".join(map(str, r[:2])) == row]
    if column not in columns or len(found) != 1:
        raise InvalidArgumentError(f"Quote reference {reference!r}: the table's rows are "
                                   f"{[' / '.join(map(str, r[:2])) for r in rows]} and its columns {columns}.")
    number = found[0][columns.index(column)]
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise InvalidArgumentError(f"Quote reference {reference!r}: {number!r} is not a number.")
    return float(number)


def _near(points: list[dict], samples: float) -> dict | None:
    """The point measured nearest to `samples`, if it lies within 10 % of it."""
    point = reproduce.nearest(points, samples)
    return point if 0.9 <= point["samples"] / samples <= 1.1 else None


def lead_table(results: dict) -> str:
    """A markdown table: per panel, the test value of its first method (AEVB) minus each other
    method's at 10^6, 10^7 and 10^8 samples ("-" where a curve has not reached them); positive:
    the first method is ahead."""
    panels: dict[tuple, dict] = {}
    for c in results["curves"].values():
        panels.setdefault((c["dataset"], c["latent_dim"], c["n_train"]), {})[c["method"]] = c
    lines = [f"| data | N_z | N | lead of | {' | '.join(f'@ {m:.0e}' for m in MILESTONES)} |",
             "|" + " --- |" * (4 + len(MILESTONES))]
    for (dataset, z, n), methods in sorted(panels.items()):
        first, *others = methods
        for other in others:
            cells = []
            for at in MILESTONES:
                a, b = _near(methods[first]["points"], at), _near(methods[other]["points"], at)
                cells.append(f"{a['test'] - b['test']:+.1f}" if a and b else "-")
            lines.append(f"| {dataset} | {z} | {n:,} | {first} over {other} | {' | '.join(cells)} |")
    return "\n".join(lines)


def rerun_table(results: dict) -> str:
    """A markdown table of each curve's rerun from its seed against the first published run: the
    samples each reached, the points both measured and their largest difference (train or test)."""
    lines = ["| curve | published to | rerun to | rerun step size | points compared | max abs difference |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, c in sorted(results["curves"].items()):
        check = c.get("rerun_check")
        if check is None:
            continue
        published = c.get("replaced", c)["samples"]
        diff = check["max_abs_difference"]
        lines.append(f"| {name} | {published:.2g} | {check['rerun_samples']:.2g} | {check['rerun_learning_rate']:g} | "
                     f"{check['points']} | {'-' if diff is None else f'{diff:.4g}'} |")
    return "\n".join(lines)


def rows_table(results: dict) -> str:
    """A markdown table of a results file that stores one: its `columns` and `rows`, under the
    command that wrote it."""
    if not isinstance(results.get("columns"), list) or not isinstance(results.get("rows"), list):
        raise InvalidArgumentError("A rows table needs results with `columns` and `rows`.")
    lines = [f"`{results['command']}`:", "", f"| {' | '.join(results['columns'])} |",
             "|" + " --- |" * len(results["columns"])]
    return "\n".join(lines + [f"| {' | '.join(map(str, row))} |" for row in results["rows"]])


def _results(results: Mapping[str, dict], stem: str) -> dict:
    if stem not in results:
        raise InvalidArgumentError(f"The document quotes results/{stem}.json, which is not among the results "
                                   f"read ({', '.join(sorted(results)) or 'none'}).")
    return results[stem]


def render_file(document: str | os.PathLike, results_dir: str | os.PathLike) -> str:
    """The text of `document` rendered from every results file in `results_dir` (a figure's
    FIGURE.json, or a table's)."""
    results = {path.stem: json.loads(path.read_text()) for path in sorted(Path(results_dir).glob("*.json"))}
    return render(Path(document).read_text(), results)
