"""Parity output files: JSON records, a Markdown report and the divergence-across-depth plot.

Every file is written to a temporary name in the target folder and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from resnet_tools.core.dated import measured_on
from resnet_tools.core.files import atomic_write


def write_json(records: Sequence[Any], path: Path | str) -> Path:
    data = json.dumps([r.as_dict() for r in records], indent=2).encode()
    return atomic_write(path, lambda fh: fh.write(data))


def _pair(r: dict[str, Any]) -> str:
    """``ParityRecord.pair()`` of a record's JSON form."""
    if r.get("against", "cross") == "cross":
        return f"{r['source']} -> {r['target']}"
    return f"{r['source']} float32 -> {r['dtype']}"


def plot_divergence(records: Sequence[dict[str, Any]], path: Path | str) -> Path:
    """One panel per model (four to a row): max relative difference at stem, stage1..4, logits, a line per
    pair. Takes the JSON form of the records (``as_dict()``)."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.parity.engine import TRAIN_POINTS

    models = list(dict.fromkeys(r["model"] for r in records))
    cols = min(4, len(models))
    rows_n = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False, sharey=True)
    for ax, model in zip(axes.flat, models, strict=False):
        rows = [r for r in records if r["model"] == model]
        for r in rows:
            points = [k for k in (TRAIN_POINTS if r["mode"] == "train" else r["stages"]) if k in r["stages"]]
            values = [max(r["stages"][k]["max_rel"], 1e-12) for k in points]
            ax.plot(points, values, marker="o", label=_pair(r))
        ax.axhline(rows[0]["tolerance"], color="red", linestyle="--", label="tolerance")
        ax.set_yscale("log")
        ax.set_title(f"{model} ({rows[0]['device']}, {rows[0]['mode']})", fontsize=9)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("max |diff| / max |reference|", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return Path(path)


def heatmap_grid(
    records: Sequence[dict[str, Any]],
) -> tuple[list[str], list[str], np.ndarray, list[tuple[int, int]]]:
    """(models, pairs, models x pairs worst max_rel over every depth point, the cells above tolerance)."""
    models = list(dict.fromkeys(r["model"] for r in records))
    pairs = list(dict.fromkeys(_pair(r).replace(" -> ", "\n-> ") for r in records))
    grid = np.full((len(models), len(pairs)), np.nan)
    over = []
    for r in records:
        i, j = models.index(r["model"]), pairs.index(_pair(r).replace(" -> ", "\n-> "))
        grid[i, j] = max(max(s["max_rel"] for s in r["stages"].values()), 1e-16)
        if grid[i, j] > r["tolerance"]:
            over.append((i, j))
    return models, pairs, grid, over


def plot_heatmap(records: Sequence[dict[str, Any]], path: Path | str) -> Path:
    """The parity matrix as one picture: models x ordered pairs, each cell the worst relative difference over
    every depth point (stem, stages, logits), on a log colour scale; cells
    above their tolerance are outlined in red. Takes the JSON form of the records (``as_dict()``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    models, pairs, grid, over = heatmap_grid(records)
    fig, ax = plt.subplots(figsize=(1.3 * len(pairs) + 2.5, 0.36 * len(models) + 1.6))
    finite = grid[np.isfinite(grid)]
    tolerance = max(r["tolerance"] for r in records)  # the scale tops out at the tolerance: distance to it shows
    norm = LogNorm(vmin=min(finite.min(), tolerance / 100), vmax=max(finite.max(), tolerance))
    image = ax.imshow(grid, cmap="viridis", norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            shade = "black" if norm(value) > 0.6 else "white"
            ax.text(j, i, f"{value:.1e}", ha="center", va="center", fontsize=7, color=shade)
    for i, j in over:
        ax.add_patch(patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(len(pairs)), pairs, fontsize=7)
    ax.set_yticks(range(len(models)), models, fontsize=7)
    first = records[0]
    ax.set_title(f"worst max relative difference over stem, stages and logits ({first['device']}, {first['dtype']}, "
                 f"{first['mode']}; tolerance {first['tolerance']:g}; red: above it)", fontsize=8)  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return Path(path)


def _block_order(point: str) -> tuple[int, int]:
    """stem, layer1.0, layer1.1, ..., layer4.2, logits."""
    if point.startswith("layer"):
        stage, index = point.removeprefix("layer").split(".")
        return int(stage), int(index)
    return (0, 0) if point == "stem" else (99, 0)


def block_grid(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[str], np.ndarray, list[str | None]]:
    """(models, points, models x points worst max_rel over the pairs, each model's first block over tolerance)
    from records with block points (``resnet parity --blocks``); NaN where a model has no such block."""
    rows = [r for r in records if any(k.startswith("layer") for k in r["stages"])]
    models = list(dict.fromkeys(r["model"] for r in rows))
    points = sorted({k for r in rows for k in r["stages"]}, key=_block_order)
    grid = np.full((len(models), len(points)), np.nan)
    first: list[str | None] = [None] * len(models)
    for r in rows:
        i = models.index(r["model"])
        for k, s in r["stages"].items():
            j = points.index(k)
            grid[i, j] = max(np.nan_to_num(grid[i, j], nan=0.0), s["max_rel"], 1e-16)
        bad = r["first_divergent_stage"]
        if bad and (first[i] is None or _block_order(bad) < _block_order(first[i] or "logits")):
            first[i] = bad
    return models, points, grid, first


def plot_block_heatmap(records: Sequence[dict[str, Any]], path: Path | str) -> Path:
    """Models x residual blocks: each cell the worst relative difference over the pairs at that block's output,
    on a log scale ending at the tolerance; each model's first block beyond it outlined in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    models, points, grid, first = block_grid(records)
    fig, ax = plt.subplots(figsize=(0.22 * len(points) + 3, 0.34 * len(models) + 1.8))
    finite = grid[np.isfinite(grid)]
    tolerance = max(r["tolerance"] for r in records)
    image = ax.imshow(grid, cmap="viridis", norm=LogNorm(vmin=min(finite.min(), tolerance / 100),
                      vmax=max(finite.max(), tolerance)), aspect="auto")  # fmt: skip
    for i, bad in enumerate(first):
        if bad is not None:
            j = points.index(bad)
            ax.add_patch(patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(len(points)), points, fontsize=6, rotation=90)
    ax.set_yticks(range(len(models)), models, fontsize=7)
    ax.set_title(f"worst max relative difference at each block's output, over the pairs (tolerance {tolerance:g}; "
                 "red: the first block beyond it)", fontsize=8)  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
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


def measured_line(context: dict[str, str]) -> str:
    """The line above a parity table: its day, device, dtype, mode, input and versions."""
    when = measured_on(context.get("date"), context.get("committed"))
    return (f"{when}: {context['device']}, {context['dtype']}, {context['mode']} mode, input {context['input']}; "
            f"{context['versions']}.")  # fmt: skip


def write_report(records: Sequence[Any], folder: Path | str, context: dict[str, str]) -> Path:
    """``folder/parity.md`` + ``divergence.png`` and ``heatmap.png`` (+ ``parity.json`` and the bare ``table.md``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plot_divergence([r.as_dict() for r in records], folder / "divergence.png")
    plot_heatmap([r.as_dict() for r in records], folder / "heatmap.png")
    with_blocks = any(k.startswith("layer") for r in records for k in r.stages)
    if with_blocks:
        plot_block_heatmap([r.as_dict() for r in records], folder / "blocks.png")
    write_json(records, folder / "parity.json")
    table = f"{measured_line(context)}\n\n{markdown_table(records)}\n"  # the table alone is pulled into the docs
    atomic_write(folder / "table.md", lambda fh: fh.write(table.encode()))
    ctx = "\n".join(f"- {k}: {v}" for k, v in context.items())
    text = (
        "# Parity report\n\n"
        f"{ctx}\n\n"
        "Figures: max |target - reference| over the logits, the same relative to max |reference|, cosine\n"
        "similarity, share of the batch with the same top-1 class, and the first point along the depth\n"
        "(stem, stage1..4, logits) whose relative difference exceeds the tolerance.\n\n"
        f"{markdown_table(records)}\n\n"
        "![parity matrix](heatmap.png)\n\n"
        "![divergence across depth](divergence.png)\n"
        + ("\n![every residual block](blocks.png)\n" if with_blocks else "")
    )
    return atomic_write(folder / "parity.md", lambda fh: fh.write(text.encode()))
