"""Every measured figure in the docs carries the day it was measured: a table of speeds (img/s, step and conversion
times, GFLOP/s), of memory (MB, RSS) or of agreement (max abs/rel differences, top-1, argmax agreement) must have a
date between the heading above it and the table, in the page or in the generated file the page pulls in with
``--8<--``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
#: A header cell that holds a measured figure.
MEASURED = re.compile(r"img/s|images/s|step|\((s|ms|MB)\)|\bms\b|GFLOP/s|\bMB\b|RSS|max abs|max rel|top-1|agreement")
SNIPPET = re.compile(r'^--8<-- "([^":]+)"$')  # a whole file pulled in (a section of one has a ':' marker)


def expanded(page: Path) -> list[str]:
    """The page's lines with each whole-file snippet replaced by that file's lines, as mkdocs renders it."""
    lines: list[str] = []
    for line in page.read_text().splitlines():
        m = SNIPPET.match(line.strip())
        lines += expanded(ROOT / m[1]) if m and (ROOT / m[1]).exists() else [line]
    return lines


def undated_tables(lines: list[str]) -> list[str]:
    """The header rows of the figure tables with no date since the last heading."""
    found, since_heading = [], 0
    for i, line in enumerate(lines):
        if line.startswith("#"):
            since_heading = i
        is_head = line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|[\s:|-]+\|", lines[i + 1].strip())
        starts = is_head and (i == 0 or not lines[i - 1].startswith("|"))
        if starts and MEASURED.search(line) and not any(DATE.search(x) for x in lines[since_heading:i]):
            found.append(line)
    return found


def test_every_figure_table_in_the_docs_is_dated() -> None:
    pages = sorted((ROOT / "docs").glob("*.md"))
    undated = {p.name: t for p in pages if (t := undated_tables(expanded(p)))}
    assert undated == {}, "a figure without the day it was measured (write 'Measured YYYY-MM-DD' above it)"
    assert any(MEASURED.search(x) for p in pages for x in expanded(p)), "the check found no figure table at all"


def test_an_undated_table_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Speed\n\nOn 2 cores:\n\n| backend | img/s |\n|---|---:|\n| torch | 20.2 |\n")
    assert undated_tables(expanded(page)) == ["| backend | img/s |"]
    page.write_text("# Speed\n\nMeasured 2026-12-07 on 2 cores:\n\n| backend | img/s |\n|---|---:|\n| torch | 20.2 |\n")
    assert undated_tables(expanded(page)) == []
    page.write_text("# Old\n\nMeasured 2026-12-07.\n\n## New\n\n| backend | img/s |\n|---|---:|\n")
    assert undated_tables(expanded(page)) == ["| backend | img/s |"]  # a date under another heading does not count
