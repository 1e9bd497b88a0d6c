"""Training checkpoints: canonical weights, the canonical optimizer state (``optimizer/<param>@<slot>``)
and the run (optimizer settings, step, data, seed, backend) as JSON metadata, in one safetensors file.
``resnet convert`` and ``inspect`` read it as a weights file; ``resnet train --resume`` takes one written
by any backend. Written atomically: an interrupted save leaves the previous checkpoint as it was."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.optim import OptimizerConfig
from resnet_tools.checkpoints.convert import resolve_spec
from resnet_tools.checkpoints.formats import (
    FORMATS,
    OPTIMIZER_PREFIX,
    TRAINING_KEY,
    Checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from resnet_tools.core.files import commit, temp_path


@dataclass
class TrainingState:
    spec: ModelSpec
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    step: int  # steps taken; the next one is step + 1 (0-based index ``step``)
    config: OptimizerConfig
    run: dict[str, Any]  # backend, dtype, data, seed, batch


#: The largest step a training record may hold (a run of 10^9 steps is none this tool makes).
MAX_STEP = 10**9 - 1


def save_training_checkpoint(path: Path | str, state: TrainingState) -> Path:
    path = Path(path)
    info = {"step": state.step, "optimizer": dataclasses.asdict(state.config), **state.run}
    tensors = {**state.weights, **{OPTIMIZER_PREFIX + k: np.asarray(v) for k, v in state.optimizer.items()}}
    ckpt = Checkpoint(
        tensors, {TRAINING_KEY: json.dumps(info, sort_keys=True), "source_framework": state.run["backend"]}
    )
    with temp_path(path) as tmp:
        write_checkpoint(ckpt, state.spec, tmp, FORMATS["safetensors"])
        commit(tmp, path)
    return path


def training_step(path: Path | str) -> int:
    """The step a ``resnet train --save`` checkpoint was written at, from its header alone (no tensor read)."""
    return training_mark(path)[0]


def training_mark(path: Path | str) -> tuple[int, str]:
    """(the step, the run id) a ``resnet train --save`` checkpoint was written at, from its header alone; a step
    outside 0..10^9 is a damaged record, one line."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            info = json.loads((f.metadata() or {})[TRAINING_KEY])
        step, run_id = int(info["step"]), str(info.get("run_id", ""))
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: not a training checkpoint of resnet train --save ({exc})") from None
    if not 0 <= step <= MAX_STEP:
        raise CheckpointError(f"{path}: its training record says step {step}, not a step a run reaches")
    return step, run_id


def load_training_checkpoint(path: Path | str) -> TrainingState:
    """A checkpoint ``resnet train --save`` wrote; anything else is one line saying what it is."""
    path = Path(path)
    if not path.name.endswith(".safetensors"):
        raise CheckpointError(f"{path}: a training checkpoint is a .safetensors file written by resnet train --save")
    ckpt = read_checkpoint(path, FORMATS["safetensors"])
    text = ckpt.metadata.get(TRAINING_KEY)
    if not text:
        raise CheckpointError(
            f"{path} holds weights but no training state (optimizer, step): --resume continues a run that --save wrote"
        )
    try:
        info = json.loads(text)
        options = info["optimizer"]
        config = OptimizerConfig(**{**options, "betas": tuple(options["betas"])})
        step = int(info["step"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: its training metadata is damaged ({type(exc).__name__}: {exc})") from None
    if not 0 <= step <= MAX_STEP:
        raise CheckpointError(f"{path}: its training record says step {step}, not a step a run reaches")
    spec = resolve_spec(ckpt, ckpt.metadata.get("model"))
    run = {k: v for k, v in info.items() if k not in ("step", "optimizer")}
    return TrainingState(spec, ckpt.weights, ckpt.optimizer, step, config, run)
