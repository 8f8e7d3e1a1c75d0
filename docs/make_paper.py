"""Regenerates docs/paper.md's tables and quoted numbers from results/*.json.

Usage: python docs/make_paper.py           rewrite docs/paper.md (atomically)
       python docs/make_paper.py --check   exit 1, naming the lines, if it is not up to date
"""

import argparse
import difflib
import sys
from pathlib import Path

from vae_zoo.core.io import atomic_write_text
from vae_zoo.paper.report import render_file

REPO = Path(__file__).resolve().parents[1]
DOCUMENT, RESULTS = REPO / "docs" / "paper.md", REPO / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether docs/paper.md is up to date")
    args = parser.parse_args()
    current, rendered = DOCUMENT.read_text(), render_file(DOCUMENT, RESULTS)
    if current == rendered:
        print(f"{DOCUMENT.relative_to(REPO)} agrees with results/")
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), rendered.splitlines(True),
                                                   "docs/paper.md", "rendered from results/"))
        return 1
    atomic_write_text(DOCUMENT, rendered, overwrite=True)
    print(f"Rewrote {DOCUMENT.relative_to(REPO)} from results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
