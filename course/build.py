"""The course's notebooks from their sources: ``course/src/NN_name.py`` (cells marked ``# %%``, markdown cells
``# %% [markdown]``) -> ``course/NN_name.ipynb``, executed from a clean kernel with outputs kept.

    python course/build.py            # write and execute every notebook (make course)
    python course/build.py --check    # every notebook's cells equal its source (no output is compared)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

COURSE = Path(__file__).resolve().parent
SOURCES = sorted((COURSE / "src").glob("[0-9][0-9]_*.py"))
#: One lesson may take this long on 2 CPU cores (the issue's bound is 2 minutes).
CELL_TIMEOUT_S = 300


def cells_of(source: Path) -> list[tuple[str, str]]:
    """(kind, text) of each cell of a percent-format source."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines).strip("\n")
        out.append((kind, text))
    return out


def notebook_of(source: Path) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in cells_of(source):
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text))
    return nb


def execute(nb: Any) -> Any:
    """Run ``nb`` top to bottom in a fresh kernel, in the course folder (the solutions import from there)."""
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(COURSE)}}
    )
    client.execute()
    return nb


def target(source: Path) -> Path:
    return COURSE / f"{source.stem}.ipynb"


def check() -> list[str]:
    """Notebooks whose cells differ from their sources (edited by hand, or a source changed without a rebuild)."""
    stale = []
    for source in SOURCES:
        path = target(source)
        if not path.exists():
            stale.append(f"{path.name}: missing")
            continue
        nb = nbformat.read(path, as_version=4)
        if [(c.cell_type, c.source) for c in nb.cells] != cells_of(source):
            stale.append(f"{path.name}: its cells differ from src/{source.name}")
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the notebooks match their sources")
    parser.add_argument("lessons", nargs="*", help="lesson numbers to build (default: all)")
    args = parser.parse_args()
    if args.check:
        stale = check()
        for line in stale:
            print(line, file=sys.stderr)
        return 1 if stale else 0
    for source in SOURCES:
        if args.lessons and source.name[:2] not in args.lessons:
            continue
        start = time.perf_counter()
        nb = execute(notebook_of(source))
        nbformat.write(nb, target(source))
        print(f"{target(source).name}: executed in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
