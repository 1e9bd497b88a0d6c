"""``resnet choose``: each installed backend's best path for a task timed here, ranked; its ranking agrees with
``resnet bench`` run beside it; a missing framework is named with the extra that installs it; the budget holds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from parity_tests.conftest import LOADED
from resnet_tools.bench import choose as choose_module
from resnet_tools.bench.choose import choose
from resnet_tools.bench.runner import run_bench
from resnet_tools.cli import main

PAIR = [b for b in ("torch", "paddle") if b in LOADED]
needs_pair = pytest.mark.skipif(len(PAIR) < 2, reason="torch and paddle are needed to rank two backends")
SMALL = {"model": "resnet18", "size": 64, "batch": 8}  # seconds, not minutes, on 2 cores


@needs_pair
@pytest.mark.timing  # compares two timings: make test-all runs it in one process, after the parallel suite
def test_the_ranking_agrees_with_resnet_bench_run_beside_it() -> None:
    picked = choose("train", backends=PAIR, budget_s=120, **SMALL)
    paths = ",".join(p.path for p in picked.picks)
    bench = run_bench(["resnet18"], PAIR, [8], threads=2, mode="train", size=64, repeats=3, min_time=0.0,
                      paths=paths, official=False)  # fmt: skip
    speed = {r.backend: r.images_per_s for r in bench.rows if not r.error}
    assert [p.backend for p in picked.picks] == sorted(speed, key=speed.__getitem__, reverse=True)
    for p in picked.picks:
        noise = max(p.spread - 1, 0.35)  # the spread the table reports, at least 35% on a shared 2-core machine
        assert abs(p.images_per_s - speed[p.backend]) / speed[p.backend] <= noise, (p, speed)
    fastest, other = picked.picks
    ratio = fastest.images_per_s / other.images_per_s
    assert f"{ratio:.1f}x slower than {fastest.backend}'s {fastest.path}" in picked.advice[1]


def test_a_missing_framework_is_named_with_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = choose_module.descriptor

    def absent(name: str) -> Any:
        return dataclasses.replace(real(name), module="no_such_framework_here")

    monkeypatch.setattr(choose_module, "descriptor", absent)
    picked = choose("train", backends=["flax"], budget_s=10, **SMALL)
    assert picked.picks[0].missing == "pip install 'resnet-xf[flax]'"
    assert picked.advice == ["flax: not installed (pip install 'resnet-xf[flax]')"]
    assert picked.rows == []


def test_a_backend_whose_turn_comes_after_the_budget_is_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that says the budget is spent: nothing is timed, and each backend says why."""
    ticks = iter([0.0, *[1000.0] * 20])
    monkeypatch.setattr(choose_module, "run_bench", lambda *a, **k: pytest.fail("a backend was timed"))
    picked = choose("serve", backends=PAIR or ["torch"], budget_s=60, clock=lambda: next(ticks), **SMALL)
    for p in picked.picks:
        assert p.skipped == "not measured: the budget (60 s) was spent before its turn", p


@pytest.mark.skipif("torch" not in LOADED, reason="torch is needed")
def test_the_cli_prints_the_ranking_and_writes_dated_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "choice.json"
    argv = ["choose", "--task", "serve", "--backends", "torch", "--model", "resnet18", "--size", "64",
            "--budget", "60", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "resnet choose --task serve" in text and "serves resnet18 at" in text and "deploys to onnx" in text
    data = json.loads(out.read_text())
    assert data["date"] and data["machine"]["versions"]["torch"] and data["picks"][0]["backend"] == "torch"
    assert data["picks"][0]["path"] in ("channels_last", "ONNX Runtime")
    assert main(argv) == 2  # the file exists: not overwritten without --force
    assert "--force" in capsys.readouterr().err


def test_an_unknown_task_is_one_line() -> None:
    from resnet_spec.errors import ResNetError

    with pytest.raises(ResNetError, match="--task 'deploy': choose one of train, serve, convert"):
        choose("deploy")


def test_a_worker_is_stopped_at_its_deadline() -> None:
    """The deadline holds while a worker runs (a compile that takes minutes): it is killed, and the error says so."""
    from resnet_tools.bench.runner import WorkerTimeoutError, _worker

    with pytest.raises(WorkerTimeoutError, match="stopped at its 0 s limit"):
        _worker(["--backend", "peak", "--threads", "1", "--device", "cpu"], timeout=0.05)


def test_a_backend_that_overruns_the_budget_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_tools.bench.runner import WorkerTimeoutError

    def overrun(*args: Any, timeout_s: float, **kwargs: Any) -> Any:
        assert 0 < timeout_s <= 60  # the budget left, not the hour a bench worker gets
        raise WorkerTimeoutError("stopped", [])

    monkeypatch.setattr(choose_module, "run_bench", overrun)
    picked = choose("train", backends=["torch"], budget_s=60, **SMALL)
    assert picked.picks[0].skipped.startswith("not finished within the 60 s of the budget left"), picked.picks
