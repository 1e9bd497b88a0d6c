"""The zoo wing: `resnet list` / `resnet summary` tables, computed from the spec and checked against each backend."""

from __future__ import annotations

import pytest

from parity_tests.conftest import LOADED
from resnet_spec import count_macs, get_spec
from resnet_tools.cli import main
from resnet_tools.zoo.summary import summarize


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "resnet50v1", "resnet50v2"])
def test_summary_totals_match_spec_and_backends(name: str) -> None:
    spec = get_spec(name)
    summaries = {b: summarize(spec, b, (2, 3, 97, 131)) for b in LOADED}  # verify=True builds each model
    for s in summaries.values():
        assert (s.trainable, s.non_trainable) == (spec.expected_trainable, spec.expected_bn_stats)
        assert s.macs == count_macs(spec, 97, 131) and s.output_shape == (2, 1000)
    strip = [
        [(r.layer, r.kind, r.output_shape, r.trainable, r.non_trainable) for r in s.rows] for s in summaries.values()
    ]
    assert all(rows == strip[0] for rows in strip)  # identical content, only native names differ


def test_summary_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18", "--backend", "paddle", "--input", "1x3x64x64"]) == 0
    out = capsys.readouterr().out
    assert "trainable params: 11,689,512" in out and "layer1.0.bn1._mean" not in out and "layer4.1.bn2" in out


def test_summary_of_a_huge_input_is_computed_not_allocated(capsys: pytest.CaptureFixture[str]) -> None:
    """1x3x100000x100000 would need 112 GiB for the input alone: the table is computed, and the
    backend's model is checked on a capped batch (was a MemoryError traceback)."""
    backend = next(iter(LOADED))
    assert main(["summary", "resnet18", "--backend", backend, "--input", "1x3x100000x100000"]) == 0
    out = capsys.readouterr().out
    assert "[1, 512, 3125, 3125]" in out and "361440.001 G per image" in out
