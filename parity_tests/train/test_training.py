"""Many-step training in every framework with its own optimizer (issue 11, first part): float64
lockstep from one initialisation on the same batches, resuming in another framework from canonical
optimizer state, and the conventions of resnet_spec/optim.py against torch's optimizers.

Hyperparameters are exact in float32 (0.875, powers of two): paddle passes momentum, betas, eps and
weight decay to its kernels as float32 attributes, and a float64 run then differs at ~1e-8 from the
first step whatever the implementation (measured with momentum 0.9; docs/training.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import ModelSpec
from resnet_spec.optim import STEP_KEY, OptimizerConfig, reference_step, state_key
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.train.lockstep import max_rel, run_lockstep, small_spec, trainable_weights

STEPS = 20
BATCH = (4, 3, 9, 11)  # odd, non-square
CONFIGS = {
    "sgd": OptimizerConfig("sgd", lr=2**-4, momentum=0.875, weight_decay=2**-11, schedule="step", step_size=7,
                           gamma=0.5),
    # eps 2^-20: Adam divides each gradient element by (|g| + eps); elements whose gradient is at rounding
    # level (~1e-13 apart between frameworks) would be amplified by 1/eps past the float64 bound at 2^-27.
    "adamw": OptimizerConfig("adamw", lr=2**-9, betas=(0.875, 1 - 2**-10), eps=2**-20, weight_decay=2**-7,
                             schedule="step", step_size=7, gamma=0.5),
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny() -> ModelSpec:
    return small_spec()


def _batches(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three batches in turn: a task the net can learn in a few steps, so the curve really moves."""
    rng = np.random.default_rng(7)
    three = [(rng.standard_normal(BATCH), rng.integers(0, 10, BATCH[0])) for _ in range(3)]
    return [three[i % 3] for i in range(n)]


def _trainer(backend: str, spec: ModelSpec, config: OptimizerConfig, weights: dict[str, np.ndarray]) -> Any:
    mod = LOADED[backend]
    return mod.Trainer(mod.import_weights(mod.create_model(spec, dtype="float64"), weights), config)


def _trainable(backend: str, trainer: Any) -> dict[str, np.ndarray]:
    return trainable_weights(LOADED[backend], trainer.model)


_rel = max_rel


def _run(backend: str, spec: ModelSpec, config: OptimizerConfig, weights: dict, batches: list, start: int = 0):
    trainer = _trainer(backend, spec, config, weights)
    losses = [trainer.step(x, y, config.lr_at(start + i))["loss"] for i, (x, y) in enumerate(batches)]
    return trainer, losses


def _need(*backends: str) -> None:
    missing = [b for b in backends if b not in LOADED]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_lockstep_float64_every_framework(kind: str, tiny: ModelSpec) -> None:
    _need("torch", "paddle", "keras")
    config, batches = CONFIGS[kind], _batches(STEPS)
    assert {config.lr_at(i) for i in range(STEPS)} == {config.lr * 0.5**j for j in range(3)}  # two rate changes
    weights = random_weights(tiny, seed=3, dtype="float64")
    run = run_lockstep(dict(LOADED), tiny, config, weights, batches)  # every installed framework
    bound = tolerance("float64", "cpu", "steps").rel
    ref_losses = [r.loss["torch"] for r in run.records]
    assert sum(ref_losses[-3:]) < 0.75 * sum(ref_losses[:3])  # it learns
    assert max(r.weight_rel for r in run.records) <= bound  # every step, every trainable tensor
    ref_state = run.trainers["torch"].export_state()
    for b in [b for b in LOADED if b != "torch"]:
        np.testing.assert_allclose([r.loss[b] for r in run.records], ref_losses, rtol=bound, atol=0)
        np.testing.assert_allclose([r.grad_norm[b] for r in run.records], [r.grad_norm["torch"] for r in run.records],
                                   rtol=bound)  # fmt: skip
        assert _rel(run.trainers[b].export_state(), ref_state) <= bound, b  # the optimizer state maps exactly


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_resume_in_every_other_framework(kind: str, tiny: ModelSpec) -> None:
    """k steps in one framework, weights + optimizer state carried to another, the rest there: the same
    curve and the same weights as torch's uninterrupted run."""
    _need("torch", "paddle", "keras")
    config, batches, k = CONFIGS[kind], _batches(10), 6  # the switch is just before a rate change (step 7)
    weights = random_weights(tiny, seed=4, dtype="float64")
    ref_trainer, ref_losses = _run("torch", tiny, config, weights, batches)
    bound = tolerance("float64", "cpu", "steps").rel
    for source in LOADED:  # every installed framework, to every other
        first, losses = _run(source, tiny, config, weights, batches[:k])
        carried = LOADED[source].export_weights(first.model)
        state = first.export_state()
        for target in LOADED:
            if target == source:
                continue
            second = _trainer(target, tiny, config, carried)
            second.import_state(state, steps=k)
            rest = [second.step(x, y, config.lr_at(k + i))["loss"] for i, (x, y) in enumerate(batches[k:])]
            np.testing.assert_allclose(losses + rest, ref_losses, rtol=bound, atol=0, err_msg=f"{source}->{target}")
            assert _rel(_trainable(target, second), _trainable("torch", ref_trainer)) <= bound, f"{source}->{target}"


def test_a_wrong_momentum_mapping_is_caught(tiny: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras' SGD momentum without the rescale at a rate change (Keras' own form) leaves torch's curve."""
    _need("torch", "keras")
    import resnet_keras.training

    config, batches = CONFIGS["sgd"], _batches(10)
    weights = random_weights(tiny, seed=3, dtype="float64")
    ref, _ = _run("torch", tiny, config, weights, batches)
    monkeypatch.setattr(resnet_keras.training, "keras_momentum_rescale", lambda _new, _old: 1.0)
    broken, _ = _run("keras", tiny, config, weights, batches)
    assert _rel(_trainable("keras", broken), _trainable("torch", ref)) > 1e3 * tolerance("float64", "cpu", "steps").rel


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_reference_formulas_are_torchs(kind: str) -> None:
    """resnet_spec.optim's numpy reference (the documented canonical form) against torch's optimizers,
    with the rate changing every step."""
    _need("torch")
    import torch

    rng = np.random.default_rng(0)
    config = OptimizerConfig(kind, lr=0.1, momentum=0.9, weight_decay=0.01, schedule="cosine", total_steps=6)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = (
        torch.optim.SGD(list(tensors.values()), lr=0.1, momentum=0.9, weight_decay=0.01)
        if kind == "sgd"
        else torch.optim.AdamW(list(tensors.values()), lr=0.1, weight_decay=0.01)
    )
    state: dict[str, np.ndarray] = {}
    for step in range(6):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        lr = config.lr_at(step)
        reference_step(config, params, grads, state, lr)
        for group in opt.param_groups:
            group["lr"] = lr
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        opt.step()
        for k, t in tensors.items():
            np.testing.assert_allclose(t.detach().numpy(), params[k], rtol=1e-12, atol=1e-14)
    slot = "momentum_buffer" if kind == "sgd" else "exp_avg_sq"
    np.testing.assert_allclose(opt.state[tensors["a"]][slot].numpy(), state[state_key("a", slot)], rtol=1e-12)
    if kind == "adamw":
        assert float(state[STEP_KEY]) == 6


def test_schedules() -> None:
    step = OptimizerConfig("sgd", lr=1.0, schedule="step", step_size=3, gamma=0.5)
    assert [step.lr_at(i) for i in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    cosine = OptimizerConfig("sgd", lr=2.0, schedule="cosine", total_steps=4)
    assert [round(cosine.lr_at(i), 12) for i in (0, 2, 4, 9)] == [2.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        OptimizerConfig("adam")


# ---- resnet train: checkpoints, resume in another framework, bad input ---------------------------------

TRAIN = ["train", "--model", "resnet18", "--size", "8", "--batch", "8", "--dtype", "float64", "--optimizer", "sgd",
         "--lr", str(2**-6), "--momentum", "0.875", "--weight-decay", str(2**-11), "--schedule", "step",
         "--step-size", "3", "--gamma", "0.5"]  # fmt: skip


def _cli(*argv: str) -> int:
    from resnet_tools.cli import main

    return main([*TRAIN, *argv])


def test_train_resume_in_another_framework_continues_the_curve(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """4 steps in torch, saved; 2 more in paddle from that checkpoint = 6 uninterrupted steps in torch."""
    _need("torch", "paddle")
    import json

    from resnet_tools.checkpoints.formats import FORMATS, read_checkpoint
    from resnet_tools.train.checkpoint import load_training_checkpoint

    whole, head, tail = tmp_path / "whole.json", tmp_path / "head.safetensors", tmp_path / "tail.json"
    assert (
        _cli("--backend", "torch", "--steps", "6", "--json", str(whole), "--save", str(tmp_path / "w.safetensors")) == 0
    )
    assert _cli("--backend", "torch", "--steps", "4", "--save", str(head)) == 0
    state = load_training_checkpoint(head)
    assert state.step == 4 and state.config.kind == "sgd" and state.run["backend"] == "torch"
    assert {k.split("@")[1] for k in state.optimizer} == {"momentum_buffer"}
    resumed = tmp_path / "resumed.safetensors"
    assert _cli("--backend", "paddle", "--resume", str(head), "--steps", "2", "--json", str(tail),
                "--save", str(resumed)) == 0  # fmt: skip
    a, b = json.loads(whole.read_text())["records"], json.loads(tail.read_text())["records"]
    assert [r["step"] for r in b] == [4, 5] and [r["lr"] for r in b] == [r["lr"] for r in a[4:]]
    bound = tolerance("float64", "cpu", "steps").rel
    np.testing.assert_allclose([r["loss"]["paddle"] for r in b], [r["loss"]["torch"] for r in a[4:]], rtol=bound)
    final = {k: v for k, v in load_training_checkpoint(resumed).weights.items() if "running" not in k}
    ref = {k: v for k, v in load_training_checkpoint(tmp_path / "w.safetensors").weights.items() if "running" not in k}
    assert max_rel(final, ref) <= bound
    as_weights = read_checkpoint(resumed, FORMATS["safetensors"])  # convert/inspect see a weights file
    assert as_weights.optimizer and "training checkpoint" in as_weights.notes[0]
    from resnet_tools.cli import main

    assert main(["convert", str(resumed), str(tmp_path / "plain.pth")]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "nowhere"], "not a known dataset"),
        (["--data", "{empty}"], "needs at least two class folders"),
        (["--data", "{imageless}"], "holds no images"),
        (["--resume", "{ckpt}", "--model", "resnet34"], "is a resnet18 run; --model says resnet34"),
        (["--resume", "{ckpt}", "--optimizer", "adamw"], "holds sgd state; --optimizer says adamw"),
        (["--resume", "{ckpt}", "--data", "{two}"], "has 10 classes and 1 input channels"),
        (["--resume", "{cut}"], "cannot read"),
        (["--resume", "{plain}"], "no training state"),
        (["--steps", "2", "--epochs", "1"], "not both"),
        (["--batch", "5000"], "larger than the training set"),
        (["--lr", "nan"], "--lr must be a positive number, got nan"),
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--momentum", "inf"], "--momentum must be in [0, 1)"),
        (["--gamma", "nan"], "--gamma must be in (0, 1]"),
        (["--weight-decay", "-1"], "--weight-decay must be zero or positive"),
        (["--steps", "0"], "--steps must be at least 1, got 0"),
        (["--json", "{out}"], "two outputs name the same file"),
        (["--save", "{pt}"], "a training checkpoint is a .safetensors file (weights, optimizer state, step)"),
    ],
)
def test_train_bad_input_is_one_line(extra: list[str], message: str, bad_inputs: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tmp_path = bad_inputs
    places = {k: str(tmp_path / v) for k, v in (("empty", "empty"), ("imageless", "imageless"), ("two", "two"),
              ("ckpt", "run.safetensors"), ("cut", "cut.safetensors"), ("plain", "plain.safetensors"),
              ("out", "out.safetensors"), ("pt", "run.pt"))}  # fmt: skip
    out = tmp_path / "out.safetensors"
    capsys.readouterr()
    assert _cli("--backend", "torch", "--steps", "1", "--save", str(out), *[e.format(**places) for e in extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folders without classes or images, a 2-class folder, a 1-step checkpoint, a cut copy, a plain copy."""
    _need("torch")
    from PIL import Image

    from resnet_tools.cli import main

    tmp_path = tmp_path_factory.mktemp("bad")
    (tmp_path / "empty").mkdir()
    for name in ("a", "b"):
        (tmp_path / "imageless" / name).mkdir(parents=True)
        (tmp_path / "two" / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (9, 7), (i * 40, 0, 0)).save(tmp_path / "two" / name / f"{i}.png")
    ckpt = tmp_path / "run.safetensors"
    assert _cli("--backend", "torch", "--steps", "1", "--save", str(ckpt)) == 0
    (tmp_path / "cut.safetensors").write_bytes(ckpt.read_bytes()[:3000])
    assert main(["convert", str(ckpt), str(tmp_path / "plain.safetensors")]) == 0
    return tmp_path


def test_interrupted_training_keeps_the_last_complete_checkpoint(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _need("torch")
    import resnet_torch
    from resnet_tools.train.checkpoint import load_training_checkpoint

    real_step, calls = resnet_torch.Trainer.step, []

    def step(self: Any, x: np.ndarray, labels: np.ndarray, lr: float) -> dict[str, float]:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C during the 4th step
        return real_step(self, x, labels, lr)

    monkeypatch.setattr(resnet_torch.Trainer, "step", step)
    ckpt = tmp_path / "run.safetensors"
    assert _cli("--backend", "torch", "--steps", "6", "--save", str(ckpt), "--save-every", "2") == 130
    assert load_training_checkpoint(ckpt).step == 2  # the last complete save, whole
    assert not list(tmp_path.glob(".*resnet-tmp*"))


# ---- resnet evaluate: the short certificate --------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resnet18 trained on the digits in torch (float32, 8x8, 40 steps): a model that really classifies."""
    _need("torch")
    from resnet_tools.cli import main

    folder = tmp_path_factory.mktemp("trained")
    ckpt = folder / "digits.safetensors"
    argv = ["train", "--model", "resnet18", "--backend", "torch", "--size", "8", "--batch", "32", "--steps", "40",
            "--lr", "0.05", "--save", str(ckpt)]  # fmt: skip
    assert main(argv) == 0
    return ckpt


def test_short_certificate_same_accuracy_after_conversion(trained: Path, tmp_path: Path) -> None:
    """Trained in torch, converted to paddle's and Keras' files: the same top-1 everywhere, and every test
    image gets the same class in every framework (the full certificate: docs/generated/certificate.md)."""
    _need("torch", "paddle", "keras")
    from resnet_tools.checkpoints.convert import convert
    from resnet_tools.train.evaluate import evaluate

    seen: list[tuple[str, int, int]] = []
    source = evaluate({"torch": LOADED["torch"]}, trained, "digits", on_images=lambda *a: seen.append(a))
    assert source.top1["torch"] > 0.8 and source.images == 360  # it learned (chance: 10%)
    assert seen == [("torch", 128, 360), ("torch", 256, 360), ("torch", 360, 360)]  # the progress bar's feed
    for target, ext in (("paddle", ".pdparams"), ("keras", ".weights.h5"), ("flax", ".msgpack")):
        if target not in LOADED:
            continue
        native = tmp_path / f"digits{ext}"
        convert(trained, native)
        result = evaluate({"torch": LOADED["torch"], target: LOADED[target]}, native, "digits", size=8)
        assert result.top1[target] == result.top1["torch"] == source.top1["torch"]
        assert result.agreement[f"torch vs {target}"] >= 0.999
        assert result.max_logit_diff[f"torch vs {target}"] < 1e-3


def test_evaluate_cli_and_its_errors(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("torch")
    import json

    from PIL import Image

    from resnet_tools.cli import main

    out = tmp_path / "eval.json"
    assert main(["evaluate", "--weights", str(trained), "--backends", "torch", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["images"] == 360 and 0.8 < doc["top1"]["torch"] <= doc["top5"]["torch"] <= 1
    assert "8px" in doc["data"]  # digits at the size the run trained at (from the checkpoint)
    two = tmp_path / "two"
    for name in ("a", "b"):
        (two / name).mkdir(parents=True)
        Image.new("RGB", (9, 7)).save(two / name / "x.png")
    capsys.readouterr()
    for argv, message in (
        (["--data", str(two)], "has 2 class folders; the checkpoint has 10 classes"),
        (["--data", "nowhere"], "not a known dataset"),
        (["--json", str(out)], "exists; pass --force"),
    ):
        assert main(["evaluate", "--weights", str(trained), "--backends", "torch", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_resume_continues_the_recorded_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--resume without flags trains on with the run's batch, size, seed and dtype, for the steps it has left;
    a flag that differs from the record is printed as an override; a finished run says so in one line."""
    from resnet_tools.cli import main
    from resnet_tools.train.checkpoint import load_training_checkpoint

    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(["train", "--model", "resnet18", "--backend", "torch", "--steps", "2", "--batch", "16", "--size", "8",
                 "--seed", "3", "--save", str(first)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["train", "--resume", str(first), "--backend", "torch"]) == 2
    assert "that run is complete (2 of 2 steps); give --steps N" in capsys.readouterr().err
    assert main(["train", "--resume", str(first), "--backend", "torch", "--steps", "1", "--save", str(second)]) == 0
    out = capsys.readouterr().out
    assert "batch 16" in out and "seed 3" in out and "steps 3-3" in out and "resuming with" not in out
    run = load_training_checkpoint(second).run
    assert (run["batch"], run["size"], run["seed"]) == (16, 8, 3)
    assert main(["train", "--resume", str(second), "--backend", "torch", "--steps", "1", "--batch", "8", "--force",
                 "--save", str(second)]) == 0  # fmt: skip
    assert "resuming with --batch 8 (the run had 16)" in capsys.readouterr().out


def test_a_second_run_with_the_same_save_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Two runs writing one --save would silently replace one another: while a run holds it (its lock beside the
    file names a live pid, here this test's), another is refused in one line, nothing written; a lock whose pid is
    gone (a killed run) is stale, taken over and removed at the end."""
    import os
    import subprocess
    import sys

    from resnet_tools.cli import main

    save = tmp_path / "same.safetensors"
    lock = tmp_path / ".same.safetensors.resnet-lock"
    lock.write_text(str(os.getpid()))
    argv = ["train", "--model", "resnet18", "--backend", "torch", "--steps", "1", "--batch", "8", "--size", "8",
            "--save", str(save)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"another training run (pid {os.getpid()}) is writing" in err and len(err.strip().splitlines()) == 1, err
    assert not save.exists() and lock.read_text() == str(os.getpid())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(dead.stdout.strip())  # that process has exited: its lock is stale
    assert main(argv) == 0
    assert save.exists() and not lock.exists()
