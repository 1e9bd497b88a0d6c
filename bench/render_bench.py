"""Render benchmark JSON files (from `resnet bench --json`) into a markdown table for the docs.

Run: .venv/bin/python bench/render_bench.py docs/generated/bench.json docs/generated/bench_keras_official.json
     .venv/bin/python bench/render_bench.py --out docs/generated/bench_train.md docs/generated/bench_train.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "generated" / "bench_table.md"))
    p.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from resnet_tools.bench.runner import markdown_table

    parts = [markdown_table(json.loads(Path(path).read_text())) for path in args.paths]
    Path(args.out).write_text("\n\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
