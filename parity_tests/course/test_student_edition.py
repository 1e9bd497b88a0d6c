"""The exercise's student edition, graded by otter-grader as a teacher grades it: ``otter assign`` of the committed
source, then the autograder (public and hidden checks) run on submissions from a clean kernel. The teacher's
solutions score full marks and print what they were committed with; the student edition as handed out scores
nothing; each planted mistake loses exactly the checks that should catch it, and the hidden check says why."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from .test_notebooks import COURSE, build, marked

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("otter") is None or importlib.util.find_spec("paddle") is None,
    reason="otter-grader and paddle are needed to grade the exercise",
)
EXERCISE = next(s for s in build.SOURCES if build.is_exercise(s))
ANSWER_TAG = "otter_answer_cell"  # otter's tag on the cells a student fills in


@pytest.fixture(scope="module")
def assigned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build.assign(EXERCISE, tmp_path_factory.mktemp("assigned"))


def grade(submission: Path, assigned: dict[str, Path]) -> Any:
    """otter's grade of ``submission``, its kernel on one thread (it shares the cores with the other test worker)."""
    import os

    from otter.api import grade_submission

    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the kernel otter starts inherits it
    try:
        return grade_submission(str(submission), str(assigned["autograder"]), quiet=True)
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


def failed(results: Any) -> dict[str, str]:
    """Each failed check's name (``q1_torch_basic_block - 3``) -> the last line of its message."""
    return {
        tc.test_case.name: tc.message.strip().splitlines()[-1]
        for question in results.results.values()
        for tc in question.test_case_results
        if not tc.passed
    }


def submission(assigned: dict[str, Path], tmp_path: Path, edits: list[tuple[str, str]]) -> Path:
    """The student edition with the teacher's answers typed in, then edited: each (old, new) of ``edits``."""
    import nbformat

    student = nbformat.read(assigned["student"], as_version=4)
    answers = [c.source for c in nbformat.read(assigned["teacher"], as_version=4).cells if _is_answer(c)]
    cells = [c for c in student.cells if ANSWER_TAG in c.metadata.get("tags", [])]
    assert len(cells) == len(answers) == 2
    for cell, answer in zip(cells, answers, strict=True):
        cell.source = answer
    for old, new in edits:
        hits = [c for c in cells if old in c.source]
        assert len(hits) == 1, f"{old!r} is not in exactly one answer"
        hits[0].source = hits[0].source.replace(old, new)
    path = tmp_path / assigned["student"].name
    nbformat.write(student, path)
    return path


def _is_answer(cell: Any) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith("class ") and "# BEGIN SOLUTION" in cell.source


def test_the_editions_keep_the_solutions_out_of_the_student_notebook() -> None:
    import nbformat

    student = nbformat.read(build.target(EXERCISE), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "torch.nn.Conv2d(cin, cout, 3, stride, 1" not in text and "BEGIN SOLUTION" not in text
    assert not any(c.get("outputs") for c in student.cells if c.cell_type == "code")
    checks = "\n".join(student.metadata["otter"]["tests"].values())  # the public checks, as otter's test files
    assert checks.count("hidden=False") == 4 and "hidden=True" not in checks and "check_model" not in checks
    assert "/course/teacher/" in (COURSE.parent / "mkdocs.yml").read_text()  # the site leaves the solutions out


def test_the_teachers_solutions_score_full_marks_and_print_as_committed(assigned: dict[str, Path]) -> None:
    import nbformat

    results = grade(assigned["teacher"], assigned)
    assert failed(results) == {}
    assert results.total == results.possible == 4
    committed = nbformat.read(build.TEACHER / build.target(EXERCISE).name, as_version=4)
    assert marked(results.notebook) == marked(committed) != []


def test_the_student_edition_as_handed_out_scores_nothing(assigned: dict[str, Path]) -> None:
    results = grade(assigned["student"], assigned)
    assert results.total == 0 and len(failed(results)) == 6


PLANTED = {
    "torch stride on conv2": (
        [
            ("Conv2d(cin, cout, 3, stride, 1,", "Conv2d(cin, cout, 3, 1, 1,"),
            ("Conv2d(cout, cout, 3, 1, 1,", "Conv2d(cout, cout, 3, stride, 1,"),
        ],
        {"q1_torch_basic_block - 3": "the stride sits on the second 3x3 conv"},
    ),
    "torch projection without BN": (
        [
            (
                "torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)",
                "torch.nn.Conv2d(cin, cout, 1, stride, bias=False)",
            )
        ],
        {"q1_torch_basic_block - 2": "trainable parameters", "q1_torch_basic_block - 3": "missing its BN"},
    ),
    "paddle ReLU before the addition": (
        [("out = self.bn3(self.conv3(out))", "out = relu(self.bn3(self.conv3(out)))")],
        {"q2_paddle_bottleneck - 3": "before the addition as well as after it"},
    ),
    "paddle bottleneck expanding 2x": (
        [("cout = 4 * width", "cout = 2 * width")],
        {
            "q2_paddle_bottleneck - 1": "4 x 64 channels, same H, W",
            "q2_paddle_bottleneck - 2": "trainable parameters",
            "q2_paddle_bottleneck - 3": "expands 2x",
        },
    ),
}


@pytest.mark.parametrize("mistake", PLANTED)
def test_a_planted_mistake_loses_the_check_that_names_it(
    mistake: str, assigned: dict[str, Path], tmp_path: Path
) -> None:
    edits, want = PLANTED[mistake]
    results = grade(submission(assigned, tmp_path, edits), assigned)
    got = failed(results)
    assert sorted(got) == sorted(want), got
    for name, words in want.items():
        assert words in got[name], (name, got[name])
    assert results.total == pytest.approx(4 - len(want) * 2 / 3)
