"""Data-parallel training on the framework's own engine (torch DistributedDataParallel over gloo, CPU):
N processes compute what the single-process reference computes, and failures stop cleanly."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec.tolerances import tolerance
from resnet_tools.train.lockstep import max_rel

pytestmark = pytest.mark.skipif("torch" not in LOADED, reason="torch not installed")

#: resnet18 (CIFAR stem) on the digits at 16x16, float64, global batch 8 = 2 shards of 4: SGD with momentum,
#: coupled weight decay and a rate change (step schedule), or AdamW; values exact in float32.
RUN = ["train", "--model", "resnet18", "--backend", "torch", "--size", "16", "--batch", "8", "--steps", "3",
       "--dtype", "float64", "--lr", "0.0625", "--weight-decay", "0.00048828125", "--schedule", "step",
       "--step-size", "2", "--gamma", "0.5"]  # fmt: skip
OPTIMIZERS = {"sgd": ["--optimizer", "sgd", "--momentum", "0.875"], "adamw": ["--optimizer", "adamw"]}


def _reference(config: object, shards: int, *, per_replica: bool = True) -> tuple[dict, dict]:
    """The single-process computation of ``shards`` replicas (each shard's own BN statistics, gradients
    averaged, replica 0's running statistics); ``per_replica=False``: one full-batch step instead."""
    import resnet_torch
    from resnet_spec import get_spec
    from resnet_spec.random_weights import initial_weights
    from resnet_tools.train.data import batches, load_digits

    data = load_digits(16)
    spec = get_spec("resnet18", stem="cifar", in_channels=1, num_classes=10)
    model = resnet_torch.import_weights(resnet_torch.create_model(spec, dtype="float64"),
                                        initial_weights(spec, seed=0, dtype="float64"))  # fmt: skip
    trainer = resnet_torch.Trainer(model, config)
    order = batches(len(data.y_train), 8, 0)
    for step in range(3):
        idx = next(order)
        x, y = data.x_train[idx].astype("float64"), data.y_train[idx]
        if per_replica:
            trainer.step_shards([(x[s], y[s]) for s in np.array_split(np.arange(len(idx)), shards)], config.lr_at(step))
        else:
            trainer.step(x, y, config.lr_at(step))
    return resnet_torch.export_weights(trainer.model), trainer.export_state()


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_two_processes_equal_the_single_process_reference(kind: str, tmp_path: Path) -> None:
    """2 DDP processes for 3 steps = the reference: every weight, the BN running statistics and the optimizer
    state within the float64 training bound; a full-batch step (synchronised BN) is not that."""
    from resnet_tools.cli import main
    from resnet_tools.train.checkpoint import load_training_checkpoint

    ckpt = tmp_path / "dp.safetensors"
    # AdamW divides by |g| + eps: eps = 2^-20 keeps rounding-level gradient differences below the bound
    extra = ["--eps", str(2.0**-20)] if kind == "adamw" else []
    assert main([*RUN, *OPTIMIZERS[kind], *extra, "--nproc", "2", "--save", str(ckpt)]) == 0
    got = load_training_checkpoint(ckpt)
    assert got.step == 3 and got.run["nproc"] == 2
    weights, state = _reference(got.config, 2)
    bound = tolerance("float64", "cpu", "steps").rel
    assert max_rel(got.weights, weights) <= bound
    assert max_rel(got.optimizer, state) <= bound
    full, _ = _reference(got.config, 2, per_replica=False)
    assert max_rel(got.weights, full) > 1e3 * bound  # per-replica BN statistics are what DDP computes


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


def test_a_killed_worker_stops_the_run_without_a_checkpoint(capsys, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rank 1 dies before step 2: the launcher stops rank 0 at once (no waiting for gloo's timeout), says
    which rank failed, and leaves no checkpoint."""
    from resnet_tools.cli import main
    from resnet_tools.train.parallel import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "1:1")
    ckpt = tmp_path / "dp.safetensors"
    began = time.monotonic()
    assert main([*RUN, "--nproc", "2", "--save", str(ckpt), "--timeout", "300"]) == 2
    assert time.monotonic() - began < 120
    err = capsys.readouterr().err
    assert "rank 1 of 2 failed" in err and len(err.strip().splitlines()) == 1, err
    assert not ckpt.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert os.environ[FAULT_ENV] == "1:1"
