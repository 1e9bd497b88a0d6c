"""Redraw the parity pictures (divergence across depth, the models x pairs heatmap) from a report's
parity.json, without rerunning the parity: for reports written before a plot changed.

    .venv/bin/python bench/render_parity.py docs/generated/parity-eval [more report folders]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_tools.parity.report import plot_divergence, plot_heatmap


def main(folders: list[str]) -> None:
    for folder in map(Path, folders):
        records = json.loads((folder / "parity.json").read_text())
        plot_divergence(records, folder / "divergence.png")
        plot_heatmap(records, folder / "heatmap.png")
        print(f"wrote {folder}/divergence.png and heatmap.png")


if __name__ == "__main__":
    main(sys.argv[1:])
