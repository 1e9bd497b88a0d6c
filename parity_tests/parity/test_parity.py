"""Eval-mode parity of every model for every ordered pair of backends, and that parity catches bugs.

``make test`` runs one model of each kind (conftest's SAMPLE: basic, v1.5 and v1 bottleneck, pre-activation,
grouped, wide) eager at 97x131 and 224x224 and on the fast path; ``make test-all`` adds the zoo's other models eager at
97x131 (marked slow), and ``make docs-data`` runs the whole zoo on the fast path (docs/generated/parity-eval)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from parity_tests.conftest import ALL_FRAMEWORKS_AT_ONCE, LOADED, SAMPLE
from resnet_spec import get_spec, list_models
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import TEST_CEILING, TOLERANCES
from resnet_tools.cli import main
from resnet_tools.parity.engine import DEPTH, compare, run_model_parity

pytestmark = pytest.mark.skipif(len(LOADED) < 2, reason="needs two backends")


def test_tolerance_table_within_ceiling() -> None:
    for (dtype, device, _mode), tol in TOLERANCES.items():
        if dtype == "float32" and device == "cpu":
            assert tol.rel <= TEST_CEILING, tol


RUNS = [
    pytest.param(
        name, size, path, id=f"{name}-{size[0]}x{size[1]}-{path}", marks=() if name in SAMPLE else pytest.mark.slow
    )
    for name in list_models()
    for size, path in (((97, 131), "eager"), ((224, 224), "eager"), ((97, 131), "fast"))
    if (path == "eager" and size == (97, 131)) or name in SAMPLE
]


@ALL_FRAMEWORKS_AT_ONCE
@pytest.mark.parametrize(("name", "size", "path"), RUNS)
def test_eval_parity_all_pairs(name: str, size: tuple[int, int], path: str) -> None:
    records = run_model_parity(name, LOADED, input_shape=(2, 3, *size), seed=7, path=path)
    assert len(records) == len(LOADED) * (len(LOADED) - 1)
    for r in records:
        assert (r.source_path == "eager") == (path == "eager") == (r.target_path == "eager")
        assert set(r.stages) == set(DEPTH)
        assert r.passed, f"{r.source}->{r.target}: first divergent {r.first_divergent_stage}, {r.stages}"
        assert r.max_rel_diff <= r.tolerance <= TEST_CEILING
        assert r.top1_agree == 1.0
        assert r.cosine > 1 - 1e-9


def _forward_with(backend: str, name: str, weights: dict, x: np.ndarray) -> dict:
    mod = LOADED[backend]
    model = mod.create_model(name)
    mod.import_weights(model, weights)
    return mod.forward_numpy(model, x, features=True)


@pytest.mark.parametrize("target", ["paddle", "keras"])
def test_swapped_mean_and_variance_is_caught(target: str) -> None:
    spec = get_spec("resnet18")
    good = random_weights(spec, seed=3)
    bad = dict(good)
    bad["bn1.running_mean"], bad["bn1.running_var"] = good["bn1.running_var"], good["bn1.running_mean"]
    x = np.random.default_rng(0).standard_normal((2, 3, 45, 61)).astype("float32")
    ref = _forward_with("torch", "resnet18", good, x)
    result = compare(ref, _forward_with(target, "resnet18", bad, x), TOLERANCES[("float32", "cpu", "eval")].rel)
    assert not result["passed"] and result["first_divergent_stage"] == "stem"


@pytest.mark.parametrize("target", ["paddle", "keras"])
def test_missing_transpose_on_square_kernel_is_caught(target: str) -> None:
    """A 1x1 conv with in == out channels and a square classifier: a reshape instead of a transpose
    keeps every shape right and only the numbers wrong. Parity must see it, at the right depth."""
    name = "resnet50"
    spec = get_spec(name, num_classes=2048)
    good = random_weights(spec, seed=4)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype("float32")
    tol = TOLERANCES[("float32", "cpu", "eval")].rel
    mod = LOADED[target]

    def run(weights: dict) -> dict:
        model = mod.create_model(name, num_classes=2048)
        mod.import_weights(model, weights)
        return mod.forward_numpy(model, x, features=True)

    ref_model = LOADED["torch"].create_model(name, num_classes=2048)
    LOADED["torch"].import_weights(ref_model, good)
    ref = LOADED["torch"].forward_numpy(ref_model, x, features=True)
    assert compare(ref, run(good), tol)["passed"]

    square_conv = next(k for k, v in good.items() if v.ndim == 4 and v.shape[0] == v.shape[1] and v.shape[2] == 1)
    bad_conv = dict(good, **{square_conv: np.ascontiguousarray(good[square_conv].transpose(1, 0, 2, 3))})
    result = compare(ref, run(bad_conv), tol)
    stage = f"stage{square_conv[len('layer')]}"
    assert not result["passed"] and result["first_divergent_stage"] == stage

    bad_fc = dict(good, **{"fc.weight": np.ascontiguousarray(good["fc.weight"].T)})
    result = compare(ref, run(bad_fc), tol)
    assert not result["passed"] and result["first_divergent_stage"] == "logits"


def test_cli_parity_json_and_report(tmp_path: Path) -> None:
    out_json, report = tmp_path / "parity.json", tmp_path / "report"
    rc = main(
        ["parity", "--models", "resnet18", "--input", "2x3x33x47", "--json", str(out_json), "--report", str(report)]
    )
    assert rc == 0
    records = json.loads(out_json.read_text())
    assert len(records) == len(LOADED) * (len(LOADED) - 1)
    required = {
        "model",
        "source",
        "target",
        "device",
        "dtype",
        "mode",
        "max_abs_diff",
        "max_rel_diff",
        "cosine",
        "top1_agree",
        "first_divergent_stage",
        "passed",
    }
    for rec in records:
        assert required <= set(rec) and rec["passed"] is True and rec["device"] == "cpu"
        assert "eager" not in (rec["source_path"], rec["target_path"])  # the fast paths by default
    assert (report / "parity.md").read_text().count("| resnet18 |") == len(records)
    assert "execution paths: torch: channels_last" in (report / "parity.md").read_text()
    import datetime

    day = datetime.date.today().isoformat()  # the bare table the docs pull in says when it was measured
    assert (report / "table.md").read_text().startswith(f"Measured {day}: cpu, float32, eval mode, input 2x3x33x47; ")
    assert (report / "divergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![parity matrix](heatmap.png)" in (report / "parity.md").read_text()
    umask = os.umask(0)
    os.umask(umask)
    for written in (out_json, report / "parity.md", report / "divergence.png"):
        assert written.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["parity", "--models", "resnet5"], "unknown model 'resnet5'"),
        (["parity", "--input", "2x3x224"], "--input must be NxCxHxW"),
        (["parity", "--backends", "torch,mxnet"], "unknown backend(s) mxnet"),
        (["parity", "--backends", "torch"], "at least two backends"),
        (["parity", "--models", ""], "--models names no model"),
        (["parity", "--models", " , "], "--models names no model"),
        (["parity", "--seed", "-1"], "--seed must be a non-negative integer"),
        (["parity", "--mode", "train", "--input", "1x3x32x32"], "batch of at least 2"),
    ],
)
def test_cli_parity_bad_input(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_cli_outputs_checked_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing --json / --report is not overwritten without --force, and a missing folder is reported
    before any model runs (not after minutes of work)."""
    taken = tmp_path / "taken.json"
    taken.write_text("keep")
    report = tmp_path / "report"
    report.mkdir()
    (report / "parity.md").write_text("keep")
    base = ["parity", "--models", "resnet18", "--input", "2x3x32x40"]
    for argv, fragment in (
        ([*base, "--json", str(taken)], "exists; pass --force"),
        ([*base, "--report", str(report)], "already holds a report; pass --force"),
        ([*base, "--json", str(tmp_path / "no" / "x.json")], "does not exist"),
        (["bench", "--json", str(taken)], "exists; pass --force"),
        (["predict", "x.png", "--weights", "w.npz", "--grid", str(taken)], "exists; pass --force"),
    ):
        assert main(argv) == 2
        assert fragment in capsys.readouterr().err
    assert taken.read_text() == "keep" and (report / "parity.md").read_text() == "keep"
    assert main([*base, "--json", str(taken), "--force"]) == 0
    assert json.loads(taken.read_text())[0]["model"] == "resnet18"


def test_heatmap_outlines_cells_above_their_tolerance(tmp_path: Path) -> None:
    """The parity matrix picture: one cell per model and ordered pair holding the worst depth point's value,
    outlined exactly where a pair is above its tolerance."""
    from resnet_tools.parity import report

    def record(model: str, source: str, worst: float) -> dict:
        stages = {k: {"max_rel": worst / 10} for k in ("stem", "stage1", "logits")}
        stages["stage1"]["max_rel"] = worst
        return {"model": model, "source": source, "target": "keras", "device": "cpu", "dtype": "float32",
                "mode": "eval", "tolerance": 1e-5, "stages": stages}  # fmt: skip

    records = [record("resnet18", "torch", 2e-6), record("resnet18", "paddle", 3e-5), record("resnet50", "torch", 4e-6)]
    models, pairs, grid, over = report.heatmap_grid(records)
    assert models == ["resnet18", "resnet50"] and pairs == ["torch\n-> keras", "paddle\n-> keras"]
    assert grid[0, 0] == 2e-6 and grid[0, 1] == 3e-5 and grid[1, 0] == 4e-6 and np.isnan(grid[1, 1])
    assert over == [(0, 1)]  # resnet18, paddle -> keras: the one above 1e-5
    assert report.plot_heatmap(records, tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
