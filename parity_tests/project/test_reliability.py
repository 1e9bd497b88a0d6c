"""Tests that kill planted bugs by checking behaviour, not patched detectors: an export check that fails when the
artifact computes something else, a write killed with SIGKILL half-way, outputs that are not regular files."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_tools.cli import main
from resnet_tools.core.files import TEMP_MARK, clean_stale_temps

ROOT = Path(__file__).resolve().parents[2]


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


def _random_resnet18(path: Path) -> Path:
    """A resnet18 checkpoint with random weights, in the format ``path``'s name says."""
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import Checkpoint, format_for, write_checkpoint

    spec = get_spec("resnet18")
    write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, path, format_for(path))
    return path


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


def test_force_onto_a_special_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output that exists and is not a regular file (a device such as /dev/full, a pipe, a folder) is never
    replaced, --force or not. The test's node is a FIFO of its own: a broken guard (a mutant) must not be able
    to turn a system device into a file, as one did to /dev/full before this test stopped using it."""
    src = _random_resnet18(tmp_path / "w.npz")
    pipe = tmp_path / "pipe.npz"
    os.mkfifo(pipe)
    for dst in (str(pipe), str(tmp_path)):
        assert main(["convert", str(src), dst, "--to", "npz", "--force"]) == 2
        err = capsys.readouterr().err
        assert "not a regular file" in err or "is a folder" in err, err
    assert pipe.is_fifo()


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


def _convert_in_child(script: str, tmp_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``resnet convert`` of a random resnet18 to ``out`` (in a new empty folder) by ``script`` in a child process."""
    src = _random_resnet18(tmp_path / "w.safetensors")
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", script, str(src), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


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
    out = tmp_path / "out" / f"w{ext}"
    res = _convert_in_child(_WRITE_LIMITED, tmp_path, out)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {out}"), res.stderr[-2000:]
    assert list(out.parent.iterdir()) == []


_SLOW_DISK = """
import sys, time
from resnet_tools.checkpoints.formats import canonical, pdparams, pth
from resnet_tools.cli import main


class SlowFile:  # a slow disk: every write takes 20 ms, so a signal lands in the middle of the writer
    def __init__(self, fh):
        self.fh = fh

    def write(self, data):
        time.sleep(0.02)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)


def slow_open(path, mode="r", *args, **kwargs):
    fh = open(path, mode, *args, **kwargs)
    return SlowFile(fh) if "w" in mode else fh


for module in (canonical, pdparams, pth):
    module.open = slow_open
sys.exit(main(["convert", sys.argv[1], sys.argv[2]]))
"""


@pytest.mark.parametrize(
    ("ext", "signum"),
    [(".pth", signal.SIGTERM), (".pth", signal.SIGINT), (".pdparams", signal.SIGTERM), (".npz", signal.SIGINT)],
)
def test_a_write_interrupted_half_way_says_so_and_leaves_nothing(ext: str, signum: int, tmp_path: Path) -> None:
    """SIGTERM or Ctrl-C in the middle of a writer (torch's zip writer turns the interrupt raised in its
    Python callback into its own RuntimeError): one line "interrupted", exit 130, no file, no temp file."""
    src, out = _random_resnet18(tmp_path / "w.safetensors"), tmp_path / "out" / f"w{ext}"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_DISK, str(src), str(out)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        temps = list(out.parent.glob(f".*{TEMP_MARK}*"))
        if temps and temps[0].exists() and temps[0].stat().st_size > 1000:  # the writer is half-way
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the writer finished before it could be interrupted"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines() == ["interrupted"], err[-2000:]
    assert list(out.parent.iterdir()) == []


_INTERRUPTED_READ = """
import os, signal, sys, time
import numpy as np
from resnet_tools.cli import main

honest = np.fromfile


def fromfile(*args, **kwargs):  # the signal lands while numpy reads a lazy tensor, and numpy's C code turns the
    try:  # KeyboardInterrupt raised by our handler into its own TypeError (seen once in CI under load)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        raise TypeError("expected str, bytes or os.PathLike object, not BufferedReader") from None
    return honest(*args, **kwargs)


np.fromfile = fromfile
sys.exit(main(["convert", sys.argv[1], sys.argv[2]]))
"""


@pytest.mark.parametrize("ext", [".pth", ".npz"])
def test_a_read_interrupted_half_way_says_so_and_leaves_nothing(ext: str, tmp_path: Path) -> None:
    """Ctrl-C while a source tensor is read lazily, which the reading library reports as its own unrelated error:
    still one line "interrupted", exit 130, no file, no temp file."""
    out = tmp_path / "out" / f"w{ext}"
    res = _convert_in_child(_INTERRUPTED_READ, tmp_path, out)
    assert res.returncode == 130, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == ["interrupted"], res.stderr[-2000:]
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("path", ["fast", "eager"])
def test_paddle_runs_where_home_cannot_be_written(path: str, tmp_path: Path) -> None:
    """A HOME that cannot hold ~/.cache/paddle (read-only; here a file, which stops root too): paddle writes there
    at import and in to_static, so predict on paddle runs with a private HOME that is removed at exit."""
    if "paddle" not in LOADED:
        pytest.skip("paddle not installed")
    weights = _random_resnet18(tmp_path / "w.safetensors")
    image = tmp_path / "photo.png"
    from PIL import Image
    from sklearn.datasets import load_sample_image

    Image.fromarray(load_sample_image("flower.jpg")[:120, :160]).save(image)
    home = tmp_path / "home"
    home.write_text("not a folder")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "TMPDIR": str(temp)}
    cmd = [sys.executable, "-m", "resnet_tools.cli.main", "predict", "--backend", "paddle", "--path", path]
    res = subprocess.run([*cmd, "--weights", str(weights), str(image)], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "1. class" in res.stdout
    assert not [p for p in temp.iterdir() if p.name.startswith("resnet-paddle-home-")], "the private HOME was left"
