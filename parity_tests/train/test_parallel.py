"""Data-parallel training on each framework's own engine, on the CPU: torch DistributedDataParallel and
paddle.DataParallel over gloo (2 processes), Keras' DataParallel on JAX and Flax's JAX sharding (2 host devices).
Each computes what its single-process reference computes, and failures stop cleanly."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec.tolerances import tolerance
from resnet_tools.core.backends import descriptors
from resnet_tools.train.lockstep import max_rel

pytestmark = pytest.mark.skipif("torch" not in LOADED, reason="torch not installed")

#: resnet18 (CIFAR stem) on the digits at 16x16, float64, global batch 8 = 2 shards of 4: SGD with momentum,
#: coupled weight decay and a rate change (step schedule), or AdamW; values exact in float32.
RUN = ["train", "--model", "resnet18", "--backend", "torch", "--size", "16", "--batch", "8", "--steps", "3",
       "--dtype", "float64", "--lr", "0.0625", "--weight-decay", "0.00048828125", "--schedule", "step",
       "--step-size", "2", "--gamma", "0.5"]  # fmt: skip
OPTIMIZERS = {"sgd": ["--optimizer", "sgd", "--momentum", "0.875"], "adamw": ["--optimizer", "adamw"]}


def _reference(config: object, shards: int, *, per_replica: bool = True, backend: str = "torch") -> tuple[dict, dict]:
    """The single-process computation of ``shards`` replicas in ``backend`` (each shard's own BN statistics,
    gradients averaged, replica 0's running statistics); ``per_replica=False``: one full-batch step instead."""
    from resnet_spec import get_spec
    from resnet_spec.random_weights import initial_weights
    from resnet_tools.train.data import batches, load_digits

    mod = LOADED[backend]
    data = load_digits(16)
    spec = get_spec("resnet18", stem="cifar", in_channels=1, num_classes=10)
    model = mod.import_weights(mod.create_model(spec, dtype="float64"), initial_weights(spec, seed=0, dtype="float64"))
    trainer = mod.Trainer(model, config)
    order = batches(len(data.y_train), 8, 0)
    for step in range(3):
        idx = next(order)
        x, y = data.x_train[idx].astype("float64"), data.y_train[idx]
        if per_replica:
            trainer.step_shards([(x[s], y[s]) for s in np.array_split(np.arange(len(idx)), shards)], config.lr_at(step))
        else:
            trainer.step(x, y, config.lr_at(step))
    return mod.export_weights(trainer.model), trainer.export_state()


def _trained(weights: dict) -> dict:
    """Without the BN running statistics, which compare only within one framework: torch updates the
    variance with the unbiased batch variance, paddle's BN momentum is float32 (resnet_spec.tolerances)."""
    return {k: v for k, v in weights.items() if "running" not in k}


#: What each engine computes: per-replica BN statistics (the shards' reference) or global-batch ones (its record).
PER_REPLICA = {name: not d.engine.global_bn for name, d in descriptors().items() if d.engine is not None}


#: ``make test`` runs each engine with one optimizer, taking SGD and AdamW in turn; ``make test-all`` every pair.
RUNS = [
    pytest.param(backend, kind, id=f"{backend}-{kind}", marks=() if (i + j) % 2 else pytest.mark.slow)
    for i, backend in enumerate(PER_REPLICA)
    for j, kind in enumerate(OPTIMIZERS)
]


@pytest.mark.parametrize(("backend", "kind"), RUNS)
def test_two_replicas_equal_the_single_process_reference(backend: str, kind: str, tmp_path: Path) -> None:
    """2 replicas for 3 steps = the reference that computes the same thing: every weight, the BN running
    statistics and the optimizer state within the float64 training bound; the other reference (per-replica
    against global-batch BN statistics) is not that."""
    if backend not in LOADED:
        pytest.skip(f"{backend} not installed")
    from resnet_tools.cli import main
    from resnet_tools.train.checkpoint import load_training_checkpoint

    ckpt = tmp_path / "dp.safetensors"
    # AdamW divides by |g| + eps: eps = 2^-20 keeps rounding-level gradient differences below the bound
    extra = ["--eps", str(2.0**-20)] if kind == "adamw" else []
    argv = [*RUN, *OPTIMIZERS[kind], *extra, "--nproc", "2", "--save", str(ckpt)]
    assert main([a if a != "torch" else backend for a in argv]) == 0
    got = load_training_checkpoint(ckpt)
    assert got.step == 3 and got.run["backend"] == backend
    assert got.run["nproc"] == 2 and got.run["replicas"] == 2  # measured by the engine (Keras: the batch's devices)
    weights, state = _reference(got.config, 2, per_replica=PER_REPLICA[backend], backend=backend)
    bound = tolerance("float64", "cpu", "steps").rel
    assert max_rel(got.weights, weights) <= bound
    assert max_rel(got.optimizer, state) <= bound
    other, _ = _reference(got.config, 2, per_replica=not PER_REPLICA[backend])  # torch's
    assert max_rel(_trained(got.weights), _trained(other)) > 1e3 * bound  # the BN statistics are the difference


@pytest.mark.skipif("paddle" not in LOADED, reason="paddle not installed")
def test_paddle_shard_reference_equals_torchs() -> None:
    """paddle's ``Trainer.step_shards`` (the reference its engine is held to) computes torch's."""
    import resnet_paddle
    from resnet_spec import get_spec
    from resnet_spec.optim import OptimizerConfig
    from resnet_spec.random_weights import initial_weights
    from resnet_tools.train.data import batches, load_digits

    config = OptimizerConfig(
        "sgd", lr=0.0625, momentum=0.875, weight_decay=2.0**-11, schedule="step", step_size=2, gamma=0.5
    )
    data = load_digits(16)
    spec = get_spec("resnet18", stem="cifar", in_channels=1, num_classes=10)
    model = resnet_paddle.import_weights(resnet_paddle.create_model(spec, dtype="float64"),
                                         initial_weights(spec, seed=0, dtype="float64"))  # fmt: skip
    trainer = resnet_paddle.Trainer(model, config)
    order = batches(len(data.y_train), 8, 0)
    for step in range(3):
        idx = next(order)
        x, y = data.x_train[idx].astype("float64"), data.y_train[idx]
        trainer.step_shards([(x[s], y[s]) for s in np.array_split(np.arange(len(idx)), 2)], config.lr_at(step))
    weights, state = _reference(config, 2)
    bound = tolerance("float64", "cpu", "steps").rel
    assert max_rel(_trained(resnet_paddle.export_weights(trainer.model)), _trained(weights)) <= bound
    # the momentum buffers are sums of gradients, which 4-sample BN shards make agree to gradient level only
    assert max_rel(trainer.export_state(), state) <= tolerance("float64", "cpu", "train").rel


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nproc", "3"], "does not split into 3 equal shards"),
        (["--nproc", "16"], "does not split into 16 equal shards"),
        (["--nproc", "2", "--backends", "torch,paddle"], "--nproc trains one framework"),
        (["--nproc", "0"], "--nproc must be at least 1"),
        (["--nproc", "2", "--sync-bn"], "--sync-bn needs GPUs"),
    ],
)
def test_bad_data_parallel_arguments_are_one_line(extra: list[str], message: str, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from resnet_tools.cli import main

    argv = [a for a in RUN if a not in ("--backend", "torch")] if "--backends" in extra else RUN
    assert main([*argv, *extra, "--save", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_a_taken_port_is_one_line(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from resnet_tools.cli import main

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main([*RUN, "--nproc", "2", "--port", str(port), "--save", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert f"--port {port} is in use" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("backend", ["torch", "paddle"])
def test_a_killed_worker_stops_the_run_without_a_checkpoint(backend: str, capsys, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rank 1 dies before step 2: the launcher stops rank 0 at once (no waiting for gloo's timeout), says
    which rank failed, and leaves no checkpoint."""
    from resnet_tools.cli import main
    from resnet_tools.train.parallel import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "1:1")
    ckpt = tmp_path / "dp.safetensors"
    began = time.monotonic()
    if backend not in LOADED:
        pytest.skip(f"{backend} not installed")
    argv = [a if a != "torch" else backend for a in RUN]
    assert main([*argv, "--nproc", "2", "--save", str(ckpt), "--timeout", "300"]) == 2
    assert time.monotonic() - began < 120
    err = capsys.readouterr().err
    assert "rank 1 of 2 failed" in err and len(err.strip().splitlines()) == 1, err
    assert not ckpt.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert os.environ[FAULT_ENV] == "1:1"


#: Each framework's own launcher, running the same worker on a job file (docs/training.md).
LAUNCHERS = {
    "torch": ["-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "resnet_tools.train.parallel"],
    "paddle": ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "resnet_tools/train/parallel.py"],
}


@pytest.mark.skipif("paddle" not in LOADED, reason="paddle not installed")
def test_the_frameworks_own_launchers_run_the_worker(tmp_path: Path) -> None:
    """``torchrun`` and ``python -m paddle.distributed.launch`` run the worker on a job file as it is, and the
    two runs train the same weights (per-replica BN in both)."""
    import json
    import subprocess
    import sys

    from resnet_spec import get_spec
    from resnet_spec.optim import OptimizerConfig
    from resnet_spec.random_weights import initial_weights
    from resnet_tools.train.checkpoint import TrainingState, load_training_checkpoint, save_training_checkpoint
    from resnet_tools.train.parallel import make_job

    spec = get_spec("resnet18", stem="cifar", in_channels=1, num_classes=10)
    config = OptimizerConfig("sgd", lr=0.0625, momentum=0.875)
    start = tmp_path / "start.safetensors"
    save_training_checkpoint(start, TrainingState(spec, initial_weights(spec, seed=0, dtype="float64"), {}, 0, config,
                                                  {"backend": "torch", "dtype": "float64"}))  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    trained = {}
    for backend, launcher in LAUNCHERS.items():
        job = make_job(backend, start, tmp_path / f"{backend}.safetensors", config, size=16, batch=8, steps=2,
                       dtype="float64")  # fmt: skip
        job.update(nproc=2, report=str(tmp_path / f"{backend}.json"))
        (tmp_path / f"{backend}-job.json").write_text(json.dumps(job))
        extra = ["--log_dir", str(tmp_path / "paddle-logs")] if backend == "paddle" else []
        cmd = [sys.executable, *launcher[:2], *extra, *launcher[2:], str(tmp_path / f"{backend}-job.json")]
        done = subprocess.run(cmd, cwd=root, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        report = json.loads((tmp_path / f"{backend}.json").read_text())
        assert report["world"] == 2 and report["replicas"] == 2 and len(report["records"]) == 2
        trained[backend] = load_training_checkpoint(tmp_path / f"{backend}.safetensors").weights
    assert max_rel(_trained(trained["paddle"]), _trained(trained["torch"])) <= tolerance("float64", "cpu", "steps").rel
