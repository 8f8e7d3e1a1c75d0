"""Every code example of README.md, export/README.md and the guides in docs/ runs as written, so the
docs cannot drift.

Python blocks run in a fresh interpreter in an empty folder (the README's own settings are
small enough); shell blocks run with bash, in a copy of the repository where they touch it
(they install the package, or rewrite the edge bundle). Two blocks are not run here: the
README's test command, which is what runs this file, and its first command (a fresh venv, the
package alone, a sample); `.ci/run` runs both exactly as written, in a fresh clone.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, or starts interpreters and workers

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "export/README.md", "docs/your-data.md", "docs/export.md", "docs/speed.md",
        "docs/python-api.md"]
FENCE = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)
TEST_COMMAND = 'pip install ".[test]"'
FIRST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install . && "
                 ".venv/bin/vae-zoo sample mnist-z20 -n 64 -o samples.png")


def blocks():
    for doc in DOCS:
        text = (REPO / doc).read_text()
        for match in FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            yield pytest.param(match.group(1), match.group(2), id=f"{doc}:{line}")


def is_test_command(code: str) -> bool:
    return TEST_COMMAND in code and "pytest" in code


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    copy = tmp_path_factory.mktemp("docs") / "vae-zoo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "__pycache__", "*.egg-info", "build", ".pytest_cache", "node_modules"))
    return copy


def env() -> dict:
    bin_dir = str(Path(sys.executable).parent)  # python3 and vae-zoo of this environment
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.parametrize("language, code", list(blocks()))
def test_example_runs_as_written(language, code, tmp_path, repo_copy):
    ci = (REPO / ".ci" / "run").read_text()
    if is_test_command(code):
        assert '".[test]"' in ci and ".venv/bin/pytest -q" in ci  # .ci/run runs this very command
        return
    if code.strip() == FIRST_COMMAND:  # .ci/run runs it verbatim, as the first thing in a fresh clone
        assert FIRST_COMMAND in ci.splitlines() and "set -euo pipefail" in ci
        return
    if language == "python":
        # Blocks that read the bundle by its repository path run from the repository.
        cwd = REPO if "export/" in code and "vae_zoo.export" not in code else tmp_path
        command = [sys.executable, "-c", code]
    else:
        cwd = repo_copy
        command = ["bash", "-euo", "pipefail", "-c", code]
    result = subprocess.run(command, cwd=cwd, env=env(), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{code}\n--- stderr ---\n{result.stderr[-3000:]}"


def test_every_document_has_examples():
    ids = [p.id for p in blocks()]
    assert any(code.strip() == FIRST_COMMAND for _, code in (p.values for p in blocks()))
    assert any(i.startswith("README.md") for i in ids) and any(i.startswith("export/README.md") for i in ids)


def test_python_examples_import_vae_zoo_before_keras_or_tensorflow():
    """vae_zoo mutes TensorFlow's start-up lines only when it is imported first."""
    late = []
    for param in blocks():
        language, code = param.values
        imports = re.findall(r"^\s*(?:import|from)\s+(vae_zoo|keras|tensorflow)\b", code, re.M)
        if language == "python" and imports and "vae_zoo" in imports and imports[0] != "vae_zoo":
            late.append(param.id)
    assert not late, f"import vae_zoo first in {late}"


def test_the_readme_zoo_table_is_what_vae_zoo_list_prints(capsys):
    """The README's table of presets (bound, AIS and exact columns) agrees with the model cards."""
    from vae_zoo import cli

    assert cli.main(["list"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("name ", "mnist", "frey"))]
    block = re.search(r"^```\n(name .*?)^```", (REPO / "README.md").read_text(), re.S | re.M).group(1)
    assert block.splitlines() == printed
