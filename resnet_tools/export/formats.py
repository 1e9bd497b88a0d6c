"""The artifact formats: which backends write each, where it runs, and what must be installed for it.

Checked before any framework is imported, so a bad ``--format`` or a missing exporter is one line.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from resnet_spec import ModelSpec
from resnet_spec.frameworks import ArtifactKind
from resnet_tools.core.backends import descriptors
from resnet_tools.core.errors import UsageError


@dataclass(frozen=True)
class ArtifactFormat:
    name: str
    writers: tuple[str, ...]  # backends whose exporter writes it, in preference order
    folder: bool  # a folder (SavedModel, Paddle Inference) rather than one file
    suffix: str  # the usual file suffix ("" for folders)
    runtime: str  # what runs it here
    #: modules each writer needs besides its framework (PyPI names in PIP)
    needs: dict[str, tuple[str, ...]]
    dist: str  # the runtime's PyPI distribution


#: The formats several frameworks write, run here by their own runtimes (``export.runtimes``), whoever wrote them:
#: ONNX (torch, paddle, Keras) and TensorFlow's SavedModel and TFLite (Keras; Flax through jax2tf). Every other
#: format is one framework's, defined by its descriptor.
SHARED = {
    "onnx": ArtifactKind(folder=False, suffix=".onnx", runtime="onnxruntime (CPU)", dist="onnxruntime"),
    "saved-model": ArtifactKind(folder=True, suffix="", runtime="tf.saved_model.load", dist="tensorflow-cpu"),
    "tflite": ArtifactKind(folder=False, suffix=".tflite", runtime="TFLite interpreter (XNNPACK)",
                           dist="tensorflow-cpu"),
}  # fmt: skip


def formats() -> dict[str, ArtifactFormat]:
    """Every artifact format with the backends whose descriptor lists an exporter for it: the shared ones, then
    each framework's own formats in the frameworks' order."""
    table = descriptors()
    kinds = {**SHARED, **{name: kind for d in table.values() for name, kind in d.artifacts.items()}}
    return {
        name: ArtifactFormat(name, tuple(b for b, d in table.items() if name in d.exports), kind.folder, kind.suffix,
                             kind.runtime, {b: tuple(d.exports[name]) for b, d in table.items() if d.exports.get(name)},
                             kind.dist)
        for name, kind in kinds.items()
    }  # fmt: skip


FORMATS = formats()
#: Module -> the pip requirement that provides it (resnet-xf[export] installs them all).
PIP = {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime", "paddle2onnx": "paddle2onnx",
       "tf2onnx": "tf2onnx", "tensorflow": "tensorflow-cpu"}  # fmt: skip


@dataclass(frozen=True)
class Defect:
    """An exporter that writes a wrong or unloadable artifact for some models (measured), and the route
    around it: the same weights exported by another framework (conversion is lossless)."""

    writer: str
    fmt: str
    applies: Callable[[ModelSpec], bool]
    what: str


DEFECTS = (
    Defect("keras", "onnx", lambda spec: spec.groups > 1,
           "tf2onnx 1.17 leaves Keras' grouped convolutions as StatefulPartitionedCall nodes, which onnxruntime "
           "refuses to load (INVALID_GRAPH)"),
)  # fmt: skip


def defect(fmt: str, writer: str, spec: ModelSpec) -> Defect | None:
    """The known defect of ``writer``'s ``fmt`` exporter for ``spec``, if any."""
    return next((d for d in DEFECTS if (d.writer, d.fmt) == (writer, fmt) and d.applies(spec)), None)


def pick_writer(fmt: ArtifactFormat, spec: ModelSpec, preferred: str | None, *, given: bool) -> tuple[str, str]:
    """(the backend that exports ``spec`` as ``fmt``, a note when a known defect moved it off ``preferred``).
    A backend named with ``--backend`` (``given``) that has a defect here is refused with the route around it."""
    first = preferred if preferred in fmt.writers else fmt.writers[0]
    bad = defect(fmt.name, first, spec)
    if bad is None:
        return first, ""
    others = [w for w in fmt.writers if w != first and defect(fmt.name, w, spec) is None]
    if given or not others:
        route = f"; export it with --backend {others[0]} (the same weights)" if others else ""
        raise UsageError(f"{first} cannot export {spec.name} as {fmt.name}: {bad.what}{route}")
    return others[0], f"{first}'s exporter has a known defect here ({bad.what}): exported with {others[0]} instead"


def parse_format(name: str) -> ArtifactFormat:
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


def check_writer(fmt: ArtifactFormat, backend: str) -> None:
    """One line when ``backend`` cannot write ``fmt`` here: not its format, or an exporter missing."""
    if backend not in fmt.writers:
        raise UsageError(f"{backend} does not write {fmt.name}; {fmt.name} comes from {', '.join(fmt.writers)}")
    missing = [m for m in fmt.needs.get(backend, ()) if importlib.util.find_spec(m) is None]
    if missing:
        pips = " ".join(PIP.get(m, m) for m in missing)
        raise UsageError(f"{fmt.name} from {backend} needs {', '.join(missing)}, not installed: "
                         f"pip install {pips} (or resnet-xf[export])")  # fmt: skip
