"""The course's notebooks: committed with their outputs, equal to their sources, and each executed here from a
clean kernel. The lines a lesson marks with » (shapes, counts, verdicts) must read as committed, with measured
decimals masked (they move with the CPU); each notebook asserts its own bounds on them."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

COURSE = Path(__file__).resolve().parents[2] / "course"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nbclient") is None or importlib.util.find_spec("paddle") is None,
    reason="nbclient and paddle are needed to run the course",
)
sys.path.insert(0, str(COURSE))
import build  # noqa: E402  (course/build.py: the notebooks from their sources)

sys.path.remove(str(COURSE))
DECIMAL = re.compile(r"\d+\.\d+(e[+-]?\d+)?")


def marked(nb: Any) -> list[str]:
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"a cell failed: {out.get('ename')}: {out.get('evalue')}"
            for line in str(out.get("text", "")).splitlines():
                if line.startswith("» "):
                    lines.append(DECIMAL.sub("#", line))
    return lines


def test_the_notebooks_are_built_from_their_sources() -> None:
    assert [s.name for s in build.SOURCES] == [
        "00_why_residual.py",
        "01_residual_block.py",
        "02_block_to_network.py",
        "03_moving_weights.py",
        "04_training.py",
        "05_exercise.py",
        "06_everyday_workflow.py",
        "07_the_checker.py",
    ]
    assert build.check() == []


def test_the_source_check_sees_an_edited_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat

    source = build.SOURCES[0]
    nb = nbformat.read(build.target(source), as_version=4)
    nb.cells[1].source += "\nprint('edited by hand')"
    monkeypatch.setattr(build, "COURSE", tmp_path)
    nbformat.write(nb, tmp_path / f"{source.stem}.ipynb")
    monkeypatch.setattr(build, "SOURCES", [source])
    assert build.check() == [f"{source.stem}.ipynb: its cells differ from src/{source.name}"]


LESSONS = [s for s in build.SOURCES if not build.is_exercise(s)]  # an exercise is run by its grader's test


@pytest.mark.parametrize("source", LESSONS, ids=lambda s: s.stem)
def test_each_lesson_runs_from_a_clean_kernel_as_committed(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel shares the cores with the other test worker

    committed = nbformat.read(build.target(source), as_version=4)
    fresh = build.execute(build.notebook_of(source))  # its time is measured by make course, not asserted here
    want, got = marked(committed), marked(fresh)
    assert want, f"{source.stem} marks no line with »"
    assert got == want
