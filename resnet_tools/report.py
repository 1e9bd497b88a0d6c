"""Parity output files: JSON records, a Markdown report and the divergence-across-depth plot.

Every file is written to a temporary name in the target folder and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from resnet_spec.errors import CheckpointError


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write through ``write(fileobj)`` to a temp file beside ``path``, then rename (no half-written file)."""
    from resnet_tools.formats import commit, temp_path

    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"cannot write {path}: folder {path.parent} does not exist")
    with temp_path(path) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
        commit(tmp, path)
    return path


def check_outputs(files: Sequence[str | None], *, force: bool, report_dir: str | None = None) -> None:
    """Before a run: every output's folder exists, and nothing is overwritten without ``--force`` (a report
    folder counts as taken when it holds a parity.md). Fails in one line, not after minutes of work."""
    for name in files:
        if not name:
            continue
        path = Path(name)
        if path.is_dir():
            raise CheckpointError(f"cannot write {path}: it is a folder")
        if not path.parent.is_dir():
            raise CheckpointError(f"cannot write {path}: folder {path.parent} does not exist")
        if path.exists() and not force:
            raise CheckpointError(f"{path} exists; pass --force to overwrite")
    if report_dir:
        folder = Path(report_dir)
        if folder.exists() and not folder.is_dir():
            raise CheckpointError(f"--report {folder}: not a folder")
        if (folder / "parity.md").exists() and not force:
            raise CheckpointError(f"{folder} already holds a report; pass --force to overwrite")


def write_json(records: Sequence[Any], path: Path | str) -> Path:
    data = json.dumps([r.as_dict() for r in records], indent=2).encode()
    return atomic_write(path, lambda fh: fh.write(data))


def plot_divergence(records: Sequence[Any], path: Path | str) -> Path:
    """One panel per model: max relative difference at stem, stage1..4, logits, a line per pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.parity import DEPTH, TRAIN_POINTS

    models = list(dict.fromkeys(r.model for r in records))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.6), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models, strict=True):
        rows = [r for r in records if r.model == model]
        for r in rows:
            points = [k for k in (TRAIN_POINTS if r.mode == "train" else DEPTH) if k in r.stages]
            values = [max(r.stages[k].max_rel, 1e-12) for k in points]
            ax.plot(points, values, marker="o", label=r.pair())
        ax.axhline(rows[0].tolerance, color="red", linestyle="--", label="tolerance")
        ax.set_yscale("log")
        ax.set_title(f"{model} ({rows[0].device}, {rows[0].mode})")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("max |diff| / max |reference|")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def markdown_table(records: Sequence[Any]) -> str:
    lines = [
        "| model | source -> target | max abs | max rel | 1 - cosine | top-1 agree | worst point | first divergent "
        "| pass |",
        "|---|---|---:|---:|---:|---|---|---|---|",
    ]
    for r in records:
        top1 = "n/a" if r.top1_agree is None else f"{r.top1_agree:.0%}"
        worst = max(r.stages, key=lambda k: r.stages[k].max_rel)
        lines.append(
            f"| {r.model} | {r.pair()} | {r.max_abs_diff:.2e} | {r.max_rel_diff:.2e} | "
            f"{1 - r.cosine:.1e} | {top1} | {worst} {r.stages[worst].max_rel:.1e} | "
            f"{r.first_divergent_stage or '-'} | {'yes' if r.passed else '**NO**'} |"
        )
    return "\n".join(lines)


def write_report(records: Sequence[Any], folder: Path | str, context: dict[str, str]) -> Path:
    """``folder/parity.md`` + ``folder/divergence.png`` (+ ``parity.json`` and the bare ``table.md``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plot_divergence(records, folder / "divergence.png")
    write_json(records, folder / "parity.json")
    table = markdown_table(records) + "\n"
    atomic_write(folder / "table.md", lambda fh: fh.write(table.encode()))
    ctx = "\n".join(f"- {k}: {v}" for k, v in context.items())
    text = (
        "# Parity report\n\n"
        f"{ctx}\n\n"
        "Figures: max |target - reference| over the logits, the same relative to max |reference|, cosine\n"
        "similarity, share of the batch with the same top-1 class, and the first point along the depth\n"
        "(stem, stage1..4, logits) whose relative difference exceeds the tolerance.\n\n"
        f"{markdown_table(records)}\n\n"
        "![divergence across depth](divergence.png)\n"
    )
    return atomic_write(folder / "parity.md", lambda fh: fh.write(text.encode()))
