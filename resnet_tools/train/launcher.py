"""Starting a data-parallel group and keeping it going: ``resnet train --nproc N`` on one node, or on several
(``--nnodes``, ``--node-rank``, ``--master``), with restarts after a failed worker (``--max-restarts``).

A worker that fails or dies stops the others at once; a run past its deadline is stopped. With restarts left,
the group starts again from the last complete checkpoint (``--save-every``; none yet: the run's start), with the
steps it has left: the batches are drawn from the step on (``train.data.batches``), so a restarted run ends where
an uninterrupted one does. Checkpoints are written atomically, so the one resumed from is never half-written.
Across nodes each launcher starts its node's processes; a restart needs every node to restart together
(torchrun's ``--max-restarts`` does that through its rendezvous), so ``--max-restarts`` is for one node here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_spec.errors import ResNetError
from resnet_tools.core.threads import threads_env
from resnet_tools.train.engines import ATTEMPT_ENV, check_port, engine_of, free_port, processes, rank_env


@dataclass(frozen=True)
class Nodes:
    """Where this launcher's processes sit in the group: ``count`` nodes, this one ``rank``, node 0 at ``master``
    (``host:port``; None on one node: a free port on 127.0.0.1)."""

    count: int = 1
    rank: int = 0
    master: str | None = None


class WorkerError(ResNetError):
    """A rank failed or died; ``records`` are rank 0's steps before it (a restart keeps those it resumes after)."""

    def __init__(self, message: str, records: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.records = records


def launch(
    job: dict[str, Any], nproc: int, *, port: int | None = None, timeout_s: float = 600.0, max_restarts: int = 0,
    nodes: Nodes = Nodes(), say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:  # fmt: skip
    """Run ``job`` on ``nproc`` replicas of this node; rank 0's report (per-step records, ``restarts``). Raises
    ResNetError with the failing rank's last error line, or on the deadline, after stopping every worker, once
    no restart is left."""
    engine_of(job["backend"])  # one line when the backend has no usable engine
    if port is not None:
        check_port(port)
    current: dict[str, Any] = dict(job)
    kept: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="resnet-restart-") as aside:  # removed however the run ends
        for attempt in range(max_restarts + 1):
            try:
                report = _run_group(current, nproc, port, timeout_s, nodes, attempt)
            except WorkerError as failed:
                if attempt == max_restarts:
                    raise ResNetError(str(failed)) from None
                resume, step = _last_complete(job, Path(aside))
                kept = [r for r in kept + failed.records if r["step"] < step]
                current = {**job, "start": resume, "step": step, "steps": job["step"] + job["steps"] - step}
                say(f"{failed}; restarting from step {step} (restart {attempt + 1} of {max_restarts})")
                port = None  # the old rendezvous port may linger in TIME_WAIT
                continue
            return {**report, "records": kept + report.get("records", []), "restarts": attempt}
    raise AssertionError("unreachable")


def _die_with_us() -> None:
    """In a worker, before it runs: the kernel kills it when the launcher dies, however (even SIGKILLed), so no
    worker goes on writing --save for a launcher that is gone (Linux's parent-death signal; elsewhere nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _last_complete(job: dict[str, Any], aside: Path) -> tuple[str, int]:
    """The checkpoint to restart from and its step: the last one ``--save-every`` wrote (renamed into place
    whole, so complete), else the run's start. Copied into ``aside``, since the next attempt writes ``save``
    again; only its step is read here (the file's header), not its tensors."""
    from resnet_tools.train.checkpoint import training_mark

    save = Path(job["save"])
    if job.get("save_every") and save.exists():
        step, run_id = training_mark(save)
        if run_id != job.get("run_id", "") or not run_id:  # a file another run left there: never adopted
            return job["start"], job["step"]
        if step > job["step"]:
            keep = aside / save.name
            shutil.copyfile(save, keep)
            return str(keep), step
    return job["start"], job["step"]


def _run_group(
    job: dict[str, Any], nproc: int, port: int | None, timeout_s: float, nodes: Nodes, attempt: int
) -> dict[str, Any]:
    """One attempt: this node's processes, watched until every one ends (or one fails, or the deadline)."""
    count = processes(job["backend"], nproc)
    ports = [port or free_port(), *(free_port() for _ in range(count))]
    threads = max(1, len(os.sched_getaffinity(0)) // count)  # the cores, shared by the processes
    world = count * nodes.count
    with tempfile.TemporaryDirectory(prefix="resnet-dp-") as tmp_name:
        tmp = Path(tmp_name)
        job_path, report, records = tmp / "job.json", tmp / "report.json", tmp / "records.jsonl"
        spec = {**job, "nproc": nproc * nodes.count, "report": str(report), "records": str(records)}
        job_path.write_text(json.dumps(spec))
        procs, logs = [], []
        for local in range(count):
            rank = nodes.rank * count + local
            env = {**os.environ, **threads_env(threads), ATTEMPT_ENV: str(attempt),
                   **rank_env(job["backend"], rank, world, ports, local_rank=local, local_replicas=nproc,
                              master=nodes.master)}  # fmt: skip
            log = (tmp / f"rank{rank}.log").open("wb")
            logs.append(log)
            cmd = [sys.executable, "-m", "resnet_tools.train.parallel", str(job_path)]
            procs.append(
                (rank, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_us))
            )
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                failed = {r: p.returncode for r, p in procs if p.poll() not in (None, 0)}
                if failed:
                    raise WorkerError(_first_failure(failed, world, tmp), _records(records))
                if all(p.poll() is not None for _, p in procs):
                    break
                if time.monotonic() > deadline:
                    raise ResNetError(f"the data-parallel run passed its deadline ({timeout_s:.0f} s) and was stopped")
                time.sleep(0.1)
        finally:
            for _, p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()
        if not report.exists():  # a node other than 0: rank 0 reports
            return {"records": [], "world": world, "replicas": nproc * nodes.count, "node": nodes.rank}
        return json.loads(report.read_text())  # type: ignore[no-any-return]


def _records(path: Path) -> list[dict[str, Any]]:
    """Rank 0's per-step records so far (one JSON line each; a line cut by the kill is left out)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def _first_failure(failed: dict[int, int], world: int, tmp: Path) -> str:
    """The failure to report: a rank killed by a signal, then one that died on its own, before one that lost its
    peer (gloo's connection error in the survivor is the consequence, not the cause)."""
    lines = {r: _last_line(tmp / f"rank{r}.log") for r in failed}
    for r, code in failed.items():
        if code < 0:
            lines[r] = f"killed by {signal.Signals(-code).name}"
    cause = sorted(failed, key=lambda r: (failed[r] > 0, "gloo" in lines[r] or "onnection" in lines[r], r))[0]
    return f"rank {cause} of {world} failed: {lines[cause]}"


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "it exited without a message (killed?)"
