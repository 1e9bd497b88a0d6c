"""``resnet train``: one model trained in one framework, or in several in lockstep, with each framework's
own optimizer; resumable from a checkpoint any backend wrote."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from resnet_spec.optim import OPTIMIZERS, SCHEDULES
from resnet_tools.cli.args import Subcommands
from resnet_tools.core.backends import BACKENDS
from resnet_tools.core.errors import UsageError

EVAL_CHUNK = 256


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from resnet_spec.optim import OptimizerConfig
    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import load_backends, parse_backends, use_cpu_cores
    from resnet_tools.core.files import atomic_write, check_outputs
    from resnet_tools.train import data as datasets
    from resnet_tools.train.checkpoint import TrainingState, load_training_checkpoint, save_training_checkpoint
    from resnet_tools.train.lockstep import StepRecord, run_lockstep

    check_outputs([args.save, args.json, args.plot], force=args.force)
    resumed = load_training_checkpoint(args.resume) if args.resume else None
    overridden = continue_run(args, resumed)  # a resumed run keeps its batch, size, dtype, seed, data, length
    backends = parse_backends(args.backends or args.backend or "torch")
    if args.steps is not None and args.epochs is not None:
        raise UsageError("give --steps or --epochs, not both")
    if args.nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc > 1:
        from resnet_tools.train.parallel import check_engine, check_port

        if len(backends) != 1:
            raise UsageError("--nproc trains one framework: give --backend, not --backends")
        check_engine(backends[0])
        if args.nproc > args.batch or args.batch % args.nproc:
            raise UsageError(f"--batch {args.batch} does not split into {args.nproc} equal shards (--nproc)")
        if args.port is not None:
            check_port(args.port)
    if args.sync_bn and args.nproc > 1 and backends[0] != "keras":  # Keras on JAX: always global BN statistics
        # torch's SyncBatchNorm refuses CPU modules, paddle's has no CPU kernel, and --nproc runs on the CPU
        raise UsageError(
            f"--sync-bn needs GPUs ({backends[0]}'s SyncBatchNorm); on the CPU each replica keeps its BN statistics"
        )
    for flag, value in (("--batch", args.batch), ("--size", args.size), ("--steps", args.steps),
                        ("--epochs", args.epochs)):  # fmt: skip
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    check_hyperparameters(args)
    data = datasets.load_dataset(args.data, size=args.size)
    spec, weights, start, optimizer_state = _start(args, data, resumed)
    if overridden:
        console.print(f"[yellow]note:[/] resuming with {', '.join(overridden)}", highlight=False)
    per_epoch = len(data.y_train) // args.batch
    steps = args.steps if args.steps is not None else (args.epochs or 1) * per_epoch
    if resumed is not None:
        config = resumed.config
    else:
        config = OptimizerConfig(
            args.optimizer or "sgd", lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
            schedule=args.schedule, total_steps=steps, step_size=args.step_size or max(1, steps // 3), gamma=args.gamma,
            eps=args.eps,
        )  # fmt: skip
    if args.nproc > 1:
        return _train_parallel(args, backends, data, spec, weights, start, optimizer_state, config, steps)
    modules = load_backends(backends)
    use_cpu_cores(modules)
    order = datasets.batches(len(data.y_train), args.batch, args.seed, start=start)
    chosen = [next(order) for _ in range(steps)]
    console.print(
        f"train {spec.name} on {data.name} ({len(data.y_train)} train / {len(data.y_test)} test, {len(data.classes)} "
        f"classes) with {', '.join(backends)}: {config.kind}, lr {config.lr:g} ({config.schedule}), steps "
        f"{start + 1}-{start + steps}, batch {args.batch}, {args.dtype}, seed {args.seed}"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    save_every = args.save_every

    def save(run: Any, step: int) -> None:
        first = backends[0]
        mod, trainer = modules[first], run.trainers[first]
        state = TrainingState(spec, mod.export_weights(trainer.model), trainer.export_state(), step, config,
                              {"backend": first, "dtype": args.dtype, "data": data.name, "seed": args.seed,
                               "batch": args.batch, "size": args.size})  # fmt: skip
        save_training_checkpoint(args.save, state)

    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        task = progress.add_task("training", total=steps)

        def on_step(r: StepRecord, run: Any) -> None:
            loss = ", ".join(f"{b} {v:.4f}" for b, v in r.loss.items())
            drift = f", weights apart {r.weight_rel:.1e}" if len(backends) > 1 else ""
            progress.update(task, advance=1, description=f"step {r.step + 1}: loss {loss}{drift}")
            if save_every and args.save and (r.step + 1) % save_every == 0:
                save(run, r.step + 1)

        batches = ((data.x_train[i], data.y_train[i]) for i in chosen)
        run = run_lockstep(
            modules, spec, config, weights, batches, dtype=args.dtype,
            start=start, optimizer_state=optimizer_state, on_step=on_step,
        )  # fmt: skip
    accuracy = {b: _accuracy(modules[b], t.model, data, args.dtype) for b, t in run.trainers.items()}
    _report(console, run.records, accuracy, data)
    if args.save:
        save(run, start + steps)
        console.print(f"wrote {args.save} (step {start + steps}, weights + {config.kind} state from {backends[0]})")
    if args.json:
        doc = {"model": spec.name, "data": data.name, "backends": backends, "optimizer": config.kind,
               "dtype": args.dtype, "seed": args.seed, "records": [r.as_dict() for r in run.records],
               "test_top1": {b: a[0] for b, a in accuracy.items()}}  # fmt: skip
        atomic_write(args.json, lambda fh: fh.write(json.dumps(doc, indent=1).encode()))
        console.print(f"wrote {args.json}")
    if args.plot:
        _plot(run.records, backends, args.plot)
        console.print(f"wrote {args.plot}")
    return 0


def _train_parallel(
    args: argparse.Namespace, backends: list[str], data: Any, spec: Any, weights: Any, start: int,
    optimizer_state: Any, config: Any, steps: int,
) -> int:  # fmt: skip
    """``--nproc N``: N replicas on the framework's own engine; rank 0 writes --save and the records."""
    import tempfile
    from pathlib import Path

    from resnet_spec.errors import ResNetError
    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import load_backends
    from resnet_tools.core.files import atomic_write
    from resnet_tools.train.checkpoint import TrainingState, load_training_checkpoint, save_training_checkpoint
    from resnet_tools.train.parallel import BATCH_NORM, ENGINES, launch, make_job

    backend = backends[0]
    bn = "synchronised BN statistics" if args.sync_bn else BATCH_NORM[backend]
    console.print(
        f"train {spec.name} on {data.name} with {backend} on {args.nproc} replicas ({ENGINES[backend]}): "
        f"global batch {args.batch} = {args.nproc} x {args.batch // args.nproc}, steps {start + 1}-{start + steps}, "
        f"{bn}, {args.dtype}"
    )
    with tempfile.TemporaryDirectory(prefix="resnet-train-") as tmp_name:
        tmp = Path(tmp_name)
        first = tmp / "start.safetensors"
        save_training_checkpoint(first, TrainingState(spec, dict(weights), dict(optimizer_state or {}), start, config,
                                                      {"backend": backend, "dtype": args.dtype}))  # fmt: skip
        out = Path(args.save) if args.save else tmp / "end.safetensors"
        job = make_job(backend, first, out, config, data=args.data, size=args.size, batch=args.batch,
                       steps=steps, step=start, seed=args.seed, dtype=args.dtype, sync_bn=args.sync_bn,
                       timeout=args.timeout)  # fmt: skip
        with console.status(f"{args.nproc} replicas training ..."):
            report = launch(job, args.nproc, port=args.port, timeout_s=args.timeout * max(1, steps))
        if report["replicas"] != args.nproc:  # measured by the engine: Keras counts the devices a batch spans
            raise ResNetError(f"the engine ran {report['replicas']} replicas, not --nproc {args.nproc}")
        final = load_training_checkpoint(out)
        mod = load_backends([backend])[backend]
        model = mod.import_weights(mod.create_model(final.spec, dtype=args.dtype), final.weights)
        top1, _ = _accuracy(mod, model, data, args.dtype)
    last = report["records"][-1]
    console.print(f"after step {last['step'] + 1}: loss {last['loss']:.5f} (mean over replicas), test top-1 {top1:.2%}")
    if args.save:
        console.print(f"wrote {args.save} (step {final.step}, weights + {config.kind} state from rank 0)")
    if args.json:
        doc = {"model": spec.name, "data": data.name, "backend": backend, "nproc": args.nproc, "dtype": args.dtype,
               "records": report["records"], "test_top1": {backend: top1}}  # fmt: skip
        atomic_write(args.json, lambda fh: fh.write(json.dumps(doc, indent=1).encode()))
        console.print(f"wrote {args.json}")
    return 0


def _start(args: argparse.Namespace, data: Any, resumed: Any) -> tuple[Any, Any, int, Any]:
    """The spec, the initial weights, the step to start from and the optimizer state (None: a new run)."""
    from resnet_spec import get_spec
    from resnet_spec.random_weights import initial_weights

    if resumed is not None:
        spec = resumed.spec
        if args.model and args.model != spec.name:
            raise UsageError(f"--resume {args.resume} is a {spec.name} run; --model says {args.model}")
        if args.optimizer and args.optimizer != resumed.config.kind:
            raise UsageError(
                f"--resume {args.resume} holds {resumed.config.kind} state; --optimizer says {args.optimizer}"
            )
        if spec.num_classes != len(data.classes) or spec.in_channels != data.in_channels:
            raise UsageError(
                f"--resume {args.resume} has {spec.num_classes} classes and {spec.in_channels} input channels; "
                f"{data.name} has {len(data.classes)} and {data.in_channels}"
            )
        return spec, resumed.weights, resumed.step, resumed.optimizer
    if not args.model:
        raise UsageError("--model is required (or --resume a checkpoint)")
    spec = get_spec(args.model, stem=args.stem, in_channels=data.in_channels, num_classes=len(data.classes))
    # one seeded initialisation (torchvision's scheme, drawn with numpy), imported into every backend
    return spec, initial_weights(spec, seed=args.seed, dtype=args.dtype), 0, None


def _accuracy(mod: Any, model: Any, data: Any, dtype: str) -> tuple[float, np.ndarray]:
    """Test top-1 (eval mode: running statistics) and the predicted classes."""
    preds = []
    for i in range(0, len(data.y_test), EVAL_CHUNK):
        logits = mod.forward_numpy(model, data.x_test[i : i + EVAL_CHUNK].astype(dtype))["logits"]
        preds.append(logits.argmax(1))
    pred = np.concatenate(preds)
    return float((pred == data.y_test).mean()), pred


def _report(console: Any, records: list[Any], accuracy: dict[str, tuple[float, np.ndarray]], data: Any) -> None:
    from rich.table import Table

    table = Table(title=f"after {records[-1].step + 1} steps ({data.name} test split, {len(data.y_test)} images)")
    for col in ("backend", "last loss", "test top-1", "argmax agreement with " + next(iter(accuracy))):
        table.add_column(col)
    first = next(iter(accuracy.values()))[1]
    for b, (top1, pred) in accuracy.items():
        table.add_row(b, f"{records[-1].loss[b]:.5f}", f"{top1:.2%}", f"{(pred == first).mean():.2%}")
    console.print(table)
    if len(accuracy) > 1:
        console.print(f"weights apart after the last step: {records[-1].weight_rel:.2e} (max relative, trainable)")


def _plot(records: list[Any], backends: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.core.files import atomic_write

    steps = [r.step + 1 for r in records]
    fig, axes = plt.subplots(1, 2 if len(backends) > 1 else 1, figsize=(11 if len(backends) > 1 else 6, 3.6),
                             squeeze=False)  # fmt: skip
    for b in backends:
        axes[0][0].plot(steps, [r.loss[b] for r in records], label=b, linewidth=1)
    axes[0][0].set(xlabel="step", ylabel="training loss", title="loss per framework")
    axes[0][0].legend()
    if len(backends) > 1:
        axes[0][1].semilogy(steps, [max(r.weight_rel, 1e-18) for r in records])
        axes[0][1].set(xlabel="step", ylabel="max relative weight difference", title="how far the weights drift")
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)


#: A new run's defaults for what a training checkpoint records; a resumed run takes the recorded values.
RUN_DEFAULTS: dict[str, Any] = {"data": "digits", "size": 32, "batch": 64, "dtype": "float32", "seed": 0}


def continue_run(args: argparse.Namespace, resumed: Any) -> list[str]:
    """Fill what the user did not give: the resumed run's recorded values (a new run: the defaults), and the
    steps the resumed run has left. Returns the flags that override the record, to be printed."""
    record = resumed.run if resumed is not None else {}
    overridden = []
    for key, default in RUN_DEFAULTS.items():
        given, recorded = getattr(args, key), record.get(key)
        if given is None:
            setattr(args, key, recorded if recorded is not None else default)
        elif recorded is not None and given != recorded:
            overridden.append(f"--{key} {given} (the run had {recorded})")
    if resumed is not None and args.steps is None and args.epochs is None:
        left = resumed.config.total_steps - resumed.step
        if left < 1:
            raise UsageError(
                f"--resume {args.resume}: that run is complete ({resumed.step} of {resumed.config.total_steps} "
                f"steps); give --steps N to train on"
            )
        args.steps = left
    return overridden


def check_hyperparameters(args: argparse.Namespace) -> None:
    """Finite, in range: a NaN rate would write a NaN checkpoint, a negative one fails deep in a framework."""
    import math

    rules: list[tuple[str, float, bool, str]] = [
        ("--lr", args.lr, args.lr > 0, "a positive number"),
        ("--momentum", args.momentum, 0 <= args.momentum < 1, "in [0, 1)"),
        ("--weight-decay", args.weight_decay, args.weight_decay >= 0, "zero or positive"),
        ("--eps", args.eps, args.eps > 0, "a positive number"),
        ("--gamma", args.gamma, 0 < args.gamma <= 1, "in (0, 1]"),
    ]
    for flag, value, ok, what in rules:
        if not math.isfinite(value) or not ok:
            raise UsageError(f"{flag} must be {what}, got {value}")
    if args.step_size is not None and args.step_size < 1:
        raise UsageError(f"--step-size must be at least 1, got {args.step_size}")


def register(sub: Subcommands) -> None:
    p = sub.add_parser("train", help="train a zoo model in one framework or several in lockstep (resumable)")
    p.add_argument("--model", default=None, help="a zoo model (built with the CIFAR stem unless --stem imagenet)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="one framework (default torch)")
    p.add_argument("--backends", default=None, help="several, in lockstep: torch,paddle,keras")
    p.add_argument(
        "--data", default=None, help="'digits' (scikit-learn's scans) or a folder of class folders (default digits)"
    )
    p.add_argument("--size", type=int, default=None, help="image side (default 32; --resume: the run's)")
    p.add_argument("--stem", choices=["cifar", "imagenet"], default="cifar")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: 1 epoch when --steps is not given")
    p.add_argument("--batch", type=int, default=None, help="default 64 (--resume: the run's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="default sgd (a resumed run keeps its own)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--eps", type=float, default=1e-8, help="AdamW's epsilon (torch's placement)")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--step-size", type=int, default=None, help="step schedule: steps between decays (default 1/3)")
    p.add_argument("--gamma", type=float, default=0.1, help="step schedule: decay factor")
    p.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="default float32 (--resume: the run's)"
    )
    p.add_argument("--seed", type=int, default=None, help="the batch order (default 0; --resume: the run's)")
    p.add_argument("--save", default=None, help="training checkpoint (.safetensors): weights, optimizer state, step")
    p.add_argument("--save-every", type=int, default=0, help="also save every N steps (Ctrl-C keeps the last one)")
    p.add_argument("--resume", default=None, help="a checkpoint --save wrote, by any backend")
    p.add_argument("--json", default=None, help="per-step records and test accuracy as JSON")
    p.add_argument("--plot", default=None, help="loss curves (and weight drift) as PNG")
    p.add_argument("--force", action="store_true", help="overwrite --save/--json/--plot files")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel replicas on the framework's own engine")
    p.add_argument("--sync-bn", action="store_true", help="--nproc: BN statistics over the global batch")
    p.add_argument("--port", type=int, default=None, help="--nproc: the rendezvous port (default: a free one)")
    p.add_argument("--timeout", type=float, default=120.0, help="--nproc: seconds a step may take before the run stops")
    p.set_defaults(func=cmd_train)
