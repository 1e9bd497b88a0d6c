"""Writing an artifact atomically: the exporter writes into a temp folder beside the output, and the result
is renamed into place only when it is complete, so a failed or interrupted export leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from resnet_tools.core.backends import quiet_output
from resnet_tools.core.errors import OutputError
from resnet_tools.core.files import publish, staged
from resnet_tools.export.formats import ArtifactFormat
from resnet_tools.export.runtimes import mark_layout

#: A folder artifact's mark that this tool wrote it: --force replaces only such a folder, never one of the user's.
MARK = ".resnet-export"


def check_output(out: Path, fmt: ArtifactFormat, *, force: bool) -> None:
    """Before any export work: the folder exists and is writable, and nothing is replaced without --force."""
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise OutputError(f"cannot write {out}: folder {out.parent} is not writable")
    if out.exists() and not force:
        raise OutputError(f"{out} exists; pass --force to overwrite")
    if out.exists() and out.is_dir() != fmt.folder:
        kind = "a folder" if out.is_dir() else "a file"
        raise OutputError(
            f"cannot write {out}: it is {kind}, and {fmt.name} is {'a folder' if fmt.folder else 'a file'}"
        )
    if out.is_dir() and not (out / MARK).is_file():
        raise OutputError(
            f"{out} is a folder resnet export did not write (no {MARK} in it): --force replaces only an artifact "
            f"of ours; move your files or pick another name"
        )


def input_layout(model: Any) -> str:
    """The input layout of a model's artifacts: NHWC for a channels_last Keras model, else NCHW."""
    return "NHWC" if getattr(model, "data_format", "") == "channels_last" else "NCHW"


def write_artifact(
    exporter: Any, model: Any, fmt: ArtifactFormat, out: Path, *, input_shape: tuple[int, ...],
    dynamic_batch: bool = False, opset: int | None = None, layout: str | None = None, force: bool = False,
    verbose: bool = False,
) -> Path:  # fmt: skip
    """``exporter.export_artifact(model, ...)`` into a temp folder beside ``out``, then renamed onto ``out``.
    ONNX files get their input ``layout`` recorded in their metadata (default: :func:`input_layout`)."""
    check_output(out, fmt, force=force)
    with staged(out) as made:
        if verbose:
            exporter.export_artifact(model, fmt.name, made, input_shape=input_shape, dynamic_batch=dynamic_batch,
                                     opset=opset)  # fmt: skip
        else:
            with quiet_output():  # the exporters print their progress; replayed if they fail
                exporter.export_artifact(model, fmt.name, made, input_shape=input_shape, dynamic_batch=dynamic_batch,
                                         opset=opset)  # fmt: skip
        if fmt.name == "onnx":
            mark_layout(made, layout or input_layout(model))
        if fmt.folder:
            (made / MARK).write_text("written by resnet export; --force may replace this folder\n")
        publish(made, out)  # --force: the old artifact goes only once the new one is complete
    return out
