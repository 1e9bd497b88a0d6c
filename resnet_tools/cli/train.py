"""``resnet train``: one model trained in one framework, or in several in lockstep, with each framework's
own optimizer; resumable from a checkpoint any backend wrote."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from resnet_spec.optim import OPTIMIZERS, SCHEDULES
from resnet_tools.cli.args import Subcommands
from resnet_tools.core.backends import BACKENDS


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import parse_backends
    from resnet_tools.core.errors import UsageError
    from resnet_tools.core.files import atomic_write, check_outputs
    from resnet_tools.train.plot import plot_run
    from resnet_tools.train.request import TrainRequest
    from resnet_tools.train.run import prepare, run

    if args.save and not args.save.endswith(".safetensors"):  # read back as a .pt, it would look like a pickle
        stem = args.save.rsplit(".", 1)[0] if "." in Path(args.save).name else args.save
        raise UsageError(
            f"--save {args.save}: a training checkpoint is a .safetensors file (weights, optimizer state, step); "
            f"name it {stem}.safetensors, then `resnet convert {stem}.safetensors {Path(stem).name}.pt` for torch"
        )
    check_outputs([args.save, args.json, args.plot], force=args.force)
    fields = {k: v for k, v in vars(args).items() if k in TrainRequest.__dataclass_fields__ and k != "backends"}
    plan = prepare(TrainRequest(**fields, backends=parse_backends(args.backends or args.backend or "torch")))
    if plan.notes:
        console.print(f"[yellow]note:[/] resuming with {', '.join(plan.notes)}", highlight=False)
    if plan.request.resume and args.steps is not None:  # the count is this invocation's, said plainly
        console.print(
            f"resuming at step {plan.start}: {plan.steps} more step(s), to step {plan.start + plan.steps} "
            f"(--steps counts the steps this command runs, not a total)",
            highlight=False,
        )
    console.print(plan.summary)
    if plan.request.nnodes > 1:  # a missing peer is only known when the rendezvous gives up: say how long that is
        console.print(
            f"node {plan.request.node_rank} of {plan.request.nnodes}: waiting for the other nodes at "
            f"{plan.request.master} (the rendezvous gives up after --timeout {plan.request.timeout:g} s)",
            highlight=False,
        )
    backends = plan.request.backends
    if plan.request.parallel:
        with console.status(f"{plan.request.nproc} replicas training on this node ..."):
            result = run(plan, say=lambda line: console.print(f"[yellow]restart:[/] {line}", highlight=False))
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
            task = progress.add_task("training", total=plan.steps)

            def on_step(r: Any) -> None:
                loss = ", ".join(f"{b} {v:.4f}" for b, v in r.loss.items())
                drift = f", weights apart {r.weight_rel:.1e}" if len(backends) > 1 else ""
                progress.update(task, advance=1, description=f"step {r.step + 1}: loss {loss}{drift}")

            result = run(plan, on_step)
    _report(console, result)
    if args.json:
        atomic_write(args.json, lambda fh: fh.write(json.dumps(result.as_json(), indent=1).encode()))
        console.print(f"wrote {args.json}")
    if args.plot and not plan.request.parallel:
        plot_run(result.records, backends, args.plot)
        console.print(f"wrote {args.plot}")
    return 0


def _report(console: Any, result: Any) -> None:
    """The run's last step and test accuracy: a table per backend (lockstep), one line (--nproc)."""
    from rich.table import Table

    plan, records, accuracy = result.plan, result.records, result.accuracy
    end, who = plan.start + plan.steps, plan.request.backends[0]
    if plan.request.node_rank > 0:
        console.print(f"node {plan.request.node_rank} done (node 0 writes the checkpoint and the records)")
        return
    if plan.request.parallel:
        last, (top1, _) = records[-1], accuracy[who]
        console.print(
            f"after step {last['step'] + 1}: loss {last['loss']:.5f} (mean over replicas), test top-1 {top1:.2%}"
        )
    else:
        table = Table(
            title=f"after {records[-1].step + 1} steps ({plan.data.name} test split, {len(plan.data.y_test)} images)"
        )
        for col in ("backend", "last loss", "test top-1", "argmax agreement with " + who):
            table.add_column(col)
        first = accuracy[who][1]
        for b, (top1, pred) in accuracy.items():
            table.add_row(b, f"{records[-1].loss[b]:.5f}", f"{top1:.2%}", f"{(pred == first).mean():.2%}")
        console.print(table)
        if len(accuracy) > 1:
            console.print(f"weights apart after the last step: {records[-1].weight_rel:.2e} (max relative, trainable)")
    if plan.request.save:
        source = "rank 0" if plan.request.parallel else who
        console.print(f"wrote {plan.request.save} (step {end}, weights + {plan.config.kind} state from {source})")


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
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps to run; with --resume, steps MORE than the run's (not a total, unlike Lightning's max_steps; "
        "without --steps a resumed run finishes its own)",
    )
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
    p.add_argument("--save-every", type=int, default=None, help="also save every N steps (Ctrl-C keeps the last one)")
    p.add_argument("--resume", default=None, help="a checkpoint --save wrote, by any backend")
    p.add_argument("--json", default=None, help="per-step records and test accuracy as JSON")
    p.add_argument("--plot", default=None, help="loss curves (and weight drift) as PNG")
    p.add_argument("--force", action="store_true", help="overwrite --save/--json/--plot files")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel replicas on the framework's own engine")
    p.add_argument("--sync-bn", action="store_true", help="--nproc: BN statistics over the global batch")
    p.add_argument("--port", type=int, default=None, help="--nproc: the rendezvous port (default: a free one)")
    p.add_argument("--timeout", type=float, default=120.0, help="--nproc: seconds a step may take before the run stops")
    p.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="--nproc: restart the group after a failed worker, from the last --save-every checkpoint",
    )
    p.add_argument("--nnodes", type=int, default=1, help="nodes in the group (each runs --nproc replicas)")
    p.add_argument("--node-rank", type=int, default=0, help="this node's index, 0..nnodes-1 (0 writes the checkpoint)")
    p.add_argument("--master", default=None, help="node 0's HOST:PORT, the rendezvous every node joins")
    p.add_argument(
        "--reshard",
        action="store_true",
        help="--resume on another number of replicas (per-replica BN then sees other shards)",
    )
    p.set_defaults(func=cmd_train)
