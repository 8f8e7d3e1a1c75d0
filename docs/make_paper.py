"""Regenerates the tables and quoted numbers of docs/paper.md and README.md from results/*.json.

Usage: python docs/make_paper.py           rewrite them (atomically)
       python docs/make_paper.py --check   exit 1, naming the lines, if one is not up to date
"""

import argparse
import difflib
import sys
from pathlib import Path

from vae_zoo.core.io import atomic_write_text
from vae_zoo.paper.report import render_file

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS, RESULTS = [REPO / "docs" / "paper.md", REPO / "README.md"], REPO / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the documents are up to date")
    args = parser.parse_args()
    stale = 0
    for document in DOCUMENTS:
        name = document.relative_to(REPO)
        current, rendered = document.read_text(), render_file(document, RESULTS)
        if current == rendered:
            print(f"{name} agrees with results/")
        elif args.check:
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), rendered.splitlines(True),
                                                       str(name), "rendered from results/"))
            stale = 1
        else:
            atomic_write_text(document, rendered, overwrite=True)
            print(f"Rewrote {name} from results/")
    return stale


if __name__ == "__main__":
    sys.exit(main())
