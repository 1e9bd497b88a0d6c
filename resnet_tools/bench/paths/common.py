"""What every framework's bench paths share: the runner types, the train-mode labels and inputs, the Trainer step
(the same in every framework) and the memory probe of paths that report their own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

Runner = Callable[[], object]
Build = Callable[[], Runner]
#: (execution path, implementation "ours"/"official", a builder of the timed callable, or of such builders)
PathEntry = tuple[str, str, Callable[..., Any]]


def train_labels(name: str, batch: int) -> np.ndarray:
    """Train-mode targets within the model's classes (the spec's, not a restated 1000)."""
    from resnet_spec import get_spec

    return np.random.default_rng(0).integers(0, get_spec(name).num_classes, batch)


def trainer_step(backend: str, name: str, x: np.ndarray) -> Runner:
    """A step of ``resnet train``: the backend's ``Trainer`` (SGD with momentum and weight decay, the gradient
    norm recorded, NCHW numpy in), the same in every framework."""
    from resnet_spec.optim import OptimizerConfig

    mod = importlib.import_module(f"resnet_{backend}")
    trainer = mod.Trainer(mod.create_model(name), OptimizerConfig("sgd", lr=0.01, momentum=0.9, weight_decay=5e-4))
    labels = train_labels(name, x.shape[0])
    return lambda: trainer.step(x, labels, 0.01)


def nchw(batch: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype("float32")


class MemoryProbe(Protocol):
    """A GPU memory counter: reset before a path is built, read after it ran."""

    def begin(self) -> None: ...
    def reset(self) -> None: ...
    def peak_mb(self) -> float: ...


class NoMemory:
    """A framework without a resettable peak counter: the row's runner reports its own (or 0)."""

    def begin(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def peak_mb(self) -> float:
        return 0.0
