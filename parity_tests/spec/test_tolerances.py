"""The tolerance table is set from measurements (bench/measure_tolerances.py), not picked: every bound sits at
or above the worst measured figure and less than 10x above it, and every entry has a measurement behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet_spec.tolerances import TOLERANCES, tolerance

GENERATED = Path(__file__).resolve().parents[2] / "docs" / "generated"
SLACK = 10  # a bound 10x above its measurement would hide a bug the size of a loosened tolerance


def _measured() -> dict[tuple[str, str, str], float]:
    worst: dict[tuple[str, str, str], float] = {}
    for path in (GENERATED / "tolerances-cpu.json", GENERATED / "gpu" / "tolerances-gpu.json"):
        data = json.loads(path.read_text())
        for key, entry in data["entries"].items():
            assert not [r for r in entry["runs"] if "error" in r], key
            worst[tuple(key.split("/"))] = entry["max"]  # type: ignore[index]
    return worst


def test_every_tolerance_is_measured_and_holds() -> None:
    measured = _measured()
    for key, tol in TOLERANCES.items():
        assert key in measured, f"{'/'.join(key)}: no measurement in docs/generated/[gpu/]tolerances-*.json"
        assert measured[key] <= tol.rel, (key, measured[key], tol.rel)


@pytest.mark.parametrize("key", sorted(TOLERANCES))
def test_no_tolerance_far_above_its_measurement(key: tuple[str, str, str]) -> None:
    """GPU bounds may follow the CPU figure of the same dtype/mode: paddle (measured on CPU only) runs there too."""
    measured = _measured()
    dtype, _device, mode = key
    reference = max(v for (d, _, m), v in measured.items() if (d, m) == (dtype, mode))
    assert tolerance(*key).rel <= SLACK * reference, (key, reference)
