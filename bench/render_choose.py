"""Render ``resnet choose --json`` files into the decision page's tables (docs/generated/choose_*.md), each headed by
the day, machine and versions it was measured with.

Run: .venv/bin/python bench/render_choose.py docs/generated/choose_train.json docs/generated/choose_serve.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def table(data: dict[str, Any]) -> str:
    """One choose run as a dated Markdown table and its advice."""
    m = data["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    unit = "train img/s" if data["task"] == "train" else "img/s"
    lines = [
        f"Measured {data['date']} by `resnet choose --task {data['task']}` in {data['elapsed_s']:.0f} s (budget "
        f"{data['budget_s']:.0f} s): {data['model']}, batch {data['batch']}, {data['size']}x{data['size']} images, "
        f"{data['device']}; {m['cpu']}, {m['cores']} cores. Versions: {versions}.",
        "",
        f"| rank | backend | best path | {unit} | ms a batch | spread | peak MB | first call (s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for i, p in enumerate(data["picks"], 1):
        if p["images_per_s"]:
            lines.append(
                f"| {i} | {p['backend']} | {p['path']} | {p['images_per_s']:.1f} | {p['latency_ms']:.0f} | "
                f"{p['spread']:.2f} | {p['peak_mb']:.0f} | {p['one_off_s']:.1f} |"
            )
        else:
            lines.append(f"| - | {p['backend']} | {p['missing'] or p['skipped']} | | | | | |")
    lines += ["", *[f"- {line}" for line in data["advice"]], ""]
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    for path in map(Path, paths):
        out = path.with_suffix(".md")
        out.write_text(table(json.loads(path.read_text())))
        print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:] or [str(ROOT / "docs" / "generated" / f"choose_{t}.json") for t in ("train", "serve")])
