"""``train`` as a library call: one model trained in one framework, in several in lockstep, or on N replicas
of a framework's own engine; resumable from a training checkpoint any backend wrote. ``resnet train`` is
a thin layer over :func:`prepare` and :func:`run`, and the tests call them too."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.optim import OptimizerConfig
from resnet_tools.core.errors import UsageError
from resnet_tools.train.checkpoint import TrainingState, load_training_checkpoint, save_training_checkpoint
from resnet_tools.train.checks import RUN_DEFAULTS, check_request, check_world, continue_run
from resnet_tools.train.request import TrainRequest

EVAL_CHUNK = 256


@dataclass
class Plan:
    """A checked request with everything resolved: the run :func:`run` carries out."""

    request: TrainRequest
    data: Any  # train.data.Dataset
    spec: ModelSpec
    weights: dict[str, np.ndarray]
    start: int  # steps already taken (a resumed run)
    optimizer_state: dict[str, np.ndarray] | None
    config: OptimizerConfig
    steps: int
    notes: list[str] = field(default_factory=list)  # flags that override the resumed run's record

    @property
    def summary(self) -> str:
        r, d = self.request, self.data
        if r.parallel:
            from resnet_tools.train.parallel import engine_of

            engine = engine_of(r.backends[0])
            bn = "synchronised BN statistics" if r.sync_bn else engine.batch_norm
            replicas = r.nproc * r.nnodes
            nodes = f" ({r.nproc} on each of {r.nnodes} nodes; this is node {r.node_rank})" if r.nnodes > 1 else ""
            return (
                f"train {self.spec.name} on {d.name} with {r.backends[0]} on {replicas} replicas{nodes} "
                f"({engine.name}): global batch {r.batch} = {replicas} x {self.batch // replicas}, steps "
                f"{self.start + 1}-{self.start + self.steps}, {bn}, {r.dtype}"
            )
        c = self.config
        return (
            f"train {self.spec.name} on {d.name} ({len(d.y_train)} train / {len(d.y_test)} test, {len(d.classes)} "
            f"classes) with {', '.join(r.backends)}: {c.kind}, lr {c.lr:g} ({c.schedule}), steps "
            f"{self.start + 1}-{self.start + self.steps}, batch {r.batch}, {r.dtype}, seed {r.seed}"
        )

    @property
    def batch(self) -> int:
        assert self.request.batch is not None
        return self.request.batch


@dataclass
class TrainResult:
    plan: Plan
    records: list[Any]  # StepRecord per step (lockstep), or rank 0's dicts (--nproc)
    accuracy: dict[str, tuple[float, np.ndarray]]  # backend -> (test top-1, predicted classes)
    replicas: int = 1
    restarts: int = 0  # --nproc: how often the group was restarted after a failed worker

    def as_json(self) -> dict[str, Any]:
        p, r = self.plan, self.plan.request
        top1 = {b: a[0] for b, a in self.accuracy.items()}
        if r.parallel:
            return {"model": p.spec.name, "data": p.data.name, "backend": r.backends[0], "nproc": r.nproc,
                    "dtype": r.dtype, "records": self.records, "test_top1": top1}  # fmt: skip
        return {"model": p.spec.name, "data": p.data.name, "backends": r.backends, "optimizer": p.config.kind,
                "dtype": r.dtype, "seed": r.seed, "records": [s.as_dict() for s in self.records],
                "test_top1": top1}  # fmt: skip


def prepare(request: TrainRequest) -> Plan:
    """Check ``request`` (one line per problem, before anything runs) and resolve it: the resumed run's
    record, the data, the spec, the initial weights, the optimizer settings and the number of steps."""
    from resnet_tools.train import data as datasets

    r = dataclasses.replace(request, backends=list(request.backends))
    resumed = load_training_checkpoint(r.resume) if r.resume else None
    notes = continue_run(r, resumed)
    check_request(r)
    check_world(r, resumed)
    data = datasets.load_dataset(r.data or RUN_DEFAULTS["data"], size=r.size or RUN_DEFAULTS["size"])
    spec, weights, start, optimizer_state = _start(r, data, resumed)
    assert r.batch is not None
    steps = r.steps if r.steps is not None else (r.epochs or 1) * (len(data.y_train) // r.batch)
    if resumed is not None:
        config = resumed.config
    else:
        config = OptimizerConfig(
            r.optimizer or "sgd", lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay, schedule=r.schedule,
            total_steps=steps, step_size=r.step_size or max(1, steps // 3), gamma=r.gamma, eps=r.eps,
        )  # fmt: skip
    return Plan(r, data, spec, weights, start, optimizer_state, config, steps, notes)


def run(
    plan: Plan, on_step: Callable[[Any], None] | None = None, say: Callable[[str], None] = lambda _: None
) -> TrainResult:
    """Train as planned; ``on_step`` sees each StepRecord (lockstep runs), ``say`` a restart (--nproc). Writes
    ``--save`` (and every ``--save-every`` steps) atomically; the test accuracy of every trained model is in the
    result."""
    from resnet_tools.core.files import claimed

    owner = plan.request.save if plan.request.node_rank == 0 else None  # rank 0 writes --save
    with claimed(owner, "training run"):  # a second run with the same --save is refused, not silently replaced
        if plan.request.nproc > 1 or plan.request.nnodes > 1:
            return _run_parallel(plan, say)
        return _run_here(plan, on_step)


def _run_here(plan: Plan, on_step: Callable[[Any], None] | None) -> TrainResult:
    """One process: a lockstep run of every backend asked for."""
    from resnet_tools.core.backends import load_backends, use_cpu_cores
    from resnet_tools.train import data as datasets
    from resnet_tools.train.lockstep import Lockstep, StepRecord, run_lockstep

    r, data = plan.request, plan.data
    modules = load_backends(r.backends)
    use_cpu_cores(modules)
    order = datasets.batches(len(data.y_train), plan.batch, r.seed or 0, start=plan.start)
    chosen = [next(order) for _ in range(plan.steps)]
    run_id = uuid.uuid4().hex  # in every checkpoint this run writes, as a data-parallel run's

    def save(lockstep: Lockstep, step: int) -> None:
        assert r.save is not None
        first = r.backends[0]
        trainer = lockstep.trainers[first]
        state = TrainingState(plan.spec, modules[first].export_weights(trainer.model), trainer.export_state(), step,
                              plan.config, {"run_id": run_id, "backend": first, "dtype": r.dtype, "data": data.name,
                                            "seed": r.seed, "batch": r.batch, "size": r.size})  # fmt: skip
        save_training_checkpoint(r.save, state)

    def each(record: StepRecord, lockstep: Lockstep) -> None:
        if on_step:
            on_step(record)
        if r.save_every and r.save and (record.step + 1) % r.save_every == 0:
            save(lockstep, record.step + 1)

    batches = ((data.x_train[i], data.y_train[i]) for i in chosen)
    done = run_lockstep(modules, plan.spec, plan.config, plan.weights, batches, dtype=r.dtype or "float32",
                        start=plan.start, optimizer_state=plan.optimizer_state, on_step=each)  # fmt: skip
    if r.save:
        save(done, plan.start + plan.steps)
    accuracy = {b: accuracy_of(modules[b], t.model, data, r.dtype or "float32") for b, t in done.trainers.items()}
    return TrainResult(plan, done.records, accuracy)


def _run_parallel(plan: Plan, say: Callable[[str], None]) -> TrainResult:
    """``--nproc N``: N replicas on the framework's own engine; rank 0 writes --save and the records."""
    import tempfile
    from pathlib import Path

    from resnet_spec.errors import ResNetError
    from resnet_tools.core.backends import load_backends
    from resnet_tools.train.parallel import Nodes, launch, make_job

    r = plan.request
    backend = r.backends[0]
    with tempfile.TemporaryDirectory(prefix="resnet-train-") as tmp_name:
        tmp = Path(tmp_name)
        first = tmp / "start.safetensors"
        save_training_checkpoint(first, TrainingState(plan.spec, dict(plan.weights), dict(plan.optimizer_state or {}),
                                                      plan.start, plan.config, {"backend": backend,
                                                                                "dtype": r.dtype}))  # fmt: skip
        out = Path(r.save) if r.save else tmp / "end.safetensors"
        job = make_job(backend, first, out, plan.config, data=r.data or "digits", size=r.size or 32, batch=plan.batch,
                       steps=plan.steps, step=plan.start, seed=r.seed or 0, dtype=r.dtype or "float32",
                       sync_bn=r.sync_bn, timeout=r.timeout, save_every=r.save_every or 0)  # fmt: skip
        nodes = Nodes(r.nnodes, r.node_rank, r.master)
        report = launch(job, r.nproc, port=r.port, timeout_s=r.timeout * max(1, plan.steps),
                        max_restarts=r.max_restarts, nodes=nodes, say=say)  # fmt: skip
        if r.node_rank > 0:  # node 0's rank 0 writes the checkpoint and the records
            return TrainResult(plan, [], {}, replicas=report["replicas"], restarts=report.get("restarts", 0))
        if report["replicas"] != r.nproc * r.nnodes:  # measured by the engine: Keras counts the devices
            raise ResNetError(f"the engine ran {report['replicas']} replicas, not {r.nproc * r.nnodes}")
        final = load_training_checkpoint(out)
        mod = load_backends([backend])[backend]
        model = mod.import_weights(mod.create_model(final.spec, dtype=r.dtype or "float32"), final.weights)
        accuracy = {backend: accuracy_of(mod, model, plan.data, r.dtype or "float32")}
    return TrainResult(plan, report["records"], accuracy, replicas=report["replicas"], restarts=report["restarts"])


def accuracy_of(mod: Any, model: Any, data: Any, dtype: str) -> tuple[float, np.ndarray]:
    """Test top-1 (eval mode: running statistics) and the predicted classes."""
    preds = []
    for i in range(0, len(data.y_test), EVAL_CHUNK):
        logits = mod.forward_numpy(model, data.x_test[i : i + EVAL_CHUNK].astype(dtype))["logits"]
        preds.append(logits.argmax(1))
    pred = np.concatenate(preds)
    return float((pred == data.y_test).mean()), pred


def _start(r: TrainRequest, data: Any, resumed: TrainingState | None) -> tuple[ModelSpec, Any, int, Any]:
    """The spec, the initial weights, the step to start from and the optimizer state (None: a new run)."""
    from resnet_spec import get_spec
    from resnet_spec.random_weights import initial_weights

    if resumed is not None:
        spec = resumed.spec
        if r.model and r.model != spec.name:
            raise UsageError(f"--resume {r.resume} is a {spec.name} run; --model says {r.model}")
        if r.optimizer and r.optimizer != resumed.config.kind:
            raise UsageError(f"--resume {r.resume} holds {resumed.config.kind} state; --optimizer says {r.optimizer}")
        if spec.num_classes != len(data.classes) or spec.in_channels != data.in_channels:
            raise UsageError(
                f"--resume {r.resume} has {spec.num_classes} classes and {spec.in_channels} input channels; "
                f"{data.name} has {len(data.classes)} and {data.in_channels}"
            )
        return spec, resumed.weights, resumed.step, resumed.optimizer
    if not r.model:
        raise UsageError("--model is required (or --resume a checkpoint)")
    spec = get_spec(r.model, stem=r.stem, in_channels=data.in_channels, num_classes=len(data.classes))
    # one seeded initialisation (torchvision's scheme, drawn with numpy), imported into every backend
    return spec, initial_weights(spec, seed=r.seed or 0, dtype=r.dtype or "float32"), 0, None
