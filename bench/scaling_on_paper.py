"""Data-parallel scaling on paper, from measured figures: per-step compute time (this machine's CPU from
docs/generated/bench_train.json; the H100 from docs/generated/gpu/bench-gpu-torch-train.json), gradient bytes
per step (the spec's trainable parameters, float32), and ring all-reduce time at 10/25/100/400 Gb/s for 2..64
nodes. Writes docs/generated/scaling_on_paper.md (make docs-data; no benchmark runs here).

Ring all-reduce moves 2 (N - 1) / N times the gradient bytes through each node's link (reduce-scatter, then
all-gather), so its time is that over the bandwidth, plus latency, left out here (2 (N - 1) hops of a few
microseconds: small beside these transfers). Without overlap a step takes compute + all-reduce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_spec import get_spec  # noqa: E402
from resnet_spec.params import count_params  # noqa: E402
from resnet_tools.core.dated import committed_day  # noqa: E402

LINKS_GBIT = (10, 25, 100, 400)
NODES = (2, 4, 8, 16, 32, 64)


def allreduce_s(grad_bytes: float, nodes: int, gbit: float) -> float:
    """Ring all-reduce time of ``grad_bytes`` over ``nodes`` with ``gbit`` Gb/s links (bandwidth term only)."""
    return 2 * (nodes - 1) / nodes * grad_bytes / (gbit * 1e9 / 8)


def measured() -> list[tuple[str, str, float, int]]:
    """(model, where, compute seconds per step, batch per replica) from the committed benchmark files."""
    out = []
    cpu = json.loads((ROOT / "docs/generated/bench_train.json").read_text())
    for r in cpu["rows"]:
        if r["backend"] == "torch" and r["path"] == "eager" and not r.get("error"):
            out.append((r["model"], f"CPU, 2 cores (torch eager, {r['batch']} x 112x112)",
                        r["latency_ms_median"] / 1e3, r["batch"]))  # fmt: skip
    gpu = json.loads((ROOT / "docs/generated/gpu/bench-gpu-torch-train.json").read_text())
    seen = set()
    for r in gpu["rows"]:
        key = (r["model"], r["path"])
        if key in seen or r.get("error"):
            continue
        seen.add(key)
        out.append((r["model"], f"{gpu['machine'].get('gpu', 'GPU')} (torch {r['path']}, {r['batch']} x 224x224)",
                    r["latency_ms_median"] / 1e3, r["batch"]))  # fmt: skip
    return out


def when() -> str:
    """The days the step times were measured (the bench files'), with their torch versions."""
    days, undated = [], False
    for name in ("bench_train.json", "gpu/bench-gpu-torch-train.json"):
        path = ROOT / "docs/generated" / name
        m = json.loads(path.read_text())["machine"]
        undated |= not m.get("date")
        day = m.get("date") or f"on or before {committed_day(path)}"
        days.append(f"{day} ({m.get('gpu', 'CPU')}, torch {m['versions'].get('torch')})")
    note = " (a run that kept no date: the day its file was last committed)" if undated else ""
    return "Step times measured " + " and ".join(days) + note + "."


def table() -> str:
    lines = [
        when(),
        "",
        "Gradient bytes: the spec's trainable parameters x 4 (float32 gradients). All-reduce: ring, bandwidth term "
        "(2 (N-1)/N x bytes / link). **Bold**: the all-reduce takes longer than the step's compute (without overlap, "
        "communication dominates).",
        "",
        "| model | gradient MB | measured step (compute) | link | " + " | ".join(f"{n} nodes" for n in NODES) + " |",
        "|---|---:|---|---|" + "---:|" * len(NODES),
    ]
    for model, where, compute, _batch in measured():
        trainable, _ = count_params(get_spec(model))
        grad = trainable * 4
        for gbit in LINKS_GBIT:
            cells = []
            for n in NODES:
                t = allreduce_s(grad, n, gbit)
                text = f"{t * 1e3:.0f} ms"
                cells.append(f"**{text}**" if t > compute else text)
            lines.append(f"| {model} | {grad / 1e6:.1f} | {where}: {compute * 1e3:.0f} ms | {gbit} Gb/s | "
                         + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    out = ROOT / "docs/generated/scaling_on_paper.md"
    out.write_text(table())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
