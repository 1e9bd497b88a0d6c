"""``resnet bench`` produces well-formed JSON and a plot (no assertion on speed: that is the benchmark's job)."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parity_tests.conftest import LOADED
from resnet_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]

REQUIRED = {
    "backend",
    "model",
    "path",
    "implementation",
    "batch",
    "mode",
    "threads",
    "images_per_s",
    "latency_ms_median",
    "latency_ms_p90",
    "spread",
    "one_off_s",
    "peak_rss_mb",
    "gflops",
    "peak_share",
    "noisy",
    "ours_over_official",
    "error",
}


def test_bench_json_and_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    backends = ",".join(b for b in ("torch", "paddle") if b in LOADED)
    rc = main(
        [
            "bench",
            "--models",
            "resnet18",
            "--backends",
            backends,
            "--batch",
            "2",
            "--size",
            "48",
            "--repeats",
            "2",
            "--min-time",
            "0",
            "--threads",
            "1",
            "--paths",
            "eager NCHW,channels_last,dygraph",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["threads"] == 1 and data["peak_gflops"] > 0 and data["machine"]["versions"]
    assert data["malloc"] == "kept" and data["complete"] is True
    if shutil.which("gcc") and platform.machine() == "x86_64":  # the FMA probe runs here: it is the reference
        assert "FMA" in data["peak_method"] and data["peak_gflops"] > data["sgemm_gflops"] > 0
    assert all(0 <= r["peak_share"] <= 1 for r in data["rows"])
    rows = data["rows"]
    assert {r["backend"] for r in rows} == set(backends.split(","))
    for r in rows:
        assert set(r) >= REQUIRED
        assert r["model"] == "resnet18" and r["batch"] == 2 and r["threads"] == 1
        if r["implementation"] == "ours":
            assert not r["error"] and r["images_per_s"] > 0 and r["latency_ms_p90"] >= r["latency_ms_median"] > 0
    paddle_ours = [r for r in rows if r["backend"] == "paddle" and r["implementation"] == "ours"]
    assert all(r["ours_over_official"] is not None for r in paddle_ours)  # paddle.vision row alongside
    if "torch" in LOADED and importlib.util.find_spec("transformers") and not importlib.util.find_spec("torchvision"):
        stand_in = [r for r in rows if r["backend"] == "torch" and r["implementation"] != "ours"]
        assert {r["implementation"] for r in stand_in} == {"HF transformers (stand-in)"}  # no torchvision here
        assert len(stand_in) == 2 and all(not r["error"] and r["images_per_s"] > 0 for r in stand_in)
        torch_ours = [r for r in rows if r["backend"] == "torch" and r["implementation"] == "ours"]
        assert len(torch_ours) == 2 and all(r["ours_over_official"] is not None for r in torch_ours)
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif("torch" not in LOADED, reason="torch not installed")
def test_a_bench_killed_half_way_keeps_the_rows_it_measured(tmp_path: Path) -> None:
    """The JSON is rewritten (atomically) after every row, marked incomplete until the end, so a bench stopped by a
    time limit (make gpu-check's deadline, a lease running out) keeps what it measured. --no-official: ours only."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "resnet_tools.cli", "bench", "--backends", "torch", "--models", "resnet18,resnet50",
           "--batch", "1", "--size", "64", "--repeats", "3", "--min-time", "3", "--threads", "1", "--paths",
           "eager NCHW", "--no-official", "--json", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the bench and its worker, as a deadline stops them
    proc.wait(timeout=30)
    assert out.exists(), proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    data = json.loads(out.read_text())
    assert data["complete"] is False
    assert [(r["model"], r["implementation"]) for r in data["rows"]] == [("resnet18", "ours")]
    assert data["rows"][0]["images_per_s"] > 0 and not data["rows"][0]["error"]
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temp file of the rewrites left


@pytest.mark.skipif("paddle" not in LOADED, reason="paddle not installed")
def test_bench_paddle_inference_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the worker subprocess exports its graph under here
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "--models",
            "resnet18",
            "--backends",
            "paddle",
            "--batch",
            "1",
            "--size",
            "40",
            "--repeats",
            "2",
            "--min-time",
            "0",
            "--threads",
            "1",
            "--paths",
            "Paddle Inference",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows and all(not r["error"] and r["images_per_s"] > 0 for r in rows)
    assert list(scratch.iterdir()) == []


def test_bench_train_mode_times_the_trainer_of_resnet_train(tmp_path: Path) -> None:
    """--mode train: each framework's raw SGD step and the ``Trainer`` step ``resnet train`` runs (momentum,
    weight decay, gradient norm), side by side."""
    out = tmp_path / "train.json"
    backends = [b for b in ("torch", "paddle", "keras") if b in LOADED]
    argv = ["bench", "--mode", "train", "--models", "resnet18", "--backends", ",".join(backends), "--batch", "2",
            "--size", "32", "--repeats", "1", "--min-time", "0", "--threads", "1", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    for b in backends:
        mine = {r["path"]: r for r in rows if r["backend"] == b}
        assert "Trainer" in mine and len(mine) == 2, mine.keys()
        assert all(r["mode"] == "train" and not r["error"] and r["images_per_s"] > 0 for r in mine.values())


def test_no_committed_figure_reads_over_100_percent_of_its_peak() -> None:
    """Every "% peak" in the docs' benchmark figures is at most 100% of the ceiling measured in the same run."""
    files = sorted((Path(__file__).resolve().parents[2] / "docs" / "generated").rglob("bench*.json"))
    assert len(files) >= 4
    for file in files:
        data = json.loads(file.read_text())
        over = [r for r in data.get("rows", []) if (r.get("peak_share") or 0) > 1]
        assert not over, f"{file.name}: {over[0]['implementation']} {over[0]['path']} at {over[0]['peak_share']:.0%}"


def test_a_share_is_against_the_ceiling_of_its_run() -> None:
    from resnet_tools.bench.rows import Row
    from resnet_tools.bench.runner import add_derived

    row = Row(backend="torch", model="resnet50", path="eager", implementation="ours", batch=16, mode="eval", threads=2)
    row.gflops = 230.0
    add_derived([row], 460.0)
    assert row.peak_share == 0.5


def test_an_int8_row_is_against_the_int8_ceiling_or_none() -> None:
    """An INT8 row's share is of the VNNI ceiling measured in its run; without one it has none (never FP32's)."""
    from resnet_tools.bench.gpu import path_precision
    from resnet_tools.bench.rows import Row
    from resnet_tools.bench.runner import add_derived

    assert path_precision("TFLite INT8") == "int8" and path_precision("TFLite") == "fp32"
    row = Row(backend="keras", model="resnet50", path="TFLite INT8", implementation="ours", batch=16, mode="eval",
              threads=2, precision="int8")  # fmt: skip
    row.gflops = 800.0
    add_derived([row], 400.0, {"fp32": 400.0, "int8": 1600.0})
    assert row.peak_share == 0.5
    add_derived([row], 400.0)
    assert row.peak_share == 0.0


def test_the_vnni_ceiling_is_above_the_fma_one_where_the_cpu_has_vnni() -> None:
    """vpdpbusd does 4x the int ops of an FP32 FMA per lane: the INT8 ceiling, where measured, is above FP32's."""
    from resnet_tools.bench.ceiling import fma_ceiling, vnni_ceiling

    vnni = vnni_ceiling(1)
    if vnni is None:
        pytest.skip("no VNNI (or no gcc) on this CPU: INT8 rows carry no % peak here")
    fma = fma_ceiling(1)
    assert fma is not None and vnni > 1.5 * fma, (vnni, fma)


def test_bench_bad_arguments(capsys) -> None:
    assert main(["bench", "--batch", "one"]) == 2
    assert "--batch must be" in capsys.readouterr().err
    assert main(["bench", "--backends", "mxnet"]) == 2
    for argv, fragment in (
        (["--batch", "0"], "--batch must be at least 1"),
        (["--batch", "4,-1"], "--batch must"),
        (["--size", "0"], "--size must be at least 32"),
        (["--threads", "0"], "--threads must"),
        (["--repeats", "0"], "--repeats must"),
    ):
        assert main(["bench", *argv]) == 2
        assert fragment in capsys.readouterr().err


def test_bench_unknown_path_is_an_error(capsys) -> None:
    backend = next(b for b in ("torch", "paddle", "keras") if b in LOADED)
    assert (
        main(
            [
                "bench",
                "--models",
                "resnet18",
                "--backends",
                backend,
                "--batch",
                "1",
                "--size",
                "32",
                "--paths",
                "bogus",
                "--repeats",
                "1",
                "--min-time",
                "0",
            ]
        )
        == 2
    )
    assert "no execution path matched --paths 'bogus'" in capsys.readouterr().err


def test_gpu_memory_probe_order_and_precision_names() -> None:
    """GPU rows: the probe's baseline is taken before the build, its peak counter reset after the first call
    (autotuning trials excluded), and read after the warm-up; a path's name says its math precision."""
    from resnet_tools.bench.gpu import path_precision
    from resnet_tools.bench.rows import Row
    from resnet_tools.bench.worker import measure_group

    events: list[str] = []

    class Probe:
        def begin(self) -> None:
            events.append("begin")

        def reset(self) -> None:
            events.append("reset")

        def peak_mb(self) -> float:
            events.append("peak")
            return 42.0

    def build():
        events.append("build")
        return lambda: events.append("call")

    row = Row("torch", "resnet18", "eager fp32", "ours", 1, "eval", 1, device="gpu")
    measure_group([row], [build], macs=1, warmup=2, repeats=1, min_time=0, gpu_memory=Probe())
    assert events[:7] == ["begin", "build", "call", "reset", "call", "call", "peak"]
    assert row.peak_gpu_mb == 42.0 and not row.error
    assert [
        path_precision(p)
        for p in (
            "eager fp32",
            "eager tf32",
            "channels_last bf16",
            "jax.jit mixed bf16",
            "channels_last fp16",
            "torch.compile cudagraphs bf16",
        )
    ] == ["fp32", "tf32", "bf16", "bf16", "fp16", "bf16"]


@pytest.mark.skipif(__import__("shutil").which("nvidia-smi") is not None, reason="a GPU is present here")
def test_bench_gpu_without_gpu_is_one_clear_line(capsys) -> None:
    assert main(["bench", "--device", "gpu", "--models", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "no NVIDIA GPU found" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif("paddle" not in LOADED, reason="paddle not installed")
def test_paddle_tensorrt_without_tensorrt_is_a_clear_error() -> None:
    from resnet_paddle.runtime import inference_predictor, inference_tensorrt_version

    if inference_tensorrt_version() is not None:
        pytest.skip("this paddle build has TensorRT")
    with pytest.raises(RuntimeError, match="no TensorRT"):
        inference_predictor(LOADED["paddle"].create_model("resnet18"), 3, device="gpu", tensorrt="float16")


def test_markdown_table_is_narrow_and_moves_errors_under_it() -> None:
    """The docs' benchmark tables: one per backend, no model column when one model, and a row that failed
    is a note under the tables, not an error message inside a cell."""
    from resnet_spec.errors import ResNetError
    from resnet_tools.bench.rows import Row
    from resnet_tools.bench.runner import markdown_table

    ok = Row("torch", "resnet50", "eager NCHW", "ours", 16, "eval", 2, images_per_s=20.0, latency_ms_median=800,
             latency_ms_p90=850, spread=1.06, peak_rss_mb=1100, peak_share=0.8).as_dict()  # fmt: skip
    bad = Row("paddle", "resnet50", "dygraph", "paddle.vision", 16, "eval", 2, error="RuntimeError: boom").as_dict()
    data = {"machine": {"date": "2026-12-07", "cpu": "X", "cores": 2, "versions": {"torch": "2"}}, "threads": 2,
            "peak_gflops": 200,
            "rows": [ok, bad]}  # fmt: skip
    text = markdown_table(data)
    table_lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert "**torch** (resnet50)" in text and "**paddle**" not in text  # a backend with no row that ran
    assert all("boom" not in ln for ln in table_lines) and table_lines[0].startswith("| batch |")
    assert "- paddle · resnet50 · batch 16 · dygraph · paddle.vision: RuntimeError: boom" in text
    assert max(ln.count("|") for ln in table_lines) == 9  # eight columns
    assert text.startswith("Measured 2026-12-07: inference")  # every table says the day it was measured
    del data["machine"]["date"]
    with pytest.raises(ResNetError, match="a measurement without a date"):
        markdown_table(data)


def test_bench_int8_rows_sit_beside_their_float_rows_and_leave_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each INT8 path is timed in the same run as the same runtime's float path, and its temp files go."""
    pairs = {"torch": ("ONNX Runtime", "ONNX Runtime INT8"), "paddle": ("Paddle Inference", "Paddle Inference INT8"),
             "keras": ("TFLite", "TFLite INT8")}  # fmt: skip
    backends = [b for b in pairs if b in LOADED]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    out = tmp_path / "bench.json"
    paths = ",".join(p for b in backends for p in pairs[b])
    argv = ["bench", "--models", "resnet18", "--backends", ",".join(backends), "--batch", "2", "--size", "32",
            "--repeats", "2", "--min-time", "0", "--threads", "1", "--no-official", "--no-keras-others",
            "--paths", paths, "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    for b in backends:
        got = {r["path"]: r for r in rows if r["backend"] == b}
        assert set(got) == set(pairs[b]), got.keys()
        assert all(not r["error"] and r["images_per_s"] > 0 for r in got.values()), got
    # ours are gone; torch's ONNX exporter leaves its own caches there (.ses, torchinductor_root), as for float
    assert [p.name for p in scratch.iterdir() if "resnet" in p.name] == []
