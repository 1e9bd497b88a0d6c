"""Time `resnet convert` for resnet152 and wide_resnet101_2 between every pair of formats (framework imports vs
conversion, and peak memory against the checkpoint size).

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
LINE = re.compile(r"framework imports ([\d.]+)s \(([^)]*)\), read ([\d.]+)s, write ([\d.]+)s")
REPEATS = 3


#: The peak resident set size of this process image, from /proc (VmHWM). Not getrusage's ru_maxrss: Linux
#: carries that over fork + exec, so a child started by a big parent reports the parent's size.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
#: Runs the CLI in-process and prints this process's peak resident set size afterwards.
LAUNCH = (
    "import sys\nfrom resnet_tools.cli import main\nrc = main(sys.argv[1:])\n"
    f"print('peak_rss_kb', {PEAK})\nsys.exit(rc)"
)
MODELS = ("resnet152", "wide_resnet101_2")


def _convert(src: Path, dst: Path) -> tuple[float, float, str, float]:
    """(framework imports s, read + write s, frameworks imported, peak RSS MB) of one fresh-process run."""
    out = subprocess.run(
        [sys.executable, "-c", LAUNCH, "convert", str(src), str(dst), "--force"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    m = LINE.search(out.replace("\n", " "))
    rss = int(re.search(r"peak_rss_kb (\d+)", out)[1]) / 1024  # type: ignore[index]
    return float(m[1]), float(m[3]) + float(m[4]), m[2], rss  # type: ignore[index]


def _baseline_mb(frameworks: str = "none") -> float:
    """Peak RSS of the interpreter with the CLI (and the frameworks a conversion imports) loaded, nothing converted."""
    imports = "" if frameworks == "none" else "".join(f"import {f}\n" for f in frameworks.split(", "))
    code = f"import resnet_tools.cli\n{imports}print({PEAK})"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import FORMATS as ALL
    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint
    from resnet_tools.core.dated import measured_on, today, versions

    # the interchange files, then each framework's own weights file (the formats a generated model file loads)
    formats = {"safetensors": ".safetensors", "npz": ".npz", **{n: f.extensions[0] for n, f in ALL.items() if f.code}}
    baselines = {fw: _baseline_mb(fw) for fw in ("none", "torch")}
    lines = [
        f"{measured_on(today())} ({versions('torch', 'paddlepaddle', 'keras', 'jax', 'flax', 'safetensors')}). "
        "Each conversion in a fresh process (`resnet convert`), measured with `bench/convert_times.py` on this "
        f"project's 2-core CPU machine, median of {REPEATS} (min-max in brackets). *Imports* is the framework "
        "import time; *conversion* is reading, identifying, mapping and writing; *peak RSS* is the process's "
        "(VmHWM), and *x size* is (peak RSS - the interpreter with the CLI and the imported framework loaded: "
        f"{baselines['none']:.0f} MB, {baselines['torch']:.0f} MB with torch) / checkpoint size.",
    ]
    for model in MODELS:
        spec = get_spec(model)
        rows = []
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            base = tmp / "src.safetensors"
            write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, base, ALL["safetensors"])
            size_mb = base.stat().st_size / 2**20
            sources = {name: tmp / f"src_{name}{ext}" for name, ext in formats.items()}
            for path in sources.values():
                _convert(base, path)
            for src, src_path in sources.items():
                for dst, ext in formats.items():
                    if src == dst:
                        continue
                    samples = [_convert(src_path, tmp / f"out{ext}") for _ in range(REPEATS)]
                    conv = [s[1] for s in samples]
                    rss = max(s[3] for s in samples)
                    base = baselines.get(samples[0][2]) or _baseline_mb(samples[0][2])
                    row = (src, dst, samples[0][2], float(np.median([s[0] for s in samples])), float(np.median(conv)),
                           min(conv), max(conv), rss, (rss - base) / size_mb)  # fmt: skip
                    rows.append(row)
                    print(model, row, flush=True)
        lines += [
            "",
            f"**{model}** ({spec.expected_trainable:,} parameters, {size_mb:.0f} MB in float32)",
            "",
            "| from | to | frameworks imported | imports (s) | conversion (s) | peak RSS (MB) | x size |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for src, dst, fws, imp, med, lo, hi, rss, times in rows:
            lines.append(
                f"| {src} | {dst} | {fws} | {imp:.2f} | {med:.2f} [{lo:.2f}-{hi:.2f}] | {rss:.0f} | {times:.2f} |"
            )
    out = ROOT / "docs" / "generated" / "convert_times.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
