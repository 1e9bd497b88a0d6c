"""Each backend imports alone; paddle after TensorFlow is refused with a clear error, never a segfault."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from parity_tests.conftest import LOADED

FRAMEWORK_MODULES = ("torch", "paddle", "tensorflow")


def _run(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def _loaded_after(stmt: str, env_extra: dict[str, str] | None = None) -> set[str]:
    code = f"import sys\n{stmt}\nprint('loaded:' + ','.join(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))"
    res = _run(code, env_extra)
    assert res.returncode == 0, res.stderr[-2000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("loaded:")][-1]
    return set(filter(None, line.removeprefix("loaded:").split(",")))


def test_spec_loads_no_framework() -> None:
    stmt = "import resnet_spec, resnet_spec.naming, resnet_spec.random_weights; resnet_spec.list_models()"
    assert _loaded_after(stmt) == set()


def test_cli_list_loads_no_framework() -> None:
    assert _loaded_after("from resnet_tools.cli import main; main(['list'])") == set()


@pytest.mark.parametrize(
    ("backend", "framework", "env"),
    [("torch", "torch", {}), ("paddle", "paddle", {}), ("keras", "tensorflow", {"KERAS_BACKEND": "tensorflow"})],
)
def test_backend_imports_alone(backend: str, framework: str, env: dict[str, str]) -> None:
    if backend not in LOADED:
        pytest.skip(f"{backend} not installed")
    assert _loaded_after(f"import resnet_{backend}", env) == {framework}


def test_keras_on_torch_backend_loads_no_tensorflow() -> None:
    if "keras" not in LOADED or "torch" not in LOADED:
        pytest.skip("keras or torch not installed")
    assert _loaded_after("import resnet_keras", {"KERAS_BACKEND": "torch"}) == {"torch"}


def test_paddle_after_tensorflow_raises_clear_error() -> None:
    if "keras" not in LOADED or "paddle" not in LOADED:
        pytest.skip("keras or paddle not installed")
    res = _run("import resnet_keras\nimport resnet_paddle", {"KERAS_BACKEND": "tensorflow"})
    assert res.returncode == 1  # a Python exception, not a signal (segfault would be -11)
    assert "ImportOrderError" in res.stderr and "segfaults when imported after TensorFlow" in res.stderr


def test_load_backends_orders_paddle_first() -> None:
    if "keras" not in LOADED or "paddle" not in LOADED:
        pytest.skip("keras or paddle not installed")
    code = "from resnet_tools.core.backends import load_backends\nload_backends(['keras', 'paddle'])"
    assert _loaded_after(code, {"KERAS_BACKEND": "tensorflow"}) == {"paddle", "tensorflow"}


@pytest.mark.skipif("paddle" not in LOADED or "torch" not in LOADED, reason="needs torch and paddle")
def test_cli_silences_framework_chatter_unless_verbose() -> None:
    """paddle's glog warning (and TF/XLA C++ logs) stay out of a newcomer's `resnet parity` output."""
    import re

    argv = ["parity", "--models", "resnet18", "--backends", "torch,paddle", "--input", "2x3x64x64"]
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    glog = re.compile(r"^[IWE]\d{4} ", re.M)
    quiet = subprocess.run(
        [sys.executable, "-m", "resnet_tools.cli", *argv], capture_output=True, text=True, env=env, timeout=600
    )
    assert quiet.returncode == 0 and "pairs within tolerance" in quiet.stdout
    assert not glog.search(quiet.stderr), quiet.stderr
    verbose = subprocess.run(
        [sys.executable, "-m", "resnet_tools.cli", "--verbose", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert verbose.returncode == 0 and glog.search(verbose.stderr)


@pytest.mark.skipif("keras" not in LOADED, reason="needs keras")
def test_keras_import_chatter_is_silenced_unless_verbose() -> None:
    """TensorFlow prints absl/oneDNN lines at import time whatever TF_CPP_MIN_LOG_LEVEL says: the CLI
    captures them (and gives them back with --verbose)."""
    argv = ["summary", "resnet18", "--backend", "keras", "--input", "1x3x64x64"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    env = {k: v for k, v in env.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "RESNET_QUIET_IMPORTS")}
    run = [sys.executable, "-m", "resnet_tools.cli"]
    quiet = subprocess.run([*run, *argv], capture_output=True, text=True, env=env, timeout=600)
    assert quiet.returncode == 0 and "total params" in quiet.stdout
    assert quiet.stderr.strip() == "", quiet.stderr
    verbose = subprocess.run([*run, "--verbose", *argv], capture_output=True, text=True, env=env, timeout=600)
    assert verbose.returncode == 0 and "absl" in verbose.stderr
