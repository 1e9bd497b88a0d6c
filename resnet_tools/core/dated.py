"""The day a figure was measured, and the words that say it above a table: every figure in the docs is dated."""

from __future__ import annotations

import datetime
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from resnet_spec.errors import ResNetError


def today() -> str:
    """The day of a measurement, ISO (``2026-12-07``)."""
    return datetime.date.today().isoformat()


def measured_on(date: str | None, committed: str | None = None) -> str:
    """Says "Measured DATE", or for a run that kept no date, the day its file was committed, as an upper bound."""
    if date:
        return f"Measured {date}"
    if committed:
        return f"Measured on or before {committed} (the day its file was committed; the run kept no date)"
    raise ResNetError(
        "a measurement without a date (a benchmark run, a report): re-run it (each run records its day) "
        "or commit its file"
    )


def versions(*dists: str) -> str:
    """``torch 2.13.0+cpu, paddlepaddle 3.3.1`` for the installed ones of ``dists``, and Python's."""
    found = []
    for dist in dists:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join([*found, f"Python {platform.python_version()}"])


def committed_day(path: Path) -> str | None:
    """The day ``path`` was last committed (git), the upper bound on when a file that kept no date was measured."""
    log = ["git", "log", "-1", "--format=%cs", "--", path.name]
    done = subprocess.run(log, capture_output=True, text=True, cwd=path.resolve().parent, check=False)
    return done.stdout.strip() or None
