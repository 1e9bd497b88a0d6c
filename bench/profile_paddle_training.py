"""Where paddle's eager (dygraph) training time goes, against torch's, on this CPU: one ResNet-50 SGD step (batch 16,
224x224) of our paddle model, of paddle.vision's and of our torch model, each in a fresh process with 2 threads, and
paddle's at its import default (one thread); then the per-operator CPU time of one step from each framework's own
profiler. Writes docs/generated/paddle_training.md (dated).

Run: .venv/bin/python bench/profile_paddle_training.py
"""

from __future__ import annotations

import datetime
import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "generated" / "paddle_training.md"
ROUNDS = 2
STEP = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
which, threads = sys.argv[1], int(sys.argv[2])
if which == "torch":
    import torch, resnet_torch
    from resnet_spec import get_spec
    torch.set_num_threads(threads)
    model = resnet_torch.create_model(get_spec("resnet50")).train()
    opt = torch.optim.SGD(model.parameters(), 0.01)
    x, y = torch.rand(16, 3, 224, 224), torch.randint(0, 1000, (16,))
    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
        return float(loss.detach())
else:
    import paddle, resnet_paddle
    from resnet_spec import get_spec
    if threads:
        paddle.base.core.set_num_threads(threads)  # 0: paddle's import default (it sets OMP_NUM_THREADS=1)
    if which == "paddle.vision":
        from paddle.vision.models import resnet50
        model = resnet50()
    else:
        model = resnet_paddle.create_model(get_spec("resnet50"))
    model.train()
    opt = paddle.optimizer.SGD(parameters=model.parameters(), learning_rate=0.01)
    x = paddle.to_tensor(np.random.rand(16, 3, 224, 224).astype("float32"))
    y = paddle.to_tensor(np.random.randint(0, 1000, 16))
    def step():
        loss = paddle.nn.functional.cross_entropy(model(x), y); loss.backward(); opt.step(); opt.clear_grad()
        return float(loss)
step()
times = []
for _ in range(3):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
ops = {}
if which == "torch":
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    ops = {e.key: e.self_cpu_time_total / 1000 for e in prof.key_averages()}
elif which == "ours" and threads:
    import io, contextlib, paddle.profiler as profiler
    p = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU])
    p.start(); step(); p.step(); p.stop()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        p.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False, time_unit="ms")
    text = buf.getvalue()
    part = text[text.index("Operator Summary"):]
    for line in part.splitlines():  # "conv2d dygraph  53  977.15 / 18.44 / ..." or "Global_ReluGradNode  49  ..."
        cells = line.split()
        calls = next((i for i, c in enumerate(cells) if c.isdigit()), None)
        if calls is not None and "/" in line and calls + 1 < len(cells):
            ops[cells[0]] = float(cells[calls + 1])
print("RESULT", json.dumps({"step_s": sorted(times)[1], "ops": ops}))
"""
#: operator -> (paddle's name, torch's name) for the side-by-side table
PAIRS = {
    "conv backward": ("Global_Conv2dGradNodeFinal", "aten::convolution_backward"),
    "conv forward": ("conv2d", "aten::mkldnn_convolution"),
    "BN backward": ("Global_BatchNormGradNode", "aten::native_batch_norm_backward"),
    "BN forward": ("batch_norm", "aten::native_batch_norm"),
    "ReLU backward": ("Global_ReluGradNode", "aten::threshold_backward"),
    "ReLU forward": ("relu", "aten::clamp_min"),
}


def run(which: str, threads: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", STEP, which, str(threads)], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    return json.loads(re.search(r"RESULT (.*)", out)[1])  # type: ignore[index]


def main() -> None:
    import importlib.metadata as md

    configs = {
        "torch (ours), 2 threads": ("torch", 2),
        "paddle (ours), 2 threads": ("ours", 2),
        "paddle.vision resnet50, 2 threads": ("paddle.vision", 2),
        "paddle (ours), import default (1 thread)": ("ours", 0),
    }
    runs: dict[str, dict[str, Any]] = {}
    for _ in range(ROUNDS):  # interleaved rounds on a shared machine: each config keeps its fastest round
        for name, (which, threads) in configs.items():
            r = run(which, threads)
            if name not in runs or r["step_s"] < runs[name]["step_s"]:
                runs[name] = {**r, "ops": r["ops"] or runs.get(name, {}).get("ops", {})}
    torch_s = runs["torch (ours), 2 threads"]["step_s"]
    versions = ", ".join(f"{d} {md.version(d)}" for d in ("torch", "paddlepaddle", "numpy"))
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "")
    lines = [
        f"Measured {datetime.date.today().isoformat()} by `bench/profile_paddle_training.py`: one SGD step of "
        f"ResNet-50, batch 16, 224x224, median of 3 after one warm-up, the faster of {ROUNDS} interleaved rounds; "
        f"{cpu}, Python {platform.python_version()}. "
        f"Versions: {versions}.",
        "",
        "| model | step (s) | vs torch |",
        "|---|---:|---:|",
    ]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['step_s']:.2f} | {r['step_s'] / torch_s:.2f}x |")
    paddle_ops, torch_ops = runs["paddle (ours), 2 threads"]["ops"], runs["torch (ours), 2 threads"]["ops"]
    lines += ["", "| operator (one step, 2 threads) | paddle ms | torch ms | paddle / torch |", "|---|---:|---:|---:|"]
    for label, (p, t) in PAIRS.items():
        pm, tm = paddle_ops.get(p, 0.0), torch_ops.get(t, 0.0)  # type: ignore[union-attr]
        lines.append(f"| {label} | {pm:.0f} | {tm:.0f} | {pm / tm:.2f}x |" if tm else f"| {label} | {pm:.0f} | - | - |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
