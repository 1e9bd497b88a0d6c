"""Parity output files: JSON records, a Markdown report and the divergence-across-depth plot.

Every file is written to a temporary name in the target folder and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resnet_tools.core.files import atomic_write


def write_json(records: Sequence[Any], path: Path | str) -> Path:
    data = json.dumps([r.as_dict() for r in records], indent=2).encode()
    return atomic_write(path, lambda fh: fh.write(data))


def plot_divergence(records: Sequence[Any], path: Path | str) -> Path:
    """One panel per model: max relative difference at stem, stage1..4, logits, a line per pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.parity.engine import DEPTH, TRAIN_POINTS

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
