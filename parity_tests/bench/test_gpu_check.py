"""`make gpu-check`'s plan (bench/gpu_check.py): the budget keeps what fits and says what it left out, and the dry
run executes the whole plan on CPU with tiny sizes, so the script is known to work before a GPU is lent."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402  (bench/gpu_check.py)

sys.path.remove(str(ROOT / "bench"))


def test_the_plan_fits_one_lease_and_a_budget_trims_from_the_end() -> None:
    steps = gpu_check.plan()
    assert sum(s.estimate_s for s in steps) <= 8 * 60  # the whole check in about 8 minutes on an H100
    assert sum(s.limit_s for s in steps) > sum(s.estimate_s for s in steps)
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
    for name in ("torch-eager", "torch-compile", "torch-train", "keras"):
        assert (tmp_path / f"bench-gpu-{name}.json").exists()
    assert (tmp_path / "bench_gpu.md").exists() and (tmp_path / "bench_gpu.png").read_bytes()[:4] == b"\x89PNG"
