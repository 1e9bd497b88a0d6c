"""The accuracy certificate: resnet18 (CIFAR stem) trained on the digits in each installed framework, converted
to every other framework's own file, evaluated everywhere. Writes docs/generated/certificate.{json,md}.

    python bench/certificate.py [--epochs 1] [--size 32]      # under 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from resnet_tools.checkpoints.formats import FORMATS  # noqa: E402  (no framework imported)
from resnet_tools.core.backends import installed_backends, load_backends, use_cpu_cores  # noqa: E402
from resnet_tools.core.dated import measured_on, today, versions  # noqa: E402
from resnet_tools.core.threads import threads_env  # noqa: E402

#: Each installed framework's own weights file (the format its generated model file loads), from the registry.
FILES = {f.framework: f.extensions[0] for f in FORMATS.values() if f.code and f.framework in installed_backends()}


def train_all(train_args: list[str], tmp: Path, chains: list[list[str]], threads: int) -> dict[str, float]:
    """Each chain of frameworks trains in its own ``resnet train`` processes, the chains side by side, each
    pinned to ``threads`` threads; the seconds each run took."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RESNET_QUIET_IMPORTS": "1", **threads_env(threads)}
    seconds: dict[str, float] = {}

    def run(chain: list[str]) -> None:
        for source in chain:
            t0 = time.perf_counter()
            argv = ["train", *train_args, "--backend", source, "--save", str(tmp / f"{source}.safetensors"),
                    "--json", str(tmp / f"{source}.json")]  # fmt: skip
            done = subprocess.run([sys.executable, "-m", "resnet_tools.cli", *argv], env=env, capture_output=True)
            if done.returncode != 0:
                raise SystemExit(f"{source}: resnet train failed:\n{done.stderr.decode()[-2000:]}")
            seconds[source] = time.perf_counter() - t0
            print(f"trained in {source}: {seconds[source]:.0f} s", flush=True)

    with ThreadPoolExecutor(len(chains)) as pool:
        for future in [pool.submit(run, chain) for chain in chains]:
            future.result()
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--out", default=str(ROOT / "docs" / "generated" / "certificate"))
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    # paddle's dygraph gains little from a second thread (4.0 -> 3.3 s a step) and takes longest (measured): on 2+
    # cores it trains beside the others in turn, each side on half the cores
    others = [b for b in FILES if b != "paddle"]
    chains = [["paddle"], others] if cores >= 2 and "paddle" in FILES and others else [list(FILES)]
    threads = max(1, cores // len(chains))
    train_args = ["--model", "resnet18", "--epochs", str(args.epochs), "--size", str(args.size), "--batch",
                  str(args.batch), "--optimizer", "adamw", "--lr", str(args.lr), "--weight-decay", "0.01"]  # fmt: skip
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seconds = train_all(train_args, tmp, chains, threads)
        modules = load_backends(list(FILES))
        use_cpu_cores(modules)
        from resnet_tools.checkpoints.convert import convert
        from resnet_tools.train.evaluate import evaluate

        for source in FILES:
            ckpt = tmp / f"{source}.safetensors"
            steps = len(json.loads((tmp / f"{source}.json").read_text())["records"])
            own = evaluate({source: modules[source]}, ckpt, "digits")
            for target, ext in FILES.items():
                if target == source:
                    continue
                native = tmp / f"{source}_to_{target}{ext}"
                convert(ckpt, native)  # evaluated in the target only; compared with the source's logits
                res = evaluate({target: modules[target]}, native, "digits", size=args.size)
                there, here = res.logits[target], own.logits[source]
                rows.append({"trained in": source, "train seconds": round(seconds[source], 1), "steps": steps,
                    "source top-1": own.top1[source], "converted to": target, "file": native.name,
                    "top-1 in target": res.top1[target],
                    "argmax agreement": float((there.argmax(1) == here.argmax(1)).mean()),
                    "max logit difference": float(np.abs(there - here).max())})  # fmt: skip
                print(rows[-1], flush=True)
    out = Path(args.out)
    total = round(time.perf_counter() - started)
    summary = {"rows": rows, "epochs": args.epochs, "size": args.size, "batch": args.batch, "lr": args.lr,
               "seconds": total, "cores": cores, "chains": chains, "threads": threads, "date": today(),
               "versions": versions("torch", "paddlepaddle", "keras", "tensorflow-cpu", "jax", "flax")}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    lines = [
        f"{measured_on(summary['date'])} ({summary['versions']}): "
        f"resnet18 (CIFAR stem, 1 input channel) on scikit-learn's digits ({args.size}x{args.size}, 1,437 train / 360 "
        f"test), {args.epochs} epoch(s) of AdamW (lr {args.lr:g}, cosine, batch {args.batch}) in each framework, "
        "float32, from one initialisation; then converted with `resnet convert` to every other framework's file and "
        f"evaluated there (`bench/certificate.py`: {total} s in all on {cores} cores; "
        + (f"paddle trained beside {'-then-'.join(chains[1])}, " if len(chains) > 1 else "")
        + f"{threads} thread(s) each).",
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
