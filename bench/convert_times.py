"""Time `resnet convert` for resnet152 between every pair of formats (framework imports vs conversion).

Each conversion runs in a fresh process, as a user would run it. Writes docs/generated/convert_times.md.
Run: .venv/bin/python bench/convert_times.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = {"safetensors": ".safetensors", "npz": ".npz", "torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}
LINE = re.compile(r"framework imports ([\d.]+)s \(([^)]*)\), read ([\d.]+)s, write ([\d.]+)s")
REPEATS = 3


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import FORMATS as ALL
    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    spec = get_spec("resnet152")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = {}
        base = tmp / "src.safetensors"
        write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, base, ALL["safetensors"])
        for name, ext in FORMATS.items():
            sources[name] = tmp / f"src_{name}{ext}"
            subprocess.run(
                [sys.executable, "-m", "resnet_tools.cli", "convert", str(base), str(sources[name]), "--force"],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
        for src, src_path in sources.items():
            for dst, ext in FORMATS.items():
                if src == dst:
                    continue
                samples = []
                for _ in range(REPEATS):
                    out = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "resnet_tools.cli",
                            "convert",
                            str(src_path),
                            str(tmp / f"out{ext}"),
                            "--force",
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                        cwd=ROOT,
                    ).stdout
                    m = LINE.search(out.replace("\n", " "))
                    samples.append((float(m[1]), float(m[3]) + float(m[4]), m[2]))
                imports = np.median([s[0] for s in samples])
                conv = [s[1] for s in samples]
                rows.append((src, dst, samples[0][2], imports, float(np.median(conv)), min(conv), max(conv)))
                print(rows[-1], flush=True)
    lines = [
        f"resnet152 ({spec.expected_trainable:,} parameters, ~240 MB in float32), measured with "
        f"`bench/convert_times.py` on this project's 2-core CPU machine, each conversion in a fresh process, "
        f"median of {REPEATS} (min-max in brackets). *Imports* is the framework import time; *conversion* is "
        "reading, identifying, mapping and writing.",
        "",
        "| from | to | frameworks imported | imports (s) | conversion (s) |",
        "|---|---|---|---:|---:|",
    ]
    for src, dst, fws, imp, med, lo, hi in rows:
        lines.append(f"| {src} | {dst} | {fws} | {imp:.2f} | {med:.2f} [{lo:.2f}-{hi:.2f}] |")
    out = ROOT / "docs" / "generated" / "convert_times.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
