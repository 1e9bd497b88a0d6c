"""Cross-framework parity: copy seeded weights source -> target, run the same batch, compare.

Every ordered pair of backends is compared on the stem, each stage and the logits, so a failure
says where along the depth the frameworks first part ways (what PaDiff does for torch/paddle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from resnet_spec import FEATURE_NAMES, ModelSpec, get_spec
from resnet_spec.errors import ResNetError
from resnet_spec.random_weights import random_weights
from resnet_spec.spec import AMP_DTYPES
from resnet_spec.tolerances import tolerance
from resnet_tools.core.backends import PATHS, Arrays, Backend
from resnet_tools.core.diffs import TensorDiff, tensor_diff, within

#: Comparison points from input to output.
DEPTH = (*FEATURE_NAMES, "logits")
DEFAULT_MODELS = ("resnet18", "resnet50", "resnet50v2")


@dataclass
class ParityRecord:
    """One (model, source -> target) comparison; JSON-ready through :meth:`as_dict`."""

    model: str
    source: str
    target: str
    device: str
    dtype: str
    mode: str
    input_shape: list[int]
    tolerance: float
    max_abs_diff: float
    max_rel_diff: float
    cosine: float
    top1_agree: float | None
    first_divergent_stage: str | None
    passed: bool
    stages: dict[str, TensorDiff] = field(default_factory=dict)
    source_path: str = "eager"  # execution path each side ran (``fast_forward``'s name, or eager)
    target_path: str = "eager"
    #: mixed precision: "cross" (target's autocast vs source's) or "own float32" (a backend's autocast
    #: against its own float32 forward; source == target)
    against: str = "cross"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pair(self) -> str:
        """``torch -> keras``, or ``torch float32 -> bfloat16`` for a backend against its own float32."""
        if self.against == "cross":
            return f"{self.source} -> {self.target}"
        return f"{self.source} float32 -> {self.dtype}"


def compare(
    ref: dict[str, np.ndarray], out: dict[str, np.ndarray], tol: float, *, blocks: bool = False
) -> dict[str, Any]:
    """Diffs at every depth point present in both (``blocks``: every point ``ref`` holds, in its forward
    order: stem, each residual block, logits), the first one over ``tol``, and top-1 agreement."""
    points = [k for k in (ref if blocks else DEPTH) if k in ref and k in out]
    stages = {k: tensor_diff(ref[k], out[k]) for k in points}
    first_bad = next((k for k in points if not within(stages[k], tol)), None)
    logits = stages["logits"]
    top1 = None
    if ref["logits"].ndim == 2 and ref["logits"].shape[1] > 1:
        top1 = float(np.mean(ref["logits"].argmax(1) == out["logits"].argmax(1)))
    return {
        "max_abs_diff": logits.max_abs,
        "max_rel_diff": logits.max_rel,
        "cosine": logits.cosine,
        "top1_agree": top1,
        "first_divergent_stage": first_bad,
        "passed": first_bad is None,
        "stages": stages,
    }


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """A content hash of a weight dict (identical exports share one forward pass)."""
    h = hashlib.sha1()
    for k in sorted(weights):
        h.update(k.encode())
        h.update(np.ascontiguousarray(weights[k]).tobytes())
    return h.hexdigest()


def ordered_pairs(
    modules: dict[str, Backend],
    spec: Any,
    seeded: dict[str, np.ndarray],
    dtype: str,
    execute: Callable[[str, Any, dict[str, np.ndarray]], Any],
    on_step: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, str, Any, Any]]:
    """Build every backend with the ``seeded`` weights and export them; then, for each ordered pair,
    yield (source, target, source's result, target's result on the SOURCE's export).

    ``execute(backend, model, weights)`` runs once per distinct (backend, weights): exports are
    bitwise identical (tested), so each backend usually runs once per model.
    """
    models = {b: mod.create_model(spec, dtype=dtype) for b, mod in modules.items()}
    exported = {b: mod.export_weights(mod.import_weights(models[b], seeded)) for b, mod in modules.items()}
    cache: dict[tuple[str, str], Any] = {}

    def run(backend: str, weights: dict[str, np.ndarray]) -> Any:
        key = (backend, weights_digest(weights))
        if key not in cache:
            cache[key] = execute(backend, models[backend], weights)
            if on_step:
                on_step(backend)
        return cache[key]

    for source in modules:
        ref = run(source, exported[source])
        for target in modules:
            if target != source:
                yield source, target, ref, run(target, exported[source])


#: Real weights to run parity on instead of seeded random ones: the checkpoint's spec and its tensors.
Given = tuple[ModelSpec, Arrays]


def seeded_inputs(
    name: str, input_shape: tuple[int, int, int, int], seed: int, dtype: str, given: Given | None = None
) -> tuple[ModelSpec, np.random.Generator, np.ndarray, Arrays]:
    """What every parity mode starts from: the spec (input channels from the shape), the generator that
    drew the batch (train mode draws its labels next), the batch, and the seeded weights (or the
    ``given`` checkpoint's, cast to ``dtype``)."""
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal(input_shape).astype(dtype)
    if given is not None:
        spec, weights = given
        return spec, rng, x, {k: np.asarray(v).astype(dtype, copy=False) for k, v in weights.items()}
    spec = get_spec(name, in_channels=input_shape[1]) if input_shape[1] != 3 else get_spec(name)
    return spec, rng, x, random_weights(spec, seed=seed, dtype=dtype)


def run_model_parity(
    name: str,
    modules: dict[str, Backend],
    *,
    input_shape: tuple[int, int, int, int],
    device: str = "cpu",
    dtype: str = "float32",
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
    path: str = "fast",
    given: Given | None = None,
    blocks: bool = False,
) -> list[ParityRecord]:
    """All ordered pairs of ``modules`` for one model, in eval mode.

    ``path="fast"`` runs each backend's ``fast_forward`` (the path users deploy: channels_last,
    Paddle Inference, XLA); ``"eager"`` its plain eager forward. ``blocks`` compares every residual
    block's output (eager ``forward_blocks``), so the first divergent point is a block, not a stage.
    """
    if path not in PATHS:
        raise ResNetError(f"unknown path {path!r}; known: {', '.join(PATHS)}")
    if dtype in AMP_DTYPES:
        return run_model_amp_parity(
            name, modules, input_shape=input_shape, device=device, amp=dtype, seed=seed, on_step=on_step, given=given
        )
    tol = tolerance(dtype, device, "eval").rel
    spec, _rng, x, seeded = seeded_inputs(name, input_shape, seed, dtype, given)
    used: dict[str, str] = {}

    def execute(backend: str, model: Any, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mod = modules[backend]
        mod.import_weights(model, weights)
        if blocks:
            used[backend] = "eager, every block"
            return mod.forward_blocks(model, x, device=device)
        if path == "eager":
            used[backend] = "eager"
            return mod.forward_numpy(model, x, features=True, device=device)
        used[backend], run = mod.fast_forward(model, features=True, device=device)
        return run(x)

    return [
        ParityRecord(
            model=name,
            source=source,
            target=target,
            device=device,
            dtype=dtype,
            mode="eval",
            input_shape=list(input_shape),
            tolerance=tol,
            **compare(ref, out, tol, blocks=blocks),
            source_path=used[source],
            target_path=used[target],
        )
        for source, target, ref, out in ordered_pairs(modules, spec, seeded, dtype, execute, on_step)
    ]


def run_model_amp_parity(
    name: str,
    modules: dict[str, Backend],
    *,
    input_shape: tuple[int, int, int, int],
    device: str = "cpu",
    amp: str = "bfloat16",
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
    given: Given | None = None,
) -> list[ParityRecord]:
    """Mixed precision, eval mode: float32 weights and input, each framework's own autocast / mixed
    policy (``forward_numpy(amp=...)``). Every ordered pair is compared, and each backend against its
    own float32 forward; a backend whose "mixed" output equals its float32 output bit for bit did not
    run in ``amp`` at all, and fails."""
    tol = tolerance(amp, device, "eval").rel
    spec, _rng, x, seeded = seeded_inputs(name, input_shape, seed, "float32", given)  # float32 weights and input

    def execute(backend: str, model: Any, weights: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        mod = modules[backend]
        mod.import_weights(model, weights)
        return {
            "float32": mod.forward_numpy(model, x, features=True, device=device),
            amp: mod.forward_numpy(model, x, features=True, device=device, amp=amp),
        }

    def record(source: str, target: str, ref: Arrays, out: Arrays, against: str) -> ParityRecord:
        return ParityRecord(
            model=name,
            source=source,
            target=target,
            device=device,
            dtype=amp,
            mode="eval",
            input_shape=list(input_shape),
            tolerance=tol,
            **compare(ref, out, tol),
            source_path=f"eager, {'float32' if against != 'cross' else amp}",
            target_path=f"eager, {amp}",
            against=against,
        )

    records: list[ParityRecord] = []
    own: list[ParityRecord] = []
    for source, target, ref, out in ordered_pairs(modules, spec, seeded, "float32", execute, on_step):
        records.append(record(source, target, ref[amp], out[amp], "cross"))
        if source not in {r.source for r in own}:
            r = record(source, source, ref["float32"], ref[amp], "own float32")
            if r.max_abs_diff == 0:  # identical to float32: the framework ignored the request
                r.passed, r.first_divergent_stage = False, f"{amp} not applied"
            own.append(r)
    return own + records


#: What train-mode parity compares, in the order a training step produces it.
TRAIN_POINTS = ("train_logits", "loss", "input_grad", "grads", "weight_update", "running_mean", "running_var")


def _joint(ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> TensorDiff:
    """All tensors of a canonical dict as one vector, so "relative" means relative to the set's largest
    value: a conv bias feeding a train-mode BN has an analytically zero gradient, whose own relative
    error is pure rounding noise."""
    keys = sorted(ref)
    return tensor_diff(np.concatenate([ref[k].ravel() for k in keys]), np.concatenate([out[k].ravel() for k in keys]))


def _train_step(
    mod: Backend,
    model: Any,
    weights: dict[str, np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    lr: float,
    device: str,
    counts: dict[str, int],
) -> dict[str, Any]:
    """Import ``weights``, take one step; return what TRAIN_POINTS compares (running_var in the biased
    convention: torch's unbiased estimator is translated here, the one place that handles it)."""
    from resnet_spec.frameworks import conventions
    from resnet_spec.numerics import torch_running_var_as_biased

    mod.import_weights(model, weights)
    step = mod.train_step_numpy(model, x, labels, lr=lr, device=device)
    after = mod.export_weights(model)
    trainable = list(step["grads"])
    var_keys = [k for k in after if k.endswith("running_var")]
    running_var = {k: after[k] for k in var_keys}
    if conventions(mod.FRAMEWORK).running_var == "unbiased":  # torch: compared in paddle's and keras' biased form
        m = model.spec.bn_momentum
        running_var = {
            k: torch_running_var_as_biased(after[k], weights[k], m, counts[k.rsplit(".", 1)[0]]) for k in var_keys
        }
    return {
        "train_logits": step["logits"],
        "loss": step["loss"],
        "input_grad": step["input_grad"],
        "grads": step["grads"],
        "weight_update": {k: after[k] - weights[k] for k in trainable},
        "running_mean": {k: after[k] for k in after if k.endswith("running_mean")},
        "running_var": running_var,
    }


def run_model_train_parity(
    name: str,
    modules: dict[str, Backend],
    *,
    input_shape: tuple[int, int, int, int],
    device: str = "cpu",
    dtype: str = "float32",
    seed: int = 0,
    lr: float = 0.125,  # exact in float32: Keras keeps the learning rate as a float32 variable
    on_step: Callable[[str], None] | None = None,
    given: Given | None = None,
) -> list[ParityRecord]:
    """One train-mode forward and one SGD step from the same weights, compared for every ordered pair."""
    from resnet_spec.shapes import bn_counts

    tol = tolerance(dtype, device, "train").rel
    spec, rng, x, seeded = seeded_inputs(name, input_shape, seed, dtype, given)
    labels = rng.integers(0, spec.num_classes, input_shape[0])
    counts = bn_counts(spec, input_shape[0], input_shape[2], input_shape[3])

    def execute(backend: str, model: Any, weights: dict[str, np.ndarray]) -> dict[str, Any]:
        return _train_step(modules[backend], model, weights, x, labels, lr, device, counts)

    records = []
    for source, target, ref, out in ordered_pairs(modules, spec, seeded, dtype, execute, on_step):
        stages = {
            k: (_joint(ref[k], out[k]) if isinstance(ref[k], dict) else tensor_diff(ref[k], out[k]))
            for k in TRAIN_POINTS
        }
        first_bad = next((k for k in TRAIN_POINTS if not within(stages[k], tol)), None)
        logits = stages["train_logits"]
        records.append(
            ParityRecord(
                model=name,
                source=source,
                target=target,
                device=device,
                dtype=dtype,
                mode="train",
                input_shape=list(input_shape),
                tolerance=tol,
                max_abs_diff=logits.max_abs,
                max_rel_diff=logits.max_rel,
                cosine=logits.cosine,
                top1_agree=float(np.mean(ref["train_logits"].argmax(1) == out["train_logits"].argmax(1))),
                first_divergent_stage=first_bad,
                passed=first_bad is None,
                stages=stages,
            )
        )
    return records
