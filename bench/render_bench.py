"""Render benchmark JSON files (from `resnet bench --json`) into docs/generated/bench_table.md.

Run: .venv/bin/python bench/render_bench.py docs/generated/bench.json docs/generated/bench_keras_official.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(paths: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from resnet_tools.bench.runner import markdown_table

    parts = [markdown_table(json.loads(Path(p).read_text())) for p in paths]
    out = ROOT / "docs" / "generated" / "bench_table.md"
    out.write_text("\n\n".join(parts))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
