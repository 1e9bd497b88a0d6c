"""Tests that kill planted bugs by checking behaviour, not patched detectors: an export check that fails when the
artifact computes something else, a write killed with SIGKILL half-way, outputs that are not regular files."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_tools.cli import main
from resnet_tools.core.files import TEMP_MARK, clean_stale_temps

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="exporters not installed")
def test_export_parity_fails_when_the_artifact_computes_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """The artifact is written from a model whose one BN variance is 5% off: the export record must fail at the
    logits (a check comparing the artifact with itself would pass)."""
    from resnet_tools.export import parity

    rt = LOADED.get("torch") or pytest.skip("torch not installed")
    honest = parity.write_artifact

    def perturbed(exporter: Any, model: Any, fmt: Any, out: Path, **kwargs: Any) -> Any:
        weights = rt.export_weights(model)
        weights["layer3.1.bn2.running_var"] = weights["layer3.1.bn2.running_var"] * 1.05
        return honest(exporter, rt.import_weights(rt.create_model(rt.model_spec(model)), weights), fmt, out, **kwargs)

    assert all(
        r.passed for r in parity.run_export_parity("resnet18", {"torch": rt}, ["onnx"], input_shape=(2, 3, 35, 51))
    )
    monkeypatch.setattr(parity, "write_artifact", perturbed)
    (record,) = parity.run_export_parity("resnet18", {"torch": rt}, ["onnx"], input_shape=(2, 3, 35, 51))
    assert not record.passed and record.first_divergent_stage == "logits"


_KILLED_WRITER = """
import sys, time
from resnet_tools.core.files import atomic_write

def write(fh):
    fh.write(b"new" * 100000)
    fh.flush()
    print("half-way", flush=True)
    time.sleep(60)
    fh.write(b"end")

atomic_write(sys.argv[1], write)
"""


def test_a_write_killed_half_way_leaves_the_old_file(tmp_path: Path) -> None:
    """A real process, killed with SIGKILL in the middle of its write: the destination keeps its old bytes; the
    dead writer's temp file is removed by the next command that writes in that folder."""
    dst = tmp_path / "weights.safetensors"
    dst.write_bytes(b"old contents")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(dst)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "half-way"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert dst.read_bytes() == b"old contents"
    left = list(tmp_path.glob(f".*{TEMP_MARK}*"))
    assert len(left) == 1 and left[0].stat().st_size >= 300000  # the half-written temp file, never renamed
    assert clean_stale_temps(tmp_path) == left and not left[0].exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_force_onto_a_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output that exists and is not a regular file (a device, a folder) is never replaced, --force or not."""
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import Checkpoint, format_for, write_checkpoint

    spec = get_spec("resnet18")
    src = tmp_path / "w.npz"
    write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, src, format_for(src))
    for dst in ("/dev/full", str(tmp_path)):
        assert main(["convert", str(src), dst, "--to", "npz", "--force"]) == 2
        err = capsys.readouterr().err
        assert "not a regular file" in err or "is a folder" in err, err
    assert Path("/dev/full").is_char_device()


def test_predict_errors_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import Checkpoint, format_for, write_checkpoint

    spec = get_spec("resnet18", num_classes=3)
    src = tmp_path / "w.safetensors"
    write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, src, format_for(src))
    (tmp_path / "not-an-image.jpg").write_bytes(b"plain text")
    good = tmp_path / "gray.png"
    from PIL import Image

    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(good)
    assert main(["predict", str(good), str(tmp_path / "not-an-image.jpg"), "--weights", str(src)]) == 0
    out, err = capsys.readouterr()
    assert "not-an-image.jpg" in err and "not-an-image.jpg" not in out


_WRITE_LIMITED = """
import resource, signal, sys
from resnet_tools.cli import main

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, a write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # a disk that fills up 200 kB into a file
sys.exit(main(["convert", sys.argv[1], sys.argv[2]]))
"""


@pytest.mark.parametrize("ext", [".pth", ".pdparams", ".weights.h5", ".safetensors", ".npz"])
def test_a_write_that_fails_midway_is_one_line_and_leaves_nothing(ext: str, tmp_path: Path) -> None:
    """Every writer failing half-way (a full disk, a file size limit): one line, exit 2, no file, no temp file."""
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import Checkpoint, format_for, write_checkpoint

    spec = get_spec("resnet18")
    src = tmp_path / "w.safetensors"
    write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, src, format_for(src))
    out = tmp_path / "out" / f"w{ext}"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", _WRITE_LIMITED, str(src), str(out)], env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {out}"), res.stderr[-2000:]
    assert list(out.parent.iterdir()) == []
