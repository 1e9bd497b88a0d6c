"""`make gpu-check`'s plan (bench/gpu_check.py): the budget keeps what fits and says what it left out, and the dry
run executes the whole plan on CPU with tiny sizes, so the script is known to work before a GPU is lent."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402  (bench/gpu_check.py)

sys.path.remove(str(ROOT / "bench"))


def test_the_plan_fits_one_lease_and_a_budget_trims_from_the_end() -> None:
    steps = gpu_check.plan()
    assert sum(s.estimate_s for s in steps) <= 8 * 60  # the whole check in about 8 minutes on an H100
    assert all(s.limit_s > s.estimate_s for s in steps)
    until = [s.name for s in steps if s.limit_s == gpu_check.UNTIL_DEADLINE]
    assert until == [steps[-2].name] and "30k" in until[0]  # only the last bench step takes what is left
    assert all(p in " ".join(steps[-2].real) for p in gpu_check.TOWARD_30K)
    kept, left = gpu_check.choose(steps, 200)
    assert [s.name for s in kept][:2] == ["GPU tests", "parity eval fp32 (4 models)"]
    assert kept[-1].name.startswith("render") and left and sum(s.estimate_s for s in kept[:-1]) <= 200
    assert [s.name for s in kept + left if not s.name.startswith("render")] == [
        s.name for s in steps if not s.name.startswith("render")
    ]


def test_a_dry_run_needs_its_own_folder() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2 and "give --out" in res.stderr


@pytest.mark.skipif(importlib.util.find_spec("paddle") is None, reason="the dry run's parity compares torch and paddle")
def test_the_dry_run_executes_every_step_on_cpu(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    summary = (tmp_path / "gpu-check.md").read_text()
    assert res.returncode == 0, summary + res.stdout[-2000:]
    assert summary.count("| ok |") == len(gpu_check.plan())
    for name in ("float32", "train-fp64", "bfloat16", "float16"):
        assert (tmp_path / f"parity-gpu-{name}" / "parity.md").exists()
    for name in ("torch-eager", "torch-compile", "torch-train", "keras", "torch-30k"):
        assert (tmp_path / f"bench-gpu-{name}.json").exists()
    assert (tmp_path / "bench_gpu.md").exists() and (tmp_path / "bench_gpu.png").read_bytes()[:4] == b"\x89PNG"


_SPAWNS_AND_HANGS = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # killed, not yet reaped by whoever adopted it


def test_the_budget_is_a_deadline_that_stops_a_step_and_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that runs past the deadline is stopped with the processes it started (a bench's workers would hold
    the GPU), the steps after it are not started, rendering still runs, and the report says so."""
    monkeypatch.setattr(gpu_check, "RENDER_RESERVE_S", 1)
    monkeypatch.setattr(gpu_check, "MIN_STEP_S", 2)
    pid_file = tmp_path / "child.pid"
    hang = ["-c", _SPAWNS_AND_HANGS, str(pid_file)]
    quick = ["-c", "pass"]
    steps = [
        gpu_check.Step("quick", 1, 30, quick, quick),
        gpu_check.Step("hangs", 1, gpu_check.UNTIL_DEADLINE, hang, hang),
        gpu_check.Step("after", 1, 30, quick, quick),
        gpu_check.Step("render", 1, 30, quick, quick),
    ]
    start = time.monotonic()
    results = gpu_check.run(steps, tmp_path, dry=True, deadline_s=6)
    assert time.monotonic() - start < 30
    statuses = [status for _, status, _ in results]
    assert statuses[0] == "ok" and statuses[3] == "ok", statuses
    assert statuses[1].startswith("cut off at") and statuses[1].endswith("(deadline)"), statuses
    assert statuses[2].startswith("not started"), statuses
    assert _gone(int(pid_file.read_text())), "the step's worker outlived it"
    assert all(gpu_check.ended_well(s) for s in statuses)
    report = gpu_check.report(results, [], tmp_path, dry=True, budget=6).read_text()
    assert "(deadline)" in report and "not started" in report
    assert not gpu_check.ended_well("exit 1") and not gpu_check.ended_well("cut off at 60 s")
