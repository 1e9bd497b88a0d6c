"""Past one process group: a SIGKILLed worker in a ``--save-every`` run is restarted from the last complete
checkpoint and ends on the weights of an uninterrupted run (each engine), and two "nodes" on the loopback
interface train what one node does (our launcher, and torch's own ``torchrun --nnodes 2``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from parity_tests.conftest import LOADED, slow_params
from parity_tests.train.test_parallel import OPTIMIZERS, PER_REPLICA, RUN, _reference
from resnet_spec.tolerances import tolerance
from resnet_tools.core.backends import descriptors
from resnet_tools.train.lockstep import max_rel

ROOT = Path(__file__).resolve().parents[2]
BOUND = tolerance("float64", "cpu", "steps").rel


def _needs(backend: str) -> None:
    if backend not in LOADED:
        pytest.skip(f"{backend} not installed")


def _close_to_the_uninterrupted_run(ckpt: Path, backend: str, replicas: int = 2) -> None:
    """The checkpoint equals the single-process reference of an uninterrupted 3-step run (weights, BN running
    statistics and optimizer state, within the float64 steps bound)."""
    from resnet_tools.train.checkpoint import load_training_checkpoint

    got = load_training_checkpoint(ckpt)
    assert got.step == 3
    weights, state = _reference(got.config, replicas, per_replica=PER_REPLICA[backend], backend=backend)
    assert max_rel(got.weights, weights) <= BOUND
    assert max_rel(got.optimizer, state) <= BOUND


#: The rank that is killed (a one-process engine, Keras' or Flax's: its one process holds both replicas) and the step
#: it dies before; every backend with an engine, from the records.
KILLED = {name: "0:2" if d.engine.one_process else "1:2" for name, d in descriptors().items() if d.engine is not None}


def first_of_each_kind(kinds: dict[str, str]) -> list:
    """Backends as pytest params: the first of each engine kind runs in ``make test``, the others are marked slow."""
    seen: set[str] = set()
    params = []
    for backend, kind in kinds.items():
        params.append(pytest.param(backend, id=backend, marks=() if kind not in seen else pytest.mark.slow))
        seen.add(kind)
    return params


@pytest.mark.parametrize("backend", first_of_each_kind(KILLED))
def test_a_killed_worker_is_restarted_and_ends_on_the_uninterrupted_weights(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _needs(backend)
    from resnet_tools.cli import main
    from resnet_tools.train.engines import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, KILLED[backend])  # SIGKILL before step 3, after the step-2 checkpoint
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the launcher keeps the resumed checkpoint aside
    ckpt = tmp_path / "dp.safetensors"
    argv = [a if a != "torch" else backend for a in RUN]
    code = main([*argv, *OPTIMIZERS["sgd"], "--nproc", "2", "--save", str(ckpt), "--save-every", "1",
                 "--max-restarts", "1", "--timeout", "300"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    # the step-2 checkpoint is resumed from, or step 1's when the kill lands while rank 0 still writes step 2's
    # (the launcher then stops rank 0 mid-write: the half-written file is never renamed into place)
    killed = KILLED[backend].split(":")[0]
    assert re.search(
        rf"rank {killed} of \d failed: killed by SIGKILL; restarting from step [12] \(restart 1 of 1\)", out
    ), out
    assert list(temp.iterdir()) == [], "the launcher left its copy of the resumed checkpoint"
    _close_to_the_uninterrupted_run(ckpt, backend)


def test_a_kill_before_the_first_checkpoint_restarts_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from resnet_tools.cli import main
    from resnet_tools.train.engines import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "0:0")
    ckpt = tmp_path / "dp.safetensors"
    code = main([*RUN, *OPTIMIZERS["sgd"], "--nproc", "2", "--save", str(ckpt), "--save-every", "2",
                 "--max-restarts", "2", "--json", str(tmp_path / "run.json")])  # fmt: skip
    assert code == 0
    assert "killed by SIGKILL; restarting from step 0 (restart 1 of 2)" in capsys.readouterr().out
    records = json.loads((tmp_path / "run.json").read_text())["records"]
    assert [r["step"] for r in records] == [0, 1, 2]  # each step once, from the attempt that kept it
    _close_to_the_uninterrupted_run(ckpt, "torch")


def test_a_restart_keeps_each_steps_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after step index 2 ran, with the last checkpoint after two steps: the restart runs index 2 again, and
    the run's records hold it once (the later run's), not twice."""
    from resnet_tools.cli import main
    from resnet_tools.train.engines import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "1:3")  # rank 1 dies before step index 3
    argv = [a if a != "3" else "4" for a in RUN]  # four steps
    code = main([*argv, *OPTIMIZERS["sgd"], "--nproc", "2", "--save", str(tmp_path / "dp.safetensors"),
                 "--save-every", "2", "--max-restarts", "1", "--json", str(tmp_path / "run.json")])  # fmt: skip
    assert code == 0
    assert re.search(r"restarting from step [12] \(restart 1 of 1\)", capsys.readouterr().out)
    records = json.loads((tmp_path / "run.json").read_text())["records"]
    assert [r["step"] for r in records] == [0, 1, 2, 3]


def test_without_restarts_a_killed_worker_still_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from resnet_tools.cli import main
    from resnet_tools.train.engines import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "1:2")
    ckpt = tmp_path / "dp.safetensors"
    assert main([*RUN, "--nproc", "2", "--save", str(ckpt), "--save-every", "1"]) == 2
    err = capsys.readouterr().err
    assert "rank 1 of 2 failed" in err and len(err.strip().splitlines()) == 1
    from resnet_tools.train.checkpoint import load_training_checkpoint

    assert load_training_checkpoint(ckpt).step in (1, 2)  # the last complete checkpoint is kept, whole


def test_a_changed_world_size_on_resume_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from resnet_tools.cli import main

    ckpt = tmp_path / "dp.safetensors"
    assert main([*RUN, "--nproc", "2", "--save", str(ckpt), "--steps", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--backend", "torch", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "was trained on 2 replicas, this run has 1" in err and "--reshard" in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nnodes", "2"], "--nnodes > 1 needs --master HOST:PORT"),
        (["--nnodes", "2", "--node-rank", "2", "--master", "127.0.0.1:29500"], "--node-rank 2 is not one of the 2"),
        (["--nnodes", "2", "--master", "nohost"], "give HOST:PORT"),
        (["--nnodes", "2", "--master", "127.0.0.1:1", "--max-restarts", "1"], "use torchrun --max-restarts"),
        (["--max-restarts", "-1"], "--max-restarts must be 0 or more"),
    ],
)
def test_bad_node_arguments_are_one_line(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from resnet_tools.cli import main

    assert main([*RUN, "--nproc", "2", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def _two_nodes(commands: list[list[str]], timeout: int = 300) -> list[subprocess.CompletedProcess[bytes]]:
    """Start both nodes' commands at once (each waits for the other at the rendezvous); both results."""
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in commands]
    done = []
    for p, c in zip(procs, commands, strict=True):
        try:
            out, _ = p.communicate(timeout=timeout)
        except BaseException:  # a node that hangs: stop every node (not a node still finishing after the other)
            for q in procs:
                if q.poll() is None:
                    q.kill()
            raise
        done.append(subprocess.CompletedProcess(c, p.returncode, out))
    return done


def _free_port() -> int:
    from resnet_tools.train.engines import free_port

    return free_port()


#: Every backend with a data-parallel engine, from the records: the first runs in ``make test``, the others are slow.
ENGINES = [name for name, d in descriptors().items() if d.engine is not None]


@pytest.mark.parametrize("backend", [ENGINES[0], *slow_params(ENGINES[1:])])
def test_two_nodes_on_the_loopback_equal_the_single_process_reference(backend: str, tmp_path: Path) -> None:
    """``resnet train --nnodes 2 --node-rank R --master 127.0.0.1:PORT`` on two "nodes" (1 replica each): the
    commands docs/training.md gives for two hosts, with the host's address replaced by the loopback's. Keras and
    Flax run as two JAX processes joined by JAX's coordinator (CPU collectives over gloo)."""
    _needs(backend)
    master = f"127.0.0.1:{_free_port()}"
    ckpt = tmp_path / "node0.safetensors"
    argv = [a if a != "torch" else backend for a in RUN]
    base = [sys.executable, "-m", "resnet_tools.cli", *argv, *OPTIMIZERS["sgd"], "--nproc", "1", "--nnodes", "2"]
    node0, node1 = _two_nodes(
        [
            [*base, "--node-rank", "0", "--master", master, "--save", str(ckpt)],
            [*base, "--node-rank", "1", "--master", master],
        ]
    )
    assert node0.returncode == 0, node0.stdout.decode()[-2000:]
    assert node1.returncode == 0, node1.stdout.decode()[-2000:]
    assert b"node 1 done" in node1.stdout and b"on 2 replicas (1 on each of 2 nodes" in node0.stdout
    _close_to_the_uninterrupted_run(ckpt, backend)


def test_torchrun_two_nodes_run_the_worker(tmp_path: Path) -> None:
    """torch's own launcher, ``torchrun --nnodes 2 --node-rank R --master-addr --master-port``, runs the worker
    on a job file as it is, and the two nodes train what the single-process reference does."""
    from resnet_spec import get_spec
    from resnet_spec.optim import OptimizerConfig
    from resnet_spec.random_weights import initial_weights
    from resnet_tools.train.checkpoint import TrainingState, save_training_checkpoint
    from resnet_tools.train.parallel import make_job

    spec = get_spec("resnet18", stem="cifar", in_channels=1, num_classes=10)
    config = OptimizerConfig("sgd", lr=0.0625, momentum=0.875, weight_decay=2.0**-11, schedule="step", step_size=2,
                             gamma=0.5, total_steps=3)  # fmt: skip
    start = tmp_path / "start.safetensors"
    save_training_checkpoint(start, TrainingState(spec, initial_weights(spec, seed=0, dtype="float64"), {}, 0, config,
                                                  {"backend": "torch", "dtype": "float64"}))  # fmt: skip
    ckpt = tmp_path / "end.safetensors"
    job = make_job("torch", start, ckpt, config, size=16, batch=8, steps=3, dtype="float64")
    job.update(nproc=2, report=str(tmp_path / "report.json"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    port = _free_port()
    cmds = [[sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r), "--nproc-per-node",
             "1", "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "resnet_tools.train.parallel",
             str(tmp_path / "job.json")] for r in (0, 1)]  # fmt: skip
    for done in _two_nodes(cmds):
        assert done.returncode == 0, done.stdout.decode()[-2000:]
    assert json.loads((tmp_path / "report.json").read_text())["world"] == 2
    _close_to_the_uninterrupted_run(ckpt, "torch")


def test_the_docs_give_the_rehearsed_commands() -> None:
    """docs/training.md's two-node rehearsal is the command line the test above runs (flags in that order)."""
    text = (ROOT / "docs" / "training.md").read_text()
    block = text.split("<!-- rehearsal -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    for rank in (0, 1):
        assert (
            f"resnet train --model resnet18 --backend torch --nproc 1 --nnodes 2 --node-rank {rank} --master 127.0.0.1:"
            in block
        )


def test_the_restart_step_is_read_from_the_header(tmp_path: Path) -> None:
    """A restart reads only the checkpoint's step (the tensors wait for the next attempt); a file without the
    training state is one line."""
    import numpy as np
    from safetensors.numpy import save_file

    from resnet_spec.errors import CheckpointError
    from resnet_tools.train.checkpoint import TRAINING_KEY, training_step

    good, bare = tmp_path / "run.safetensors", tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3, "float32")}, str(good), metadata={TRAINING_KEY: json.dumps({"step": 7})})
    save_file({"w": np.zeros(3, "float32")}, str(bare))
    assert training_step(good) == 7
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        training_step(bare)
    (tmp_path / "cut.safetensors").write_bytes(good.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        training_step(tmp_path / "cut.safetensors")


@pytest.mark.parametrize("stale_model", ["resnet18", "resnet34"], ids=["same-model", "another-model"])
def test_a_restart_never_resumes_another_runs_file(
    stale_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --save file left by an earlier run (step 1, another run id) sits where this run saves; this run's worker
    dies before its first checkpoint: the restart starts from this run's start, not from the stale step 1, and the
    run ends on the uninterrupted run's weights (it used to resume the stale file, even of another model)."""
    _needs("torch")
    from resnet_tools.cli import main
    from resnet_tools.train.checkpoint import training_mark
    from resnet_tools.train.engines import FAULT_ENV

    ckpt = tmp_path / "dp.safetensors"
    stale = [{"resnet18": stale_model, "3": "1"}.get(a, a) for a in RUN]  # one step, in one process: quick
    assert main([*stale, *OPTIMIZERS["sgd"], "--save", str(ckpt)]) == 0
    old_step, old_id = training_mark(ckpt)
    assert old_step == 1 and old_id
    monkeypatch.setenv(FAULT_ENV, "0:0")
    code = main([*RUN, *OPTIMIZERS["sgd"], "--nproc", "2", "--save", str(ckpt), "--save-every", "2",
                 "--max-restarts", "1", "--force"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "restarting from step 0 (restart 1 of 1)" in out, out
    assert training_mark(ckpt)[1] not in ("", old_id)
    _close_to_the_uninterrupted_run(ckpt, "torch")


def _workers() -> set[int]:
    """The pids of data-parallel workers (``python -m resnet_tools.train.parallel``) alive on this machine."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if b"resnet_tools.train.parallel" in cmd and state != "Z":
                found.add(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_workers_die_with_a_sigkilled_launcher(tmp_path: Path) -> None:
    """SIGKILL to the launcher used to leave both workers training and writing --save for seconds more."""
    _needs("torch")
    import os
    import signal
    import time

    before = _workers()
    argv = [a if a != "3" else "400" for a in RUN]  # a long run
    cmd = [sys.executable, "-m", "resnet_tools.cli.main", *argv, "--nproc", "2", "--timeout", "300",
           "--save", str(tmp_path / "dp.safetensors")]  # fmt: skip
    launcher = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_workers() - before) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        ours = _workers() - before
        assert len(ours) == 2, "the workers never started"
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 15
        while ours & _workers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not ours & _workers(), "workers outlived their launcher"
    finally:
        launcher.kill()
        for pid in _workers() - before:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--save-every", "0"], "--save-every must be at least 1, got 0"),
        (["--save-every", "-2"], "--save-every must be at least 1, got -2"),
        (["--save-every", "1"], "give --save FILE too"),
        (["--nproc", "2", "--port", "70000"], "--port must be a TCP port, 1..65535, got 70000"),
        (["--nproc", "2", "--port", "-1"], "--port must be a TCP port, 1..65535, got -1"),
        (["--nproc", "2", "--timeout", "nan"], "--timeout must be a positive number of seconds, got nan"),
        (["--nproc", "2", "--timeout", "0"], "--timeout must be a positive number of seconds, got 0.0"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_training_arguments_out_of_range_are_one_line_before_anything_starts(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from resnet_tools.cli import main

    assert main([*RUN, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("step", [-5, 10**9])
def test_a_recorded_step_no_run_reaches_is_refused(step: int, tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from resnet_spec.errors import CheckpointError
    from resnet_tools.train.checkpoint import TRAINING_KEY, training_step

    bad = tmp_path / "run.safetensors"
    save_file({"w": np.zeros(3, "float32")}, str(bad), metadata={TRAINING_KEY: json.dumps({"step": step})})
    with pytest.raises(CheckpointError, match=f"step {step}, not a step a run reaches"):
        training_step(bad)


def test_steps_with_resume_say_they_are_more_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--resume X --steps 2 runs 2 steps more (Lightning's max_steps would be a total): the output says which."""
    _needs("torch")
    from resnet_tools.cli import main
    from resnet_tools.train.checkpoint import training_step

    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main([*RUN, "--save", str(first)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(first), "--backend", "torch", "--steps", "2", "--save", str(second)]) == 0
    assert "resuming at step 3: 2 more step(s), to step 5" in capsys.readouterr().out
    assert training_step(second) == 5
