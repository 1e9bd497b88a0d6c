"""The INT8 paths: ONNX Runtime's (shared: torch's ONNX export) and each framework's own (its descriptor's ``int8``
facts, its ``int8`` module), which are installed here, and one path run end to end: the float model built with the
weights, quantized with the calibration images, both run on the held-out images, block by block."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import ResNetError
from resnet_tools.core.backends import (
    descriptors,
    installed_backends,
    load_backends,
    load_submodule,
    quiet_output,
)
from resnet_tools.core.errors import UsageError
from resnet_tools.export.int8 import onnxruntime as ort
from resnet_tools.export.int8.report import Int8Report, measure


@dataclass(frozen=True)
class Int8Path:
    name: str
    backend: str  # the framework whose float model it quantizes
    format: str  # the artifact format it writes (resnet export --format)
    needs: tuple[str, ...]  # modules it needs besides that framework

    def missing(self) -> list[str]:
        """What is not installed for it here (its framework included)."""
        wanted = (descriptors()[self.backend].module, *self.needs)
        return [m for m in wanted if importlib.util.find_spec(m) is None]


def int8_paths() -> dict[str, Int8Path]:
    """Every INT8 path, ONNX Runtime's first, then each framework's own in the frameworks' order."""
    found = {ort.PATH: Int8Path(ort.PATH, "torch", "onnx", ort.NEEDS)}
    for backend, d in descriptors().items():
        found |= {name: Int8Path(name, backend, fmt, tuple(needs)) for name, (fmt, needs) in d.int8.items()}
    return found


def parse_paths(text: str | None) -> list[Int8Path]:
    """``--int8-paths a,b`` (None: every installed one); one line for an unknown or uninstalled path."""
    table = int8_paths()
    if text is None:
        return [p for p in table.values() if not p.missing() and p.backend in installed_backends()]
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        raise UsageError(f"unknown INT8 path {', '.join(unknown) or '(none)'}; known: {', '.join(table)}")
    for name in names:
        if missing := table[name].missing():
            raise UsageError(
                f"INT8 path {name} needs {', '.join(missing)}, not installed (pip install 'resnet-xf[export]')"
            )
    return [table[n] for n in names]


def load_for(
    ckpt: str, paths: list[Int8Path], model: str | None = None, sha256: str | None = None
) -> tuple[ModelSpec, Mapping[str, np.ndarray]]:
    """(the checkpoint's spec, its canonical weights), its reader's framework and the paths' loaded, paddle first."""
    from resnet_tools.checkpoints.convert import resolve_spec
    from resnet_tools.checkpoints.formats import FORMATS as CHECKPOINT_FORMATS
    from resnet_tools.checkpoints.formats import format_for, read_checkpoint
    from resnet_tools.hub.resolve import resolve_weights

    local = resolve_weights(ckpt, sha256=sha256)
    reader = CHECKPOINT_FORMATS[local.format] if local.format else format_for(local.path)
    load_backends(list(dict.fromkeys([*([reader.imports] if reader.imports else []), *(p.backend for p in paths)])))
    checkpoint = read_checkpoint(local.path, reader, model or local.model)
    return resolve_spec(checkpoint, model or local.model), checkpoint.weights


def path_for_format(fmt: str) -> Int8Path:
    """The INT8 path that writes ``fmt`` (``resnet export --format F --int8``); one line if none does."""
    table = {p.format: p for p in int8_paths().values()}
    if fmt not in table:
        raise UsageError(f"--int8 writes {', '.join(table)} (one INT8 path each), not {fmt}")
    path = table[fmt]
    if missing := path.missing():
        raise UsageError(f"--int8 --format {fmt} ({path.name}) needs {', '.join(missing)}, not installed")
    return path


def run_path(
    path: Int8Path, spec: ModelSpec, weights: Mapping[str, np.ndarray], cal: np.ndarray, x: np.ndarray,
    y: np.ndarray, calibration: str, per_channel: bool, threads: int, artifact: Path, verbose: bool = False,
    speed: bool = False,
) -> Int8Report:  # fmt: skip
    """One INT8 path end to end: the float model built with ``weights``, quantized with ``cal``, its artifact
    written at ``artifact`` (a file, or a folder for paddle-inference) and run in its runtime on ``x``. The report's
    top-1 and agreement are the artifact's (what is deployed); its blocks are the quantized model's in memory."""
    from resnet_tools.core.diffs import tensor_diff
    from resnet_tools.export.runtimes import artifact_runner

    mod = load_backends([path.backend])[path.backend]
    model = mod.import_weights(mod.create_model(spec), weights)
    float_out = _batched(lambda part: mod.forward_blocks(model, part), x, 64)
    # quantizers and runtimes print progress bars and graph passes (C++ included); replayed if they fail
    with nullcontext() if verbose else quiet_output(), _failures_named(path, spec.name):
        if path.name == ort.PATH:
            quantized = ort.quantize_model(model, cal, per_channel, threads)
            scheme = f"weights per {'channel' if per_channel else 'tensor'}, activations per tensor"
        else:
            quantized = load_submodule(path.backend, "int8").quantize(model, cal, path.name, per_channel, threads)
            scheme = quantized.scheme
        in_memory = quantized.forward(x)
        quantized.save(artifact)
        run = artifact_runner(path.format, artifact, load_submodule(path.backend, "export"))
        deployed = _batched(lambda part: {"logits": run(part)}, x, quantized.batch)["logits"]
    report = measure(path.name, path.backend, scheme, calibration, y, float_out, {**in_memory, "logits": deployed})
    report.file_vs_memory = tensor_diff(in_memory["logits"], deployed).max_rel
    if speed:
        with nullcontext() if verbose else quiet_output():
            report.speed = measure_speed(path, model, artifact, x, quantized.batch)
    return report


def measure_speed(path: Int8Path, model: Any, artifact: Path, x: np.ndarray, batch: int) -> dict[str, Any]:
    """Float and INT8 images/s of the same format in the same runtime, on the same batch of held-out images,
    interleaved (5 rounds, the best of each): the float artifact is written by the format's float exporter."""
    import tempfile
    import time

    from resnet_tools.export.runtimes import artifact_runner

    exporter = load_submodule(path.backend, "export")
    batch = min(batch, 16, len(x))
    part = np.ascontiguousarray(x[:batch])
    with tempfile.TemporaryDirectory(prefix="resnet_int8_speed_") as tmp:
        float_path = Path(tmp) / f"float{artifact.suffix}"
        dynamic = path.format != "tflite"  # TFLite's interpreter keeps the batch it was converted with
        exporter.export_artifact(model, path.format, float_path, input_shape=part.shape, dynamic_batch=dynamic)
        runs = {
            "float": artifact_runner(path.format, float_path, exporter),
            "int8": artifact_runner(path.format, artifact, exporter),
        }
        best = {k: float("inf") for k in runs}
        for run in runs.values():
            run(part)  # warm-up: first-call compilation and allocation
        for _ in range(5):
            for name, run in runs.items():
                start = time.perf_counter()
                run(part)
                best[name] = min(best[name], time.perf_counter() - start)
    return {"batch": batch, "float_img_s": batch / best["float"], "int8_img_s": batch / best["int8"],
            "speedup": best["float"] / best["int8"], "runtime": path.format}  # fmt: skip


@contextmanager
def _failures_named(path: Int8Path, model: str) -> Iterator[None]:
    """A quantizer's or runtime's own exception (torchao, ORT, TFLite's converter, paddle) as one line naming the
    path and the model; ours (ResNetError) pass through."""
    try:
        yield
    except ResNetError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise Int8PathError(f"INT8 path {path.name} failed on {model}: {type(exc).__name__}: {first}") from exc


class Int8PathError(ResNetError):
    """An INT8 path that could not quantize or run a model (the framework's error, in one line)."""


def _batched(fn: Callable[[np.ndarray], dict[str, np.ndarray]], x: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """``fn`` over ``x`` in batches, its outputs joined."""
    parts = [fn(x[i : i + batch]) for i in range(0, len(x), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
