"""docs/paper.md and README.md cannot drift from results/: their tables and every number marked in
their prose are regenerated from results/*.json (python docs/make_paper.py) and must equal what the
files say."""

import difflib
from pathlib import Path

import pytest

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.paper import report

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("document, quotes", [("docs/paper.md", 90), ("README.md", 6)])
def test_the_documents_say_what_the_results_say(document, quotes):
    path = REPO / document
    current, rendered = path.read_text(), report.render_file(path, REPO / "results")
    diff = "".join(difflib.unified_diff(current.splitlines(True), rendered.splitlines(True), n=0))
    assert current == rendered, f"run `python docs/make_paper.py`:\n{diff[:3000]}"
    assert current.count("<!--=") >= quotes  # the prose's numbers are quoted through the generator


def _results():
    return {"fig": {"curves": {"a-aevb": {"dataset": "mnist", "latent_dim": 3, "n_train": 10, "method": "aevb",
                                          "samples": 1000, "wall_seconds": 120.0, "learning_rate": 0.1,
                                          "points": [{"samples": 100, "train": -150.0, "test": -151.25},
                                                     {"samples": 1000, "train": -120.0, "test": -125.5}]}}}}


def test_a_changed_quote_is_put_back_and_a_difference_is_computed():
    text = "at 1e3 <!--=fig:a-aevb:test@1e3-->-999.00<!--/--> (gap <!--=fig:a-aevb:train@1e3 - " \
           "fig:a-aevb:test@1e3|+.1f-->0<!--/-->), start <!--=fig:a-aevb:train@100|.0f-->x<!--/-->, " \
           "<!--=fig:a-aevb:minutes_per_million-->?<!--/--> min"
    assert report.render(text, _results()) == (
        "at 1e3 <!--=fig:a-aevb:test@1e3-->-125.50<!--/--> (gap <!--=fig:a-aevb:train@1e3 - "
        "fig:a-aevb:test@1e3|+.1f-->+5.5<!--/-->), start <!--=fig:a-aevb:train@100|.0f-->-150<!--/-->, "
        "<!--=fig:a-aevb:minutes_per_million-->2000.00<!--/--> min")


@pytest.mark.parametrize("quote, message", [
    ("fig:b-aevb:test@1e3", "no curve b-aevb"),
    ("other:a-aevb:test@1e3", "results/other.json"),
    ("fig:a-aevb:test@1e5", "no point within 10 %"),  # a budget the curve has not reached
    ("fig:a-aevb:elbo@1e3", "expected STEM:CURVE"),
    ("fig:a-aevb:test_se@1e3", "has no test_se"),  # a point measured before standard errors were
    ("fig:a-aevb:rerun_check.max_abs_difference", "no number there"),
    ("fig:a-aevb:test@1e3 - fig:a-aevb:test@1e3 - fig:a-aevb:test@1e3", "REF - REF"),
    ("fig:a-aevb:test@1e3|q", "Quote"),
])
def test_a_quote_that_names_nothing_in_the_results_is_an_error(quote, message):
    with pytest.raises(InvalidArgumentError, match=message):
        report.render(f"<!--={quote}-->1<!--/-->", _results())


def test_tables_are_regenerated_between_their_markers():
    text = "<!-- fig-leads -->\nstale\n<!-- /fig-leads -->\n<!-- fig-table -->\nstale\n<!-- /fig-table -->"
    rendered = report.render(text, _results())
    assert "stale" not in rendered and "| mnist | 3 | 10 | aevb |" in rendered


def test_a_stored_table_is_rendered_under_its_command_and_a_figure_table_needs_curves():
    results = {**_results(), "check": {"command": "python check.py", "columns": ["model", "error"],
                                       "rows": [["a", 0.5], ["b", -1]]}}
    rendered = report.render("<!-- check-rows -->\nstale\n<!-- /check-rows -->", results)
    assert rendered == ("<!-- check-rows -->\n`python check.py`:\n\n| model | error |\n| --- | --- |\n| a | 0.5 |\n"
                        "| b | -1 |\n<!-- /check-rows -->")
    with pytest.raises(InvalidArgumentError, match="columns"):
        report.render("<!-- fig-rows -->\nstale\n<!-- /fig-rows -->", results)
    with pytest.raises(InvalidArgumentError, match="no curve"):
        report.render("<!--=check:a:test@end-->1<!--/-->", results)
    # A cell of a stored table is quoted by its row's first two cells and its column's name.
    results["check"] = {**results["check"], "columns": ["model", "images", "error"],
                        "rows": [["a", "test", 0.5], ["b", "test", -1]]}
    assert report.render("<!--=check:[b / test]:error|+.1f-->x<!--/--> "
                         "<!--=check:[a / test]:error - check:[b / test]:error|.1f-->x<!--/-->", results) == (
        "<!--=check:[b / test]:error|+.1f-->-1.0<!--/--> "
        "<!--=check:[a / test]:error - check:[b / test]:error|.1f-->1.5<!--/-->")
    for quote, message in (("check:[c / test]:error", "rows are"), ("check:[a / test]:worst", "columns"),
                           ("check:[a / test]:images", "'test' is not a number")):
        with pytest.raises(InvalidArgumentError, match=message):
            report.render(f"<!--={quote}-->1<!--/-->", results)
