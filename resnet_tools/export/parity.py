"""Parity of exported artifacts: a model with seeded random weights (random BN statistics and affine terms)
is exported by each backend that writes the format, run in the format's runtime, and compared with the
backend's own eager forward on the same batch. Each artifact is exported with a free batch dimension and
also checked for batch-size invariance: each row run alone gives what it gave inside the batch.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from resnet_spec.tolerances import tolerance
from resnet_tools.core.backends import Backend, load_submodule, quiet_stderr
from resnet_tools.core.diffs import tensor_diff, within
from resnet_tools.export.formats import FORMATS, check_writer, defect
from resnet_tools.export.runtimes import artifact_runner
from resnet_tools.export.write import write_artifact
from resnet_tools.parity.engine import ParityRecord, seeded_inputs

#: The comparison points of an export record: the logits against the source, then each row run alone.
EXPORT_POINTS = ("logits", "batch 1")


def runtime_name(fmt: str) -> str:
    """The runtime that ran ``fmt`` and its installed version, for records and tables."""
    try:
        version = importlib.metadata.version(FORMATS[fmt].dist)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"{FORMATS[fmt].runtime} {version}"


def run_export_parity(
    name: str,
    modules: dict[str, Backend],
    targets: list[str],
    *,
    input_shape: tuple[int, int, int, int],
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> list[ParityRecord]:
    """For each target format and each backend in ``modules`` that writes it: export, run, compare. A pair
    with a known exporter defect (``formats.DEFECTS``) is skipped and reported through ``on_skip``."""
    tol = tolerance("float32", "cpu", "export").rel
    spec, _rng, x, seeded = seeded_inputs(name, input_shape, seed, "float32")
    records = []
    for fmt_name in targets:
        fmt = FORMATS[fmt_name]
        for backend, mod in modules.items():
            if backend not in fmt.writers:
                continue
            known = defect(fmt.name, backend, spec)
            if known is not None:  # reported, not run: parity_tests/export/test_export.py keeps measuring it
                if on_skip:
                    on_skip(f"{name}: {backend} -> {fmt.name} not run: {known.what}")
                continue
            check_writer(fmt, backend)
            model = mod.import_weights(mod.create_model(spec), seeded)
            ref = mod.forward_numpy(model, x)["logits"]
            exporter = load_submodule(backend, "export")
            with tempfile.TemporaryDirectory(prefix="resnet-export-parity-") as tmp:
                out = Path(tmp) / f"model{fmt.suffix}"
                write_artifact(exporter, model, fmt, out, input_shape=input_shape, dynamic_batch=True)
                with quiet_stderr():  # runtimes announce their delegates (TFLite's XNNPACK line); replayed on failure
                    run = artifact_runner(fmt.name, out, exporter)
                    got = run(x)
                    alone = np.concatenate([run(x[i : i + 1]) for i in range(len(x))])
            stages = {"logits": tensor_diff(ref, got), "batch 1": tensor_diff(got, alone)}
            first_bad = next((k for k in EXPORT_POINTS if not within(stages[k], tol)), None)
            top1 = float(np.mean(ref.argmax(1) == got.argmax(1))) if ref.ndim == 2 and ref.shape[1] > 1 else None
            records.append(ParityRecord(
                model=name, source=backend, target=fmt.name, device="cpu", dtype="float32", mode="export",
                input_shape=list(input_shape), tolerance=tol, max_abs_diff=stages["logits"].max_abs,
                max_rel_diff=stages["logits"].max_rel, cosine=stages["logits"].cosine, top1_agree=top1,
                first_divergent_stage=first_bad, passed=first_bad is None, stages=stages, source_path="eager",
                target_path=runtime_name(fmt.name),
            ))  # fmt: skip
            if on_step:
                on_step(f"{backend} -> {fmt.name}")
    return records
