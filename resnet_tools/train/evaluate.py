"""Accuracy of one checkpoint in several frameworks on the same preprocessed images: top-1 and top-5 per
backend, and how far the backends agree (argmax agreement, max logit difference)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_tools.checkpoints.convert import resolve_spec
from resnet_tools.checkpoints.formats import FORMATS, TRAINING_KEY, format_for, read_checkpoint
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.core.backends import Backend
from resnet_tools.core.errors import InputError, UsageError
from resnet_tools.train.data import DIGITS, load_digits

CHUNK = 128


@dataclass
class Evaluation:
    model: str
    data: str
    images: int
    top1: dict[str, float] = field(default_factory=dict)
    top5: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)  # "a vs b": share of images with the same argmax
    max_logit_diff: dict[str, float] = field(default_factory=dict)  # "a vs b": max |logits_a - logits_b|
    logits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per backend (not in the JSON)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "logits"}


def evaluation_images(
    data: str, ckpt_metadata: dict[str, str], spec: Any, size: int | None, style: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """(images NCHW float32, labels, description): digits at the size the run trained at, or a folder of
    class folders through the checkpoint's preprocessing recipe."""
    run = json.loads(ckpt_metadata[TRAINING_KEY]) if TRAINING_KEY in ckpt_metadata else {}
    if data == DIGITS:
        d = load_digits(size or int(run.get("size", 32)))
        if spec.in_channels != d.in_channels or spec.num_classes != len(d.classes):
            raise UsageError(
                f"the checkpoint has {spec.in_channels} input channel(s) and {spec.num_classes} classes; "
                f"digits has {d.in_channels} and {len(d.classes)}"
            )
        return d.x_test, d.y_test, f"digits test split ({len(d.y_test)} scans at {d.x_test.shape[-1]}px)"
    return _folder(Path(data), spec, style)


def _folder(path: Path, spec: Any, style: str) -> tuple[np.ndarray, np.ndarray, str]:
    from resnet_tools.predict.preprocess import load_image
    from resnet_tools.train.data import IMAGE_SUFFIXES

    if not path.is_dir():
        raise UsageError(f"--data {path}: no such folder, and not a known dataset (known: {DIGITS})")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) != spec.num_classes:
        raise InputError(
            f"--data {path} has {len(classes)} class folders; the checkpoint has {spec.num_classes} classes"
        )
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in sorted(p for p in (path / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            loaded = load_image(f, style)
            if loaded.array is None:
                raise InputError(f"--data {path}: {f.relative_to(path)}: {loaded.note}")
            xs.append(loaded.array)
            ys.append(label)
    if not xs:
        raise InputError(f"--data {path}: no images in its class folders")
    return np.stack(xs), np.array(ys, dtype=np.int64), f"{path} ({len(ys)} images, preprocessing {style})"


def evaluate(
    modules: dict[str, Backend],
    weights_path: Path,
    data: str,
    *,
    size: int | None = None,
    fmt: str | None = None,
    model: str | None = None,
    preprocessing: str | None = None,
    on_images: Callable[[str, int, int], None] | None = None,
    how: MapRequest = PLAIN,
) -> Evaluation:
    """Top-1/top-5 of the checkpoint in every backend of ``modules``, and pairwise agreement.
    ``on_images(backend, done, total)`` follows each chunk of images (a progress bar)."""
    f = FORMATS[fmt] if fmt else format_for(weights_path)
    ckpt = read_checkpoint(weights_path, f, model, how=how)
    spec = resolve_spec(ckpt, model, how.assume)
    if spec.num_classes < 1:
        raise UsageError(f"{weights_path} has no classifier (num_classes=0): nothing to evaluate")
    style = preprocessing or ckpt.metadata.get("preprocessing") or spec.preprocessing
    x, y, described = evaluation_images(data, ckpt.metadata, spec, size, style)
    dtype = "float64" if any(np.asarray(v).dtype == np.float64 for v in ckpt.weights.values()) else "float32"
    logits = {}
    for b, mod in modules.items():
        net = mod.import_weights(mod.create_model(spec, dtype=dtype), ckpt.weights)
        chunks = []
        for i in range(0, len(y), CHUNK):
            chunks.append(mod.forward_numpy(net, x[i : i + CHUNK].astype(dtype))["logits"])
            if on_images is not None:
                on_images(b, min(i + CHUNK, len(y)), len(y))
        logits[b] = np.concatenate(chunks)
    out = Evaluation(spec.name, described, len(y), logits=logits)
    k = min(5, spec.num_classes)
    for b, z in logits.items():
        out.top1[b] = float((z.argmax(1) == y).mean())
        out.top5[b] = float((np.argsort(-z, axis=1, kind="stable")[:, :k] == y[:, None]).any(1).mean())
    names = list(logits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out.agreement[f"{a} vs {b}"] = float((logits[a].argmax(1) == logits[b].argmax(1)).mean())
            out.max_logit_diff[f"{a} vs {b}"] = float(np.abs(logits[a] - logits[b]).max())
    return out
