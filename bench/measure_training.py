"""Measure how far many-step training drifts apart between frameworks in float64 (the tolerance table's
float64/cpu/steps entry): lockstep runs of every installed backend and resumes across every ordered pair,
over seeds and both optimizers, on resnet_tools.train.lockstep.small_spec().

    python bench/measure_training.py        # merges the entry into docs/generated/tolerances-cpu.json
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from resnet_spec.optim import OptimizerConfig  # noqa: E402
from resnet_spec.random_weights import random_weights  # noqa: E402
from resnet_tools.core.backends import installed_backends, load_backends  # noqa: E402
from resnet_tools.train.lockstep import max_rel, run_lockstep, small_spec, trainable_weights  # noqa: E402

STEPS, SWITCH, SEEDS = 20, 6, (0, 1, 2)
BATCH = (4, 3, 9, 11)
CONFIGS = {  # hyperparameters exact in float32: paddle's kernels take them as float32 attributes
    "sgd": OptimizerConfig("sgd", lr=2**-4, momentum=0.875, weight_decay=2**-11, schedule="step", step_size=7,
                           gamma=0.5),
    "adamw": OptimizerConfig("adamw", lr=2**-9, betas=(0.875, 1 - 2**-10), eps=2**-20, weight_decay=2**-7,
                             schedule="step", step_size=7, gamma=0.5),
}  # fmt: skip


def _batches(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(100 + seed)
    three = [(rng.standard_normal(BATCH), rng.integers(0, 10, BATCH[0])) for _ in range(3)]
    return [three[i % 3] for i in range(STEPS)]


def main() -> int:
    mods = load_backends(installed_backends())
    spec = small_spec()
    runs, started = [], time.perf_counter()
    for kind, config in CONFIGS.items():
        for seed in SEEDS:
            weights, batches = random_weights(spec, seed=seed, dtype="float64"), _batches(seed)
            run = run_lockstep(mods, spec, config, weights, batches)
            first = next(iter(mods))
            losses = max(abs(r.loss[b] - r.loss[first]) / abs(r.loss[first]) for r in run.records for b in mods)
            state = max(max_rel(t.export_state(), run.trainers[first].export_state()) for t in run.trainers.values())
            ref = trainable_weights(mods[first], run.trainers[first].model)
            resumed = {}
            for source in mods:
                head = run_lockstep({source: mods[source]}, spec, config, weights, batches[:SWITCH])
                trainer = head.trainers[source]
                carried, opt_state = mods[source].export_weights(trainer.model), trainer.export_state()
                for target in mods:
                    if target == source:
                        continue
                    t = mods[target].Trainer(mods[target].import_weights(
                        mods[target].create_model(spec, dtype="float64"), carried), config)  # fmt: skip
                    t.import_state(opt_state, steps=SWITCH)
                    for i, (x, y) in enumerate(batches[SWITCH:]):
                        t.step(x, y, config.lr_at(SWITCH + i))
                    resumed[f"{source} -> {target}"] = max_rel(trainable_weights(mods[target], t.model), ref)
            figure = {"loss": losses, "weights": max(r.weight_rel for r in run.records), "optimizer_state": state,
                      **{f"resume {k}": v for k, v in resumed.items()}}  # fmt: skip
            runs.append({"optimizer": kind, "seed": seed, "steps": STEPS, "points": figure})
            print(kind, seed, {k: f"{v:.1e}" for k, v in figure.items()}, flush=True)
    values = [v for r in runs for v in r["points"].values()]
    path = ROOT / "docs" / "generated" / "tolerances-cpu.json"
    data = json.loads(path.read_text())
    data["entries"]["float64/cpu/steps"] = {
        "max": max(values),
        "median": statistics.median(values),
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
        "note": f"bench/measure_training.py: {spec.name} (resnet_tools.train.lockstep.small_spec), {STEPS} steps, "
        f"batches {list(BATCH)}, backends {', '.join(mods)}; resume after {SWITCH} steps in every ordered pair",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    print(f"wrote {path}: max {max(values):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
