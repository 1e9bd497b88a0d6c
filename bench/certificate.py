"""The accuracy certificate: resnet18 (CIFAR stem) trained on the digits in each framework, converted to
the other two frameworks' files, evaluated everywhere. Writes docs/generated/certificate.{json,md}.

    python bench/certificate.py [--epochs 1] [--size 32]      # under 5 minutes on 2 cores
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

import numpy as np  # noqa: E402

from resnet_tools.core.backends import load_backends, use_cpu_cores  # noqa: E402  (paddle before TensorFlow)

FILES = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--out", default=str(ROOT / "docs" / "generated" / "certificate"))
    args = p.parse_args()
    modules = load_backends(list(FILES))
    use_cpu_cores(modules)
    from resnet_tools.checkpoints.convert import convert
    from resnet_tools.cli import main as cli
    from resnet_tools.train.evaluate import evaluate

    rows, started = [], time.perf_counter()
    train_args = ["--model", "resnet18", "--epochs", str(args.epochs), "--size", str(args.size), "--batch",
                  str(args.batch), "--optimizer", "adamw", "--lr", str(args.lr), "--weight-decay", "0.01"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for source in FILES:
            ckpt = tmp / f"{source}.safetensors"
            t0 = time.perf_counter()
            argv = ["train", *train_args, "--backend", source, "--save", str(ckpt), "--json", str(tmp / "run.json")]
            assert cli([*argv, "--force"]) == 0, argv
            seconds = time.perf_counter() - t0
            steps = len(json.loads((tmp / "run.json").read_text())["records"])
            own = evaluate({source: modules[source]}, ckpt, "digits")
            for target, ext in FILES.items():
                if target == source:
                    continue
                native = tmp / f"{source}_to_{target}{ext}"
                convert(ckpt, native)  # evaluated in the target only; compared with the source's logits
                res = evaluate({target: modules[target]}, native, "digits", size=args.size)
                there, here = res.logits[target], own.logits[source]
                rows.append({"trained in": source, "train seconds": round(seconds, 1), "steps": steps,
                    "source top-1": own.top1[source], "converted to": target, "file": native.name,
                    "top-1 in target": res.top1[target],
                    "argmax agreement": float((there.argmax(1) == here.argmax(1)).mean()),
                    "max logit difference": float(np.abs(there - here).max())})  # fmt: skip
                print(rows[-1], flush=True)
    out = Path(args.out)
    seconds = round(time.perf_counter() - started)
    summary = {"rows": rows, "epochs": args.epochs, "size": args.size, "batch": args.batch, "lr": args.lr,
               "seconds": seconds}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    lines = [
        f"resnet18 (CIFAR stem, 1 input channel) on scikit-learn's digits ({args.size}x{args.size}, 1,437 train / 360 "
        f"test), {args.epochs} epoch(s) of AdamW (lr {args.lr:g}, cosine, batch {args.batch}) in each framework, "
        "float32, from one initialisation; then converted with `resnet convert` to the other two frameworks' files and "
        f"evaluated there (`bench/certificate.py`: {seconds} s in all, every framework on all cores).",
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
