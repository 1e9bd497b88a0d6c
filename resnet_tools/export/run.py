"""``export`` as a library call: a checkpoint as a deployment artifact (ONNX or a framework's serving format),
written atomically by the framework that can (a known exporter defect is routed around), and verified in its
runtime against that framework. ``resnet export`` is a thin layer over :func:`export`; the tests call it too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from resnet_spec import ModelSpec
from resnet_tools.core.diffs import TensorDiff
from resnet_tools.core.errors import UsageError
from resnet_tools.export.formats import ArtifactFormat

#: The largest input export builds and verifies: beyond it a model's activations take tens of GB.
MAX_BATCH, MAX_SIDE = 1024, 4096


@dataclass
class ExportRequest:
    ckpt: str  # a checkpoint file, an official weights id or an https:// URL
    out: str
    format: str
    backend: str | None = None  # the framework whose exporter writes it (None: the checkpoint's, if it can)
    input_shape: tuple[int, int, int, int] | None = None  # None: 1 x C x crop x crop
    static_batch: bool = False
    opset: int | None = None
    model: str | None = None
    sha256: str | None = None
    force: bool = False
    verbose: bool = False


@dataclass
class ExportResult:
    out: Path
    fmt: ArtifactFormat
    backend: str
    spec: ModelSpec
    input_shape: tuple[int, ...]
    dynamic: bool
    layout: str  # NCHW, or NHWC for a channels_last Keras model
    batch: int  # the verification batch
    diff: TensorDiff  # the artifact's logits vs the framework's
    tolerance: float

    @property
    def verified(self) -> bool:
        from resnet_tools.core.diffs import within

        return within(self.diff, self.tolerance)


def export(request: ExportRequest, say: Callable[[str], None] = lambda _: None) -> ExportResult:
    """Write and verify the artifact; ``say`` hears a rerouted writer and what is being exported."""
    import numpy as np

    from resnet_spec.spec import get_preprocessing
    from resnet_spec.tolerances import tolerance
    from resnet_tools.checkpoints.convert import resolve_spec
    from resnet_tools.checkpoints.formats import FORMATS as CHECKPOINT_FORMATS
    from resnet_tools.checkpoints.formats import format_for, read_checkpoint
    from resnet_tools.core.backends import load_backends, load_submodule, quiet_stderr
    from resnet_tools.core.diffs import tensor_diff
    from resnet_tools.export.formats import check_writer, parse_format, pick_writer
    from resnet_tools.export.runtimes import artifact_runner
    from resnet_tools.export.write import check_output, input_layout, write_artifact
    from resnet_tools.hub.resolve import resolve_weights

    r = request
    fmt, out = parse_format(r.format), Path(r.out)
    check_output(out, fmt, force=r.force)
    if r.opset is not None and (fmt.name != "onnx" or not 7 <= r.opset <= 23):
        raise UsageError(f"--opset goes with --format onnx and lies in 7..23, got {r.opset}")
    local = resolve_weights(r.ckpt, sha256=r.sha256)
    reader = CHECKPOINT_FORMATS[local.format] if local.format else format_for(local.path)
    if r.backend is not None:
        check_writer(fmt, r.backend)
    modules = load_backends([reader.imports] if reader.imports else [])
    ckpt = read_checkpoint(local.path, reader, r.model or local.model)
    spec = resolve_spec(ckpt, r.model or local.model)
    backend, note = pick_writer(fmt, spec, r.backend or reader.framework, given=r.backend is not None)
    check_writer(fmt, backend)
    modules = load_backends(list(dict.fromkeys([*modules, backend])))  # paddle first, or refused in one line
    if note:
        say(f"note: {note}")
    shape = r.input_shape or (1, spec.in_channels, *(get_preprocessing(spec.preprocessing).crop,) * 2)
    check_input(shape, spec)
    # a free batch by default, as the ONNX model zoo and optimum export ResNets; TFLite's interpreter keeps it fixed
    dynamic = not r.static_batch and fmt.name != "tflite"
    mod = modules[backend]
    model = mod.import_weights(mod.create_model(spec), ckpt.weights)
    layout = input_layout(model)
    exporter = load_submodule(backend, "export")
    say(f"exporting {spec.name} from {backend} as {fmt.name}: {exporter.ARTIFACTS[fmt.name]}")
    write_artifact(exporter, model, fmt, out, input_shape=shape, dynamic_batch=dynamic, opset=r.opset,
                   layout=layout, force=r.force, verbose=r.verbose)  # fmt: skip
    batch = (3 if shape[0] == 1 else shape[0] + 1) if dynamic else shape[0]
    x = np.random.default_rng(0).standard_normal((batch, *shape[1:])).astype("float32")
    ref = mod.forward_numpy(model, x)["logits"]
    with quiet_stderr():  # runtimes announce their delegates (TFLite's XNNPACK line); replayed on failure
        got = artifact_runner(fmt.name, out, exporter)(x)
    tol = tolerance("float32", "cpu", "export").rel
    return ExportResult(out, fmt, backend, spec, shape, dynamic, layout, batch, tensor_diff(ref, got), tol)


def check_input(shape: tuple[int, ...], spec: ModelSpec) -> None:
    """An input the export can build and verify, with the model's channels: one line otherwise."""
    if shape[0] > MAX_BATCH or shape[2] * shape[3] > MAX_SIDE**2:
        raise UsageError(
            f"--input {'x'.join(map(str, shape))} is beyond what export builds (batch <= {MAX_BATCH}, "
            f"H x W <= {MAX_SIDE}x{MAX_SIDE}); the artifact's batch is free anyway"
        )
    if shape[1] != spec.in_channels:
        raise UsageError(f"{spec.name} takes {spec.in_channels} input channels; --input has {shape[1]}")
