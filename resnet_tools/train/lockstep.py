"""Several frameworks trained in lockstep: one initialisation imported into each, the same batches in
the same order, each framework's own optimizer (resnet_spec/optim.py), and per step the loss, the
learning rate, the gradient norm and how far the weights have drifted apart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.optim import OptimizerConfig
from resnet_tools.core.backends import Backend, Trainer


@dataclass
class StepRecord:
    step: int
    lr: float
    loss: dict[str, float]
    grad_norm: dict[str, float]
    weight_rel: float  # worst per-tensor max |w_b - w_first| / max |w_first| over backends and trainable tensors
    seconds: dict[str, float] = field(default_factory=dict)  # each backend's step (forward, backward, update)
    compare_seconds: float = 0.0  # the lockstep's own cost: exporting and comparing the weights

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "lr": self.lr, "loss": self.loss, "grad_norm": self.grad_norm,
                "weight_rel": self.weight_rel, "seconds": self.seconds,
                "compare_seconds": self.compare_seconds}  # fmt: skip


@dataclass
class Lockstep:
    records: list[StepRecord] = field(default_factory=list)
    trainers: dict[str, Trainer] = field(default_factory=dict)


def trainable_weights(mod: Backend, model: Any) -> dict[str, np.ndarray]:
    """Canonical weights without the BN running statistics (their update conventions differ by design)."""
    return {k: v for k, v in mod.export_weights(model).items() if "running" not in k}


def max_rel(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """Worst per-tensor ``max |a - b| / max |b|`` over the keys of ``b`` (all must be in ``a``)."""
    missing = set(b) - set(a)
    if missing:
        raise KeyError(f"missing: {sorted(missing)[:5]}")
    return max((float(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1e-300)) for k in b), default=0.0)


def run_lockstep(
    modules: Mapping[str, Backend],
    spec: ModelSpec,
    config: OptimizerConfig,
    weights: Mapping[str, np.ndarray],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    dtype: str = "float64",
    device: str = "cpu",
    start: int = 0,
    optimizer_state: Mapping[str, np.ndarray] | None = None,
    on_step: Callable[[StepRecord, Lockstep], None] | None = None,
) -> Lockstep:
    """Train one model per backend from ``weights`` (and ``optimizer_state`` after ``start`` steps, when
    resuming) on ``batches``; the first backend is the reference."""
    out = Lockstep()
    for b, mod in modules.items():
        model = mod.import_weights(mod.create_model(spec, dtype=dtype), weights)
        out.trainers[b] = mod.Trainer(model, config, device=device)
        if optimizer_state is not None:
            out.trainers[b].import_state(optimizer_state, steps=start)
    first = next(iter(modules))
    for i, (x, labels) in enumerate(batches):
        lr = config.lr_at(start + i)
        steps, seconds = {}, {}
        for b, t in out.trainers.items():
            began = time.perf_counter()
            steps[b] = t.step(x.astype(dtype), labels, lr)
            seconds[b] = time.perf_counter() - began
        began = time.perf_counter()
        drift = 0.0
        if len(modules) > 1:
            ref = trainable_weights(modules[first], out.trainers[first].model)
            drift = max(
                max_rel(trainable_weights(modules[b], t.model), ref) for b, t in out.trainers.items() if b != first
            )
        record = StepRecord(start + i, lr, {b: s["loss"] for b, s in steps.items()},
                            {b: s["grad_norm"] for b, s in steps.items()}, drift, seconds,
                            time.perf_counter() - began)  # fmt: skip
        out.records.append(record)
        if on_step:
            on_step(record, out)
    return out


def small_spec(num_classes: int = 10) -> ModelSpec:
    """A small ResNet of the zoo's v1.5 family (basic blocks 1-1-1-1, widths 8-16-16-32, CIFAR stem): the
    code paths of resnet18 at a size that trains for many steps in three frameworks in seconds (tests,
    tolerance measurements). Not a zoo model: built from the built-in YAML's variant and defaults."""
    import yaml

    from resnet_spec import apply_overrides
    from resnet_spec.spec import SPEC_PATH, resolve_model

    doc = yaml.safe_load(SPEC_PATH.read_text())
    entry = {"variant": "v1.5", "block": "basic", "depths": [1, 1, 1, 1], "widths": [8, 16, 16, 32],
             "params": {"trainable": 0, "bn_stats": 0}}  # fmt: skip
    return apply_overrides(resolve_model("small_resnet", entry, doc), stem="cifar", num_classes=num_classes)
