"""Measure the parity figures the tolerance table is set from: spread over seeds, batch sizes and input sizes.

    python bench/measure_tolerances.py --device cpu  [--backends torch,paddle,keras] [--quick]
    python bench/measure_tolerances.py --device gpu  (on a CUDA machine; TF32 off)

Writes docs/generated/tolerances-cpu.json (GPU: docs/generated/gpu/tolerances-gpu.json): for each
dtype/device/mode, the worst (max) and the
median of max |diff| / max |reference| over every run, pair and comparison point, with the runs
listed. ``resnet_spec/tolerances.py`` cites these files, and a test checks each bound against them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_spec.spec import AMP_DTYPES  # noqa: E402
from resnet_tools.core.backends import installed_backends, load_backends  # noqa: E402
from resnet_tools.export.formats import FORMATS  # noqa: E402
from resnet_tools.export.parity import run_export_parity  # noqa: E402
from resnet_tools.parity.engine import run_model_parity, run_model_train_parity  # noqa: E402

MODELS = ("resnet18", "resnet50", "resnet50v2")
# Odd and even, non-square; batch 1, 2 and 8 (train needs batch >= 2 for batch statistics).
INPUTS = ((1, 3, 97, 131), (2, 3, 96, 128), (8, 3, 64, 80))
SEEDS = (0, 1, 2)
CASES = (
    ("bfloat16", "eval"),
    ("float16", "eval"),
    ("float64", "train"),
    ("float32", "eval"),
    ("float64", "eval"),
    ("float32", "train"),
    ("float32", "export"),  # each backend's artifacts in their runtimes (needs resnet-xf[export])
)


def measure(
    device: str,
    backends: list[str],
    quick: bool,
    models: tuple[str, ...],
    seeds: tuple[int, ...],
    save: Callable[[dict], None],
    cases: tuple[tuple[str, str], ...] = CASES,
    merge: dict | None = None,
) -> dict:
    """Every case in CASES; ``save`` gets the data after each case (a cut-off run keeps what it measured)."""
    modules = load_backends(backends)
    if device == "gpu":
        modules = {b: m for b, m in modules.items() if m.gpu_available()}
        for m in modules.values():
            m.set_tf32(False)
    inputs = INPUTS[1:2] if quick else INPUTS
    models, seeds = (models[:1], seeds[:2]) if quick else (models, seeds)
    out: dict = {
        "device": device,
        "backends": sorted(modules),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "versions": _versions(),
        "entries": dict((merge or {}).get("entries", {})),
    }
    if device == "gpu":
        out["gpu"] = _gpu_name(modules)
    for dtype, mode in cases:
        mods = modules
        if dtype in AMP_DTYPES:
            mods = {b: m for b, m in modules.items() if m.amp_supported(device)}
        if len(mods) < (1 if mode == "export" else 2):
            continue
        runs, started = [], time.perf_counter()
        for name in models:
            for shape in inputs:
                if mode == "train" and (shape[0] < 2 or (name != "resnet18" and shape[0] > 2)):
                    continue  # train: batch statistics need N >= 2; keep the big models cheap
                for seed in seeds:
                    try:
                        if mode == "export":
                            recs = run_export_parity(name, mods, list(FORMATS), input_shape=shape, seed=seed)
                        elif mode == "train":
                            recs = run_model_train_parity(
                                name, mods, input_shape=shape, device=device, dtype=dtype, seed=seed
                            )
                        else:
                            recs = run_model_parity(
                                name, mods, input_shape=shape, device=device, dtype=dtype, seed=seed, path="eager"
                            )
                    except Exception as exc:  # a framework that cannot run this case: recorded, not fatal
                        runs.append({"model": name, "input": list(shape), "seed": seed, "error": repr(exc)[:300]})
                        continue
                    for r in recs:
                        runs.append(
                            {
                                "model": name,
                                "input": list(shape),
                                "seed": seed,
                                "pair": r.pair(),
                                "points": {k: v.max_rel for k, v in r.stages.items()},
                            }
                        )
        key = f"{dtype}/{device}/{mode}"
        if merge and key in merge.get("entries", {}):  # --merge: keep the runs of models not measured now
            runs = [r for r in merge["entries"][key]["runs"] if r["model"] not in models] + runs
        values = [
            v
            for r in runs
            for k, v in r.get("points", {}).items()
            if not (mode == "train" and k in ("grads", "weight_update", "input_grad") and dtype == "float32")
        ]
        out["entries"][key] = {
            "max": max(values) if values else None,
            "median": statistics.median(values) if values else None,
            "runs": runs,
            "seconds": round(time.perf_counter() - started, 1),
            "note": (
                "float32 train: forward, loss and running statistics only (fp32 gradients are chaotic, "
                "see docs/parity.md)"
                if (dtype, mode) == ("float32", "train")
                else ""
            ),
        }
        grads = [v for r in runs for k, v in r.get("points", {}).items() if k == "grads"]
        if grads:
            out["entries"][key]["grads_max"] = max(grads)
        print(
            f"{key}: max {out['entries'][key]['max']}, median {out['entries'][key]['median']} "
            f"({len(runs)} runs, {out['entries'][key]['seconds']}s)",
            flush=True,
        )
        save(out)
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {}
    for dist in ("torch", "paddlepaddle", "paddlepaddle-gpu", "tensorflow", "tensorflow-cpu", "keras", "jax"):
        with contextlib.suppress(md.PackageNotFoundError):
            found[dist] = md.version(dist)
    found["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return found


def _gpu_name(modules: dict) -> str:
    if "torch" in modules:
        import torch

        return torch.cuda.get_device_name(0)
    return "unknown"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--backends", default=",".join(installed_backends()))
    p.add_argument("--quick", action="store_true", help="one model, one input, two seeds (a smoke run)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    p.add_argument("--cases", default="", help="dtype/mode,... (default: all of CASES), e.g. float64/train")
    p.add_argument(
        "--merge", action="store_true", help="keep the other entries of an existing file, and other models' runs"
    )
    p.add_argument("--out", default=None, help="default docs/generated/[gpu/]tolerances-<device>.json")
    args = p.parse_args()
    generated = ROOT / "docs" / "generated"
    default = generated / "gpu" / "tolerances-gpu.json" if args.device == "gpu" else generated / "tolerances-cpu.json"
    path = Path(args.out or default)

    def save(data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    cases = tuple(tuple(c.split("/")) for c in args.cases.split(",") if c) or CASES
    merge = json.loads(path.read_text()) if args.merge and path.exists() else None
    measure(
        args.device,
        [b for b in args.backends.split(",") if b],
        args.quick,
        tuple(m for m in args.models.split(",") if m),
        tuple(int(s) for s in args.seeds.split(",") if s),
        save,
        cases,
        merge,
    )  # type: ignore[arg-type]
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
