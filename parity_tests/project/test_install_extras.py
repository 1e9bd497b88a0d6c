"""The install extras pin the versions the suite is tested with, CPU and CUDA alike (docs/gpu.md)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([0-9][^;\s]*)", req)
        if m:
            pins[m.group(1).lower()] = m.group(3)
    return pins


def test_cuda_extras_pin_the_tested_versions() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    constraints = _pins(
        [
            ln.strip()
            for ln in (ROOT / "constraints.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")
        ]
    )
    assert {"torch", "paddle", "keras", "jax", "keras-cuda", "jax-cuda"} <= set(extras)
    for name, reqs in extras.items():
        for dist, version in _pins(reqs).items():
            tested = constraints.get(dist) or constraints.get(f"{dist}-cpu")  # tensorflow[and-cuda] ~ tensorflow-cpu
            assert tested == version, f"extra [{name}] pins {dist}=={version}; constraints.txt has {tested}"
    assert "tensorflow[and-cuda]==2.21.0" in extras["keras-cuda"]
    assert "jax[cuda13]==0.10.2" in extras["jax-cuda"]


def test_license_is_an_spdx_string_setuptools_reads_without_warning() -> None:
    """setuptools >= 77 deprecates ``license = {text = ...}`` and prints a warning on every install; PEP 639's
    SPDX string is the current form, and the build requires a setuptools that reads it."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "Apache-2.0"
    (requirement,) = data["build-system"]["requires"]
    version = re.fullmatch(r"setuptools>=(\d+)", requirement)
    assert version is not None and int(version[1]) >= 77
