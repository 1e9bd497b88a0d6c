"""Lossless conversion: bitwise export/import across backends and file formats; clean failures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import WeightsError, canonical_table, get_spec, list_models
from resnet_spec.random_weights import random_weights
from resnet_tools.checkpoints.convert import convert, inspect_checkpoint
from resnet_tools.checkpoints.formats import FORMATS, format_for, read_checkpoint
from resnet_tools.cli import main

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs all three backends")
WRITABLE = {
    "safetensors": ".safetensors",
    "npz": ".npz",
    "torch": ".pth",
    "paddle": ".pdparams",
    "keras": ".weights.h5",
}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", list_models())
def test_export_import_bitwise_every_pair(name: str) -> None:
    weights = random_weights(get_spec(name), seed=11)
    exported = {}
    for b, mod in LOADED.items():
        exported[b] = mod.export_weights(mod.import_weights(mod.create_model(name), weights))
        assert _same(exported[b], weights), b
    for src in LOADED:
        for dst, mod in LOADED.items():
            if src != dst:
                assert _same(mod.export_weights(mod.import_weights(mod.create_model(name), exported[src])), weights)


@pytest.mark.parametrize("name", list_models())
def test_file_round_trip_bitwise_every_format(name: str, tmp_path: Path) -> None:
    spec = get_spec(name, num_classes=10)
    weights = random_weights(spec, seed=5)
    src = tmp_path / "src.safetensors"
    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    write_checkpoint(Checkpoint(weights), spec, src, FORMATS["safetensors"])
    previous = src
    for fmt, ext in WRITABLE.items():
        dst = tmp_path / f"step_{fmt}{ext}"
        result = convert(previous, dst)  # chain: every file is read back by the next conversion
        assert result.spec.name == name and result.spec.num_classes == 10
        assert _same(read_checkpoint(dst, format_for(dst)).weights, weights), fmt
        previous.unlink()  # keep disk use at two checkpoints (resnet152 in five formats is ~1.5 GB)
        previous = dst


def test_import_checks_everything_first_and_leaves_model_untouched() -> None:
    mod = LOADED["paddle"]
    model = mod.create_model("resnet18")
    before = mod.export_weights(model)
    bad = random_weights(get_spec("resnet18"), seed=2)
    bad.pop("layer1.0.bn1.running_var")
    bad["layer2.0.conv1.weight"] = bad["layer2.0.conv1.weight"][:, :10]
    bad["fc.bias"] = bad["fc.bias"].astype("int64")
    bad["layer9.0.conv1.weight"] = np.zeros(3, "float32")
    with pytest.raises(WeightsError) as exc:
        mod.import_weights(model, bad)
    msg = str(exc.value)
    for fragment in (
        "missing keys (1): layer1.0.bn1.running_var (layer1.0.bn1._variance)",
        "unexpected keys (1): layer9.0.conv1.weight",
        "layer2.0.conv1.weight (layer2.0.conv1.weight): expected [128, 64, 3, 3], got [128, 10, 3, 3]",
        "fc.bias (fc.bias): int64 is not a floating-point type",
    ):
        assert fragment in msg
    assert _same(mod.export_weights(model), before)


def test_non_strict_import_fills_what_matches() -> None:
    mod = LOADED["keras"]
    spec = get_spec("resnet18")
    weights = random_weights(spec, seed=8)
    partial = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    model = mod.import_weights(mod.create_model("resnet18"), partial, strict=False)
    out = mod.export_weights(model)
    assert all(np.array_equal(out[k], v) for k, v in partial.items())


def _torch_checkpoint(tmp_path: Path, name: str = "resnet18", wrap: str | None = None, prefix: str = "") -> Path:
    import torch

    rt = LOADED["torch"]
    model = rt.import_weights(rt.create_model(name), random_weights(get_spec(name), seed=9))
    state = {prefix + k: v for k, v in model.state_dict().items()}
    path = tmp_path / f"{name}.pth"
    torch.save({wrap: state, "epoch": 3} if wrap else state, path)
    return path


@pytest.mark.parametrize(("wrap", "prefix"), [(None, ""), ("state_dict", ""), ("model_state_dict", "module.")])
def test_torch_training_wrappers(tmp_path: Path, wrap: str | None, prefix: str) -> None:
    path = _torch_checkpoint(tmp_path, wrap=wrap, prefix=prefix)
    info = inspect_checkpoint(path)
    assert info.spec.name == "resnet18" and info.trainable == 11_689_512
    assert info.dtypes == {"float32": len(canonical_table(get_spec("resnet18")))}


def test_torch_file_loads_like_torchvision_strict(tmp_path: Path) -> None:
    """A file we write has torchvision's exact key set, num_batches_tracked included (strict=True)."""
    import torch

    src = _torch_checkpoint(tmp_path, "resnet50")
    dst = tmp_path / "out.pth"
    convert(src, tmp_path / "mid.safetensors")
    convert(tmp_path / "mid.safetensors", dst)
    state = torch.load(dst, weights_only=True)
    fresh = LOADED["torch"].create_model("resnet50")
    assert list(state) == list(fresh.state_dict())
    fresh.load_state_dict(state, strict=True)


def test_verify_reports_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _torch_checkpoint(tmp_path)
    assert main(["convert", str(src), str(tmp_path / "x.weights.h5"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verified torch (source) vs keras (written file)" in out and "max rel" in out


def test_verify_failure_keeps_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_spec import naming

    src = _torch_checkpoint(tmp_path, "resnet50")
    dst = tmp_path / "broken.pdparams"
    # Sabotage the writer's layout map: paddle's fc.weight written without its transpose.
    monkeypatch.setitem(naming._TO_NATIVE["paddle"], ("fc", "weight"), lambda a: a.reshape(a.shape[::-1]))
    assert main(["convert", str(src), str(dst), "--verify"]) == 1
    assert not dst.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _corrupt(tmp_path: Path) -> Path:
    good = tmp_path / "good.safetensors"
    convert(_torch_checkpoint(tmp_path), good)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:5000])
    return bad


def _wrong_shape(tmp_path: Path) -> Path:
    import torch

    path = _torch_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    state["layer1.0.conv1.weight"] = state["layer1.0.conv1.weight"][:, :, :1, :1].contiguous()
    torch.save(state, path)
    return path


EXTRA_34_OVER_18 = len(canonical_table(get_spec("resnet34"))) - len(canonical_table(get_spec("resnet18")))
BAD_INPUTS = {
    "unknown model": (lambda p: _torch_checkpoint(p), ["--model", "resnet5000"], "unknown model 'resnet5000'"),
    "wrong architecture": (
        lambda p: _torch_checkpoint(p),
        ["--model", "resnet34"],
        f"does not fit resnet34: it is a resnet18 checkpoint; missing ({EXTRA_34_OVER_18})",
    ),
    "truncated file": (_corrupt, [], "cannot read"),
    "not a checkpoint": (lambda p: (p / "junk.pth").write_bytes(b"not a pickle") and p / "junk.pth", [], "cannot read"),
    "missing file": (lambda p: p / "nope.pth", [], "no such file"),
    "unknown extension": (lambda p: _torch_checkpoint(p), ["--to", None], "unknown extension"),
    "mismatched shapes": (_wrong_shape, [], "wrong shape (1): layer1.0.conv1.weight [64, 64, 1, 1] (expected"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_one_line_exit_2_no_output(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, extra, fragment = BAD_INPUTS[case]
    src = make(tmp_path)
    dst = tmp_path / ("out.onnx" if extra == ["--to", None] else "out.safetensors")
    extra = [] if extra == ["--to", None] else extra
    before = set(tmp_path.iterdir())
    assert main(["convert", str(src), str(dst), *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    assert "Traceback" not in err and err.count("\n") <= 2
    assert set(tmp_path.iterdir()) == before  # nothing written, no temp file left behind


def test_refuses_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _torch_checkpoint(tmp_path)
    dst = tmp_path / "x.npz"
    dst.write_bytes(b"keep me")
    assert main(["convert", str(src), str(dst)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and dst.read_bytes() == b"keep me"
    assert main(["convert", str(src), str(dst), "--force"]) == 0
    assert inspect_checkpoint(dst).spec.name == "resnet18"


def test_unreadable_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _torch_checkpoint(tmp_path)
    os.chmod(src, 0)
    if os.access(src, os.R_OK):  # root ignores permissions: make the path a folder instead
        src = tmp_path / "folder.pth"
        src.mkdir()
    assert main(["convert", str(src), str(tmp_path / "x.npz")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_inspect_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "r.npz"
    convert(_torch_checkpoint(tmp_path), dst)
    assert main(["inspect", str(dst)]) == 0
    out = capsys.readouterr().out
    assert "format:    npz" in out and "model:     resnet18" in out and "11,689,512 trainable" in out
    assert "source_framework=torch" in out


def test_converted_file_mode_follows_umask(tmp_path: Path) -> None:
    dst = tmp_path / "m.safetensors"
    convert(_torch_checkpoint(tmp_path), dst)
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask


class _Payload:
    """A pickle that runs code when loaded: it would create the file named in ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    ("ext", "fragment"), [(".pdparams", "refusing to load: it asks to run"), (".pth", "cannot read")]
)
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_malicious_pickle_runs_nothing(
    ext: str, fragment: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """paddle.load / torch.load(weights_only=False) would run the payload; ours refuse it, one line, exit 2."""
    import pickle

    import torch

    marker = tmp_path / "pwned"
    src = tmp_path / f"evil{ext}"
    weights = {"conv1.weight": np.zeros((64, 3, 7, 7), "float32"), "evil": _Payload(marker)}
    if ext == ".pth":
        torch.save(weights, src)
    else:
        src.write_bytes(pickle.dumps(weights, protocol=4))
    argv = ["inspect", str(src)] if command == "inspect" else ["convert", str(src), str(tmp_path / "o.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err, err
    assert not marker.exists() and not (tmp_path / "o.npz").exists()


def test_paddle_checkpoint_read_without_unpickling_code(tmp_path: Path) -> None:
    """The restricted reader returns exactly what paddle.load does, for paddle.save's own files."""
    import paddle

    from resnet_tools.checkpoints.formats import read_paddle

    spec = get_spec("resnet18")
    model = LOADED["paddle"].import_weights(LOADED["paddle"].create_model(spec), random_weights(spec, seed=4))
    path = tmp_path / "r18.pdparams"
    paddle.save(model.state_dict(), str(path))
    ours = read_paddle(path, None).weights
    theirs = LOADED["paddle"].export_weights(model)
    assert _same(ours, theirs)


def test_safetensors_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    src = _torch_checkpoint(tmp_path)
    outs = [tmp_path / f"run{i}.safetensors" for i in range(3)]
    for out in outs:
        convert(src, out)
    assert len({out.read_bytes() for out in outs}) == 1
    assert _same(read_checkpoint(outs[0], format_for(outs[0])).weights, read_checkpoint(src, format_for(src)).weights)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.pth", b"", "empty or truncated file"),
        ("noise.pth", bytes(range(256)) * 3, "not a plain tensor file"),
        ("noise.npz", b"\x80\x04" + bytes(range(256)), "not a plain tensor file"),
    ],
)
def test_unreadable_files_never_advise_unsafe_loading(
    name: str, content: bytes, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err, err
    assert "weights_only" not in err and "allow_pickle" not in err


def test_exclusive_commit_never_replaces_a_file_that_appeared(tmp_path: Path) -> None:
    from resnet_tools.core.errors import OutputError
    from resnet_tools.core.files import commit

    tmp, dst = tmp_path / ".x.tmp.npz", tmp_path / "x.npz"
    tmp.write_bytes(b"mine")
    dst.write_bytes(b"theirs")  # another run created it after our existence check
    with pytest.raises(OutputError, match="created by someone else"):
        commit(tmp, dst, exclusive=True)
    assert dst.read_bytes() == b"theirs"


@pytest.mark.parametrize("kind", ["folder", "dangling symlink"])
def test_destination_folder_or_dangling_link(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _torch_checkpoint(tmp_path)
    dst = tmp_path / "out.npz"
    if kind == "folder":
        dst.mkdir()
    else:
        dst.symlink_to(tmp_path / "nowhere" / "x.npz")
    assert main(["convert", str(src), str(dst), *(["--force"] if kind == "folder" else [])]) == 2
    err = capsys.readouterr().err
    assert ("it is a folder" if kind == "folder" else "exists; pass --force") in err and "Traceback" not in err
    assert dst.is_dir() if kind == "folder" else dst.is_symlink()


def test_sigterm_leaves_no_temp_file(tmp_path: Path) -> None:
    """A conversion killed with SIGTERM (timeout, a cancelled CI job) removes its hidden temp file."""
    import signal
    import subprocess
    import sys
    import time

    src = _torch_checkpoint(tmp_path)
    script = (
        "import sys, time\n"
        "import resnet_tools.checkpoints.formats as f\n"
        "real = f.write_npz\n"
        "def slow(*a, **k):\n"
        "    real(*a, **k)\n"
        "    time.sleep(120)\n"
        "import dataclasses\n"
        "f.FORMATS['npz'] = dataclasses.replace(f.FORMATS['npz'], write=slow)\n"
        "from resnet_tools.cli import main\n"
        f"sys.exit(main(['convert', {str(src)!r}, {str(tmp_path / 'out.npz')!r}]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".out.*")):
        time.sleep(0.2)
    assert list(tmp_path.glob(".out.*")), "the temp file never appeared"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert not list(tmp_path.glob(".out.*")) and not (tmp_path / "out.npz").exists()
