"""The course's notebooks from their sources: ``course/src/NN_name.py`` (cells marked ``# %%``, markdown cells
``# %% [markdown]``, raw cells ``# %% [raw]``) -> ``course/NN_name.ipynb``, executed from a clean kernel with outputs
kept.

A source whose first cell is otter-grader's ``# ASSIGNMENT CONFIG`` is an exercise: ``otter assign`` splits it into
the student edition ``course/NN_name.ipynb`` (answers replaced by ``...``, public checks, no outputs; what the site
shows) and the teacher edition ``course/teacher/NN_name.ipynb`` (the solutions, executed with outputs kept).

    python course/build.py            # write and execute every notebook (make course)
    python course/build.py --check    # every notebook's cells equal its source (no output is compared)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

COURSE = Path(__file__).resolve().parent
SOURCES = sorted((COURSE / "src").glob("[0-9][0-9]_*.py"))
TEACHER = COURSE / "teacher"
#: One lesson may take this long on 2 CPU cores (the issue's bound is 2 minutes).
CELL_TIMEOUT_S = 300


def cells_of(source: Path) -> list[tuple[str, str]]:
    """(kind, text) of each cell of a percent-format source."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "raw" if "[raw]" in line else "code"
            cells.append((kind, []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind in ("markdown", "raw"):
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines).strip("\n")
        out.append((kind, text))
    return out


def notebook_of(source: Path) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in cells_of(source):
        new = {"markdown": nbformat.v4.new_markdown_cell, "raw": nbformat.v4.new_raw_cell}
        nb.cells.append(new.get(kind, nbformat.v4.new_code_cell)(text))
    return nb


def is_exercise(source: Path) -> bool:
    """Whether ``source`` is an otter-grader assignment (its first cell is the ``# ASSIGNMENT CONFIG``)."""
    cells = cells_of(source)
    return bool(cells) and cells[0][0] == "raw" and cells[0][1].startswith("# ASSIGNMENT CONFIG")


def assign(source: Path, out: Path) -> dict[str, Path]:
    """``otter assign`` of an exercise into ``out``: the paths of its student and teacher (autograder) notebooks
    and of the autograder zip, which holds the hidden checks."""
    master = out / "master" / f"{source.stem}.ipynb"
    master.parent.mkdir(parents=True)
    nbformat.write(notebook_of(source), master)
    otter = Path(sys.executable).with_name("otter")
    subprocess.run([str(otter), "assign", str(master), str(out / "dist")], check=True, capture_output=True)
    autograder = out / "dist" / "autograder"
    return {
        "student": out / "dist" / "student" / master.name,
        "teacher": autograder / master.name,
        "autograder": next(autograder.glob("*-autograder_*.zip")),
    }


def editions(source: Path) -> list[tuple[Path, Any]]:
    """(committed path, notebook not yet executed) of each notebook a source makes: one for a lesson; for an
    exercise, the student edition (executed never) and the teacher edition."""
    if not is_exercise(source):
        return [(target(source), notebook_of(source))]
    with tempfile.TemporaryDirectory() as tmp:
        made = assign(source, Path(tmp))
        student, teacher = (nbformat.read(made[k], as_version=4) for k in ("student", "teacher"))
    return [(target(source), student), (TEACHER / target(source).name, teacher)]


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
        for path, want in editions(source):
            name = path.relative_to(COURSE)
            if not path.exists():
                stale.append(f"{name}: missing")
                continue
            nb = nbformat.read(path, as_version=4)
            if [(c.cell_type, c.source) for c in nb.cells] != [(c.cell_type, c.source) for c in want.cells]:
                stale.append(f"{name}: its cells differ from src/{source.name}")
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
        for path, nb in editions(source):
            if path.parent == TEACHER or not is_exercise(source):  # a student edition is handed out unexecuted
                start = time.perf_counter()
                nb = execute(nb)
                print(f"{path.relative_to(COURSE)}: executed in {time.perf_counter() - start:.0f} s")
            path.parent.mkdir(exist_ok=True)
            nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
