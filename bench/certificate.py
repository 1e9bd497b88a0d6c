"""The accuracy certificate: resnet18 (CIFAR stem) trained on the digits in each framework, converted to
the other two frameworks' files, evaluated everywhere. Writes docs/generated/certificate.{json,md}.

    python bench/certificate.py [--epochs 2] [--size 16]      # a few CPU minutes per framework
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_tools.core.backends import load_backends  # noqa: E402  (paddle before TensorFlow)

FILES = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--out", default=str(ROOT / "docs" / "generated" / "certificate"))
    args = p.parse_args()
    modules = load_backends(list(FILES))
    from resnet_tools.checkpoints.convert import convert
    from resnet_tools.cli import main as cli
    from resnet_tools.train.evaluate import evaluate

    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for source in FILES:
            ckpt = tmp / f"{source}.safetensors"
            t0 = time.perf_counter()
            argv = ["train", "--model", "resnet18", "--backend", source, "--epochs", str(args.epochs), "--size",
                    str(args.size), "--save", str(ckpt), "--json", str(tmp / f"{source}.json")]  # fmt: skip
            assert cli(argv) == 0, argv
            seconds = time.perf_counter() - t0
            own = evaluate({source: modules[source]}, ckpt, "digits")
            for target, ext in FILES.items():
                if target == source:
                    continue
                native = tmp / f"{source}_to_{target}{ext}"
                convert(ckpt, native)
                res = evaluate({source: modules[source], target: modules[target]}, native, "digits", size=args.size)
                rows.append({"trained in": source, "train seconds": round(seconds, 1), "steps": len(
                    json.loads((tmp / f"{source}.json").read_text())["records"]),
                    "source top-1": own.top1[source], "converted to": target, "file": native.name,
                    "top-1 in target": res.top1[target], "top-1 in source": res.top1[source],
                    "argmax agreement": res.agreement[f"{source} vs {target}"],
                    "max logit difference": res.max_logit_diff[f"{source} vs {target}"]})  # fmt: skip
                print(rows[-1], flush=True)
    out = Path(args.out)
    summary = {"rows": rows, "epochs": args.epochs, "size": args.size, "seconds": round(time.perf_counter() - started)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    lines = [
        f"resnet18 (CIFAR stem, 1 input channel) on scikit-learn's digits ({args.size}x{args.size}, 1,437 train / 360 "
        f"test), {args.epochs} epochs of SGD (cosine) in each framework, float32; then converted with "
        "`resnet convert` and evaluated with `resnet evaluate` (`bench/certificate.py`).",
        "",
        "| trained in | train time (s) | top-1 there | converted to | top-1 in the target | argmax agreement | "
        "max logit difference |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trained in']} | {r['train seconds']:.0f} | {r['source top-1']:.2%} | {r['converted to']} "
            f"(`{''.join(Path(r['file']).suffixes)}`) | {r['top-1 in target']:.2%} | {r['argmax agreement']:.2%} | "
            f"{r['max logit difference']:.1e} |"
        )
    (out.with_suffix(".md")).write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
