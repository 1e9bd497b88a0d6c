"""Render benchmark JSON files (from `resnet bench --json`) into Markdown tables and the overview chart.

Run: .venv/bin/python bench/render_bench.py docs/generated/bench.json docs/generated/bench_keras_official.json
     .venv/bin/python bench/render_bench.py --out docs/generated/bench_train.md --chart "" \
         docs/generated/bench_train.json

The chart (default docs/generated/bench_overview.png) puts the CPU run of the first file beside the GPU
runs committed under docs/generated/gpu: images/s per backend and path, ours beside the official model,
labelled with the share of the ceiling measured in the same run: the FP32 FMA ceiling on CPU (above), the dense
matmul rate of the row's precision on GPU (below).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_tools.core.dated import committed_day  # noqa: E402

GPU_FILES = ("bench-gpu-torch-eager.json", "bench-gpu-torch-compile.json", "bench-gpu-keras.json")
CPU_BATCH, GPU_BATCH = 16, 256


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "generated" / "bench_table.md"))
    p.add_argument("--chart", default=str(ROOT / "docs" / "generated" / "bench_overview.png"), help="'' for none")
    p.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from resnet_tools.bench.runner import markdown_table

    files = [load_dated(Path(path)) for path in args.paths]
    Path(args.out).write_text("\n\n".join(markdown_table(data) for data in files))
    print(f"wrote {args.out}")
    if args.chart:
        gpu = [json.loads((ROOT / "docs" / "generated" / "gpu" / name).read_text()) for name in GPU_FILES]
        overview(files, gpu, Path(args.chart))
        print(f"wrote {args.chart}")


def load_dated(path: Path) -> dict[str, Any]:
    """A ``resnet bench --json`` file; one from before runs recorded their day gets the day it was committed
    (``machine["committed"]``, from git), which the tables state as an upper bound."""
    data: dict[str, Any] = json.loads(path.read_text())
    if not data["machine"].get("date"):
        data["machine"]["committed"] = committed_day(path)
    return data


def _when(files: list[dict[str, Any]]) -> str:
    """The day(s) the files were measured, short, for a chart's panel: "2026-12-07" or "on or before 2026-11-23"."""
    days = []
    for data in files:
        m = data["machine"]
        days.append(m["date"] if m.get("date") else f"on or before {m.get('committed')}")
        days[-1] += (
            " (" + ", ".join(f"{k} {v.split('+')[0]}" for k, v in m["versions"].items() if k in ("torch", "jax")) + ")"
        )
    return " + ".join(dict.fromkeys(days))


def _machine(files: list[dict[str, Any]]) -> str:
    """The machine(s) the files were measured on: a panel that mixes machines says so."""
    names = []
    for data in files:
        m = data["machine"]
        names.append(m.get("gpu", "GPU") if data.get("device") == "gpu" else f"{m['cpu']}, {data['threads']} threads")
    return " + ".join(dict.fromkeys(names))


def _panel(ax: Any, rows: list[dict[str, Any]], title: str) -> None:
    """Horizontal bars per (backend, model, path): ours and the official model side by side."""
    groups = list(dict.fromkeys((r["backend"], r["model"], r["path"]) for r in rows))
    groups.sort(key=lambda g: -max(r["images_per_s"] for r in rows if (r["backend"], r["model"], r["path"]) == g))
    height = 0.38
    for y, group in enumerate(groups):
        members = [r for r in rows if (r["backend"], r["model"], r["path"]) == group]
        members.sort(key=lambda r: r["implementation"] != "ours")
        for k, r in enumerate(members):
            ours = r["implementation"] == "ours"
            offset = (k - (len(members) - 1) / 2) * height
            ax.barh(y + offset, r["images_per_s"], height=height, color="tab:blue" if ours else "tab:gray")
            label = f" {r['images_per_s']:,.0f} img/s · {r['peak_share']:.0%}" + (
                "" if ours else f" · {r['implementation']}"
            )
            ax.text(r["images_per_s"], y + offset, label, va="center", fontsize=7)
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels([f"{b} {m}\n{p}" for b, m, p in groups], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(r["images_per_s"] for r in rows) * 1.6)
    ax.set_xlabel("images/s  (label: share of the ceiling measured in the same run)", fontsize=8)
    ax.set_title(title, fontsize=9)


def overview(cpu: list[dict[str, Any]], gpu: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    def pick(files: list[dict[str, Any]], batch: int) -> list[dict[str, Any]]:
        return [r for d in files for r in d["rows"] if not r["error"] and r["batch"] == batch and r["mode"] == "eval"]

    cpu_rows, gpu_rows = pick(cpu, CPU_BATCH), pick(gpu, GPU_BATCH)
    counts = [len({(r["backend"], r["model"], r["path"]) for r in rows}) for rows in (cpu_rows, gpu_rows)]
    # one panel above the other: the page's column is narrow, and a side-by-side pair would shrink the labels
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 0.36 * sum(counts) + 2.2), height_ratios=counts)
    _panel(top, cpu_rows, f"CPU ({_machine(cpu)}), batch {CPU_BATCH}, fp32; {_when(cpu)}")
    _panel(bottom, gpu_rows, f"GPU ({_machine(gpu)}), batch {GPU_BATCH}; {_when(gpu)}")
    fig.legend(
        handles=[Patch(color="tab:blue", label="ours"), Patch(color="tab:gray", label="official model / stand-in")],
        loc="lower center", ncol=2, fontsize=8, frameon=False,
    )  # fmt: skip
    fig.suptitle("resnet50 family, 224x224 inference: each backend's execution paths", fontsize=10)
    fig.tight_layout(rect=(0, 0.02, 1, 1 - 0.3 / fig.get_figheight()))  # 0.3 in for the suptitle, above the panels
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:])
