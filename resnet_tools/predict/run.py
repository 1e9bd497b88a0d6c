"""``resnet predict``: the classic inference flow for any backend and any checkpoint format."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.spec import get_preprocessing
from resnet_tools.checkpoints.convert import resolve_spec
from resnet_tools.checkpoints.formats import FORMATS, format_for, read_checkpoint
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.core.backends import PATHS, installed_backends, load_backends
from resnet_tools.core.errors import InputError, UsageError
from resnet_tools.predict.preprocess import LoadedImage, load_image


@dataclass
class Prediction:
    image: LoadedImage
    top: list[tuple[int, str, float]] = field(default_factory=list)  # (class, label, probability)
    seconds: float = 0.0


@dataclass
class PredictRun:
    spec: ModelSpec
    backend: str
    path: str  # the execution path that ran (``fast_forward``'s name, or eager)
    one_off_s: float  # building the fast path (export, compile); 0 for eager
    predictions: list[Prediction]
    preprocessing: str  # the recipe images went through (resnet_spec/resnets.yaml preprocessing:)


def read_labels(path: Path | str | None, num_classes: int) -> list[str]:
    if path is None:
        return [f"class {i}" for i in range(num_classes)]
    try:
        labels = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise InputError(f"cannot read labels {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read labels {path}: not UTF-8 text (byte {exc.start})") from None
    if len(labels) != num_classes:
        raise InputError(f"{path} has {len(labels)} labels, the model has {num_classes} classes")
    return labels


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def predict(
    images: list[str],
    weights: str,
    *,
    model: str | None = None,
    backend: str | None = None,
    topk: int | None = None,
    labels: str | None = None,
    path: str = "fast",
    preprocessing: str | None = None,
    fmt: str | None = None,
    how: MapRequest = PLAIN,
) -> PredictRun:
    """Top-k predictions per image; unreadable images come back with a note and no prediction.

    ``preprocessing``: a recipe of the zoo YAML; default: the one the checkpoint records (converted
    from an official id), else its family's.

    ``path="fast"`` runs the backend's ``fast_forward`` (its one-off build/compile time is reported
    apart from the per-image times); ``"eager"`` the plain eager forward.
    """
    if path not in PATHS:
        raise UsageError(f"unknown path {path!r}; known: {', '.join(PATHS)}")
    fmt_ = FORMATS[fmt] if fmt else format_for(weights)
    backend = backend or fmt_.framework or (installed_backends() or ["torch"])[0]
    mods = load_backends(sorted({backend, *([fmt_.imports] if fmt_.imports else [])}))
    ckpt = read_checkpoint(weights, fmt_, model, how=how)
    spec = resolve_spec(ckpt, model, how.assume)
    if spec.num_classes < 1:
        raise CheckpointError(f"{weights} has no classifier head (num_classes=0): nothing to predict")
    topk = min(5, spec.num_classes) if topk is None else topk
    if not 1 <= topk <= spec.num_classes:
        raise UsageError(f"--topk must be between 1 and {spec.num_classes} (the model's classes), got {topk}")
    names = read_labels(labels, spec.num_classes)
    mod = mods[backend]
    net = mod.import_weights(mod.create_model(spec), ckpt.weights)
    start = time.perf_counter()
    if path == "fast":
        used, forward = mod.fast_forward(net)
    else:
        used, forward = "eager", lambda x: mod.forward_numpy(net, x)
    one_off = time.perf_counter() - start
    style = preprocessing or ckpt.metadata.get("preprocessing") or spec.preprocessing
    get_preprocessing(style)  # an unknown recipe is one line, before any image is read
    results = []
    for path in images:
        loaded = load_image(path, style)
        pred = Prediction(loaded)
        if loaded.array is not None:
            start = time.perf_counter()
            logits = forward(loaded.array[None])["logits"][0]
            pred.seconds = time.perf_counter() - start
            probs = softmax(logits.astype(np.float64))
            order = np.argsort(-probs, kind="stable")[: max(1, min(topk, spec.num_classes))]
            pred.top = [(int(i), names[i], float(probs[i])) for i in order]
        results.append(pred)
    return PredictRun(spec, backend, used, one_off, results, style)


def save_grid(results: list[Prediction], path: Path | str) -> Path:
    """A picture of each image with its top-1 prediction (matplotlib), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.core.files import atomic_write

    shown = [r for r in results if r.image.rgb is not None]
    if not shown:
        raise InputError("no readable image to put in the grid")
    cols = min(4, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), shown, strict=False):
        ax.imshow(r.image.rgb)
        ax.set_title(f"{r.image.path.name}\n{r.top[0][1]} ({r.top[0][2]:.1%})", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return Path(path)
