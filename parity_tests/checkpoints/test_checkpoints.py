"""Lossless conversion: bitwise export/import across backends and file formats; clean failures."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests.conftest import ALL_FRAMEWORKS_AT_ONCE, LOADED, zoo_params
from resnet_spec import WeightsError, canonical_table, get_spec
from resnet_spec.random_weights import random_weights
from resnet_tools.checkpoints.convert import convert, inspect_checkpoint, resolve_spec
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


@ALL_FRAMEWORKS_AT_ONCE
@pytest.mark.parametrize("name", zoo_params())
def test_export_import_bitwise_every_pair(name: str) -> None:
    """Every framework's export, imported into every other (one model per framework, each import replacing every
    tensor: an import is strict), exports the weights bitwise."""
    weights = random_weights(get_spec(name), seed=11)
    models = {b: mod.create_model(name) for b, mod in LOADED.items()}
    exported = {}
    for b, mod in LOADED.items():
        exported[b] = mod.export_weights(mod.import_weights(models[b], weights))
        assert _same(exported[b], weights), b
    for src in LOADED:
        for dst, mod in LOADED.items():
            if src != dst:
                assert _same(mod.export_weights(mod.import_weights(models[dst], exported[src])), weights), (src, dst)


@ALL_FRAMEWORKS_AT_ONCE
@pytest.mark.parametrize("name", zoo_params())
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
    from resnet_spec import frameworks

    src = _torch_checkpoint(tmp_path, "resnet50")
    dst = tmp_path / "broken.pdparams"
    # Sabotage the writer's layout map: paddle's fc.weight written without its transpose.
    to_native = dict(frameworks.PADDLE.to_native) | {("fc", "weight"): lambda a: a.reshape(a.shape[::-1])}
    monkeypatch.setitem(frameworks.CONVENTIONS, "paddle", dataclasses.replace(frameworks.PADDLE, to_native=to_native))
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


def _npz(tmp_path: Path, name: str, edit: object = None, **extra: np.ndarray) -> Path:
    """A resnet18 .npz whose weights ``edit(weights)`` changed, with ``extra`` entries."""
    weights = random_weights(get_spec("resnet18"), seed=2)
    if callable(edit):
        edit(weights)
    path = tmp_path / name
    np.savez(path, **weights, **extra)
    return path


def _nan(weights: dict[str, np.ndarray]) -> None:
    weights["layer2.0.bn1.running_var"] = weights["layer2.0.bn1.running_var"].copy()
    weights["layer2.0.bn1.running_var"][3] = np.inf
    weights["fc.bias"] = np.full_like(weights["fc.bias"], np.nan)


def _legacy_h5(tmp_path: Path, break_it: str) -> Path:
    import h5py

    path = tmp_path / "legacy.h5"
    if break_it in ("external", "keras3 external"):  # another file a link could read
        with h5py.File(tmp_path / "other.h5", "w") as other:
            other.create_dataset("data", data=np.ones((7, 7, 3, 64), "float32"))
    if break_it == "keras3 external":
        path = tmp_path / "linked.weights.h5"
        with h5py.File(path, "w") as f:
            f.create_group("layers").create_group("conv2d")["vars"] = h5py.ExternalLink("other.h5", "/")
        return path
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv1_conv", b"probs"]
        g = f.create_group("conv1_conv")
        g.attrs["weight_names"] = [b"conv1_conv/kernel:0"]
        if break_it == "external":
            g["conv1_conv/kernel:0"] = h5py.ExternalLink("other.h5", "/data")
            return path
        if break_it == "group":
            g.create_group("conv1_conv/kernel:0")
            return path
        g.create_dataset("conv1_conv/kernel:0", data=np.zeros((7, 7, 3, 64), "float32"))
        if break_it == "layer":
            return path  # "probs" is listed but absent
        p = f.create_group("probs")
        if break_it == "weight_names":
            p.create_dataset("probs/kernel:0", data=np.zeros((2048, 1000), "float32"))
    return path


def _pth_named_npz(tmp_path: Path) -> Path:
    path = tmp_path / "really_torch.npz"
    path.write_bytes(_torch_checkpoint(tmp_path).read_bytes())
    (tmp_path / "resnet18.pth").unlink()
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
    "npz metadata not JSON": (
        lambda p: _npz(p, "m.npz", __metadata__=np.array("{oops")),
        [],
        "its __metadata__ entry is not JSON",
    ),
    "npz metadata a list": (
        lambda p: _npz(p, "m.npz", __metadata__=np.array("[1, 2]")),
        [],
        "its __metadata__ entry is a JSON list, not an object",
    ),
    "scalar weight": (
        lambda p: _npz(p, "s.npz", lambda w: w.update({"fc.weight": np.array(3.0, "float32")})),
        [],
        "fc.weight is a scalar",
    ),
    "NaN and inf weights": (lambda p: _npz(p, "n.npz", _nan), [], "holds NaN/inf values in 2 tensor(s)"),
    "pth named npz": (_pth_named_npz, [], "is a torch checkpoint (a zip with data.pkl), not an npz"),
    "legacy h5 missing layer": (lambda p: _legacy_h5(p, "layer"), [], "layer_names lists 'probs', which the file"),
    "legacy h5 without weight_names": (lambda p: _legacy_h5(p, "weight_names"), [], "has no weight_names attribute"),
    "legacy h5 external link": (lambda p: _legacy_h5(p, "external"), [], "links are never followed"),
    "legacy h5 weight is a group": (lambda p: _legacy_h5(p, "group"), [], "is a group, not an array"),
    "keras 3 h5 external link": (lambda p: _legacy_h5(p, "keras3 external"), [], "links are never followed"),
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
    ("ext", "fragment"),
    [(".pdparams", "refusing to load: it asks to run"), (".pth", "cannot read"), (".legacy.pth", "cannot read")],
)
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_malicious_pickle_runs_nothing(
    ext: str, fragment: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """paddle.load / torch.load(weights_only=False) would run the payload (checked last: the marker appears);
    ours refuse it, one line, exit 2, and the marker file is never created."""
    import pickle

    import torch

    marker = tmp_path / "pwned"
    src = tmp_path / f"evil{ext}"
    weights = {"conv1.weight": np.zeros((64, 3, 7, 7), "float32"), "evil": _Payload(marker)}
    if ext.endswith(".pth"):  # the zip format, and the legacy (pre-1.6) pickle stream
        torch.save(weights, src, _use_new_zipfile_serialization=ext == ".pth")
    else:
        src.write_bytes(pickle.dumps(weights, protocol=4))
    argv = ["inspect", str(src)] if command == "inspect" else ["convert", str(src), str(tmp_path / "o.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err, err
    assert not marker.exists() and not (tmp_path / "o.npz").exists()
    if ext.endswith(".pth"):  # the payload is live: an unrestricted load runs it
        torch.load(src, weights_only=False)
    else:
        with open(src, "rb") as fh:
            pickle.load(fh)
    assert marker.exists()


def test_paddle_checkpoint_read_without_unpickling_code(tmp_path: Path) -> None:
    """The restricted reader returns exactly what paddle.load does, for paddle.save's own files."""
    import paddle

    spec = get_spec("resnet18")
    model = LOADED["paddle"].import_weights(LOADED["paddle"].create_model(spec), random_weights(spec, seed=4))
    path = tmp_path / "r18.pdparams"
    paddle.save(model.state_dict(), str(path))
    ours = read_checkpoint(path, FORMATS["paddle"]).weights
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
        "real = f.FORMATS['npz'].write\n"
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


def test_nonfinite_weights_convert_only_when_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = _npz(tmp_path, "n.npz", _nan), tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(dst), "--allow-nonfinite"]) == 0
    out = capsys.readouterr().out
    assert "NaN/inf values copied as they are from" in out and "fc.bias (1000)" in out
    assert np.isnan(read_checkpoint(dst, format_for(dst)).weights["fc.bias"]).all()
    assert main(["inspect", str(dst)]) == 0
    assert "NaN/inf:" in capsys.readouterr().out


@pytest.mark.parametrize("dst_ext", [".weights.h5", ".pth", ".pdparams", ".safetensors"])
def test_float64_keeps_its_precision_and_is_verified_in_it(
    dst_ext: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """float64 weights come back float64 from every writable format, and --verify runs both sides in
    float64 (a float32 detour would differ by ~1e-7, far over the float64 bound)."""
    src = _npz(tmp_path, "f64.npz", lambda w: w.update({k: v.astype("float64") for k, v in w.items()}))
    dst = tmp_path / f"out{dst_ext}"
    assert main(["convert", str(src), str(dst), "--verify"]) == 0
    assert "in float64: max abs" in capsys.readouterr().out
    back = read_checkpoint(dst, format_for(dst)).weights
    assert _same(back, read_checkpoint(src, format_for(src)).weights)


def test_verify_catches_a_float64_source_written_in_float32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_tools.checkpoints import keras_h5

    src = _npz(tmp_path, "f64.npz", lambda w: w.update({k: v.astype("float64") for k, v in w.items()}))
    honest = keras_h5.write

    def lossy(weights: dict, spec: object, path: Path) -> None:  # sabotage: float64 dropped
        honest({k: np.asarray(v).astype("float32") for k, v in weights.items()}, spec, path)

    monkeypatch.setattr(keras_h5, "write", lossy)
    dst = tmp_path / "out.weights.h5"
    assert main(["convert", str(src), str(dst), "--verify"]) == 1
    assert not dst.exists()


def test_float16_keeps_its_dtype_in_keras_files(tmp_path: Path) -> None:
    src = _npz(tmp_path, "f16.npz", lambda w: w.update({k: v.astype("float16") for k, v in w.items()}))
    dst = tmp_path / "out.weights.h5"
    assert main(["convert", str(src), str(dst), "--verify"]) == 0
    assert _same(read_checkpoint(dst, format_for(dst)).weights, read_checkpoint(src, format_for(src)).weights)


KERAS_FILE_CASES = [
    ("resnet18", {}),
    ("resnet50", {}),
    ("resnext50_32x4d", {"num_classes": 10}),
    ("resnet50v1", {}),
    ("resnet18v2", {}),
    ("resnet50v2", {"num_classes": 0}),
    ("resnet18", {"stem": "cifar", "in_channels": 1}),
]


@pytest.mark.parametrize(("name", "options"), KERAS_FILE_CASES, ids=lambda c: str(c))
def test_keras_files_without_keras_are_what_keras_writes_and_reads(name: str, options: dict, tmp_path: Path) -> None:
    """The h5py writer and reader (no Keras import) agree with Keras itself: Keras loads our file into the
    same weights, we read Keras' own file into the same weights, and every variable sits at the path,
    shape and dtype Keras uses (Keras adds only empty groups for layers without variables)."""
    import h5py

    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    rk = LOADED["keras"]
    spec = get_spec(name, **options)
    weights = random_weights(spec, seed=6)
    ours, theirs = tmp_path / "ours.weights.h5", tmp_path / "theirs.weights.h5"
    write_checkpoint(Checkpoint(weights), spec, ours, FORMATS["keras"])
    model = rk.create_model(spec)
    model.load_weights(str(ours))
    assert _same(rk.export_weights(model), weights)
    rk.import_weights(rk.create_model(spec), weights).save_weights(str(theirs))
    assert _same(read_checkpoint(theirs, FORMATS["keras"], name).weights, weights)

    def datasets(path: Path) -> dict[str, tuple]:
        found: dict[str, tuple] = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda n, o: found.update({n: (o.shape, o.dtype)}) if isinstance(o, h5py.Dataset) else None)
        return found

    assert datasets(ours) == datasets(theirs)


def test_keras_file_conversion_imports_no_framework(tmp_path: Path) -> None:
    import subprocess
    import sys

    src = _npz(tmp_path, "w.npz")
    dst = tmp_path / "w.weights.h5"
    back = tmp_path / "back.safetensors"
    code = (
        "import sys\nfrom resnet_tools.checkpoints.convert import convert\n"
        f"convert({str(src)!r}, {str(dst)!r})\nconvert({str(dst)!r}, {str(back)!r})\n"
        "bad = [m for m in ('keras', 'tensorflow', 'torch', 'paddle', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _same(read_checkpoint(back, format_for(back)).weights, read_checkpoint(src, format_for(src)).weights)


def test_bfloat16_torch_checkpoint_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    path = _torch_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    torch.save({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}, path)
    assert main(["inspect", str(path)]) == 0
    assert "bfloat16 tensor(s) read as float32 (exact" in capsys.readouterr().out


def test_wrong_model_for_keras_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h5 = tmp_path / "r18.weights.h5"
    convert(_torch_checkpoint(tmp_path), h5)
    capsys.readouterr()
    assert main(["inspect", str(h5), "--model", "resnet50"]) == 2
    err = capsys.readouterr().err
    assert "does not fit resnet50: it is a resnet18 checkpoint" in err
    assert "Example error message" not in err and err.count("\n") <= 2


def test_torch_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    src = _npz(tmp_path, "w.npz")
    outs = [tmp_path / f"run{i}.pth" for i in range(2)]
    for out in outs:
        convert(src, out)
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_stale_temp_files_of_ours_are_cleaned_on_the_next_write(tmp_path: Path) -> None:
    """A conversion killed by SIGKILL leaves its temp file; the next write to that folder removes it when
    its writer is gone. A live writer's temp file and other hidden files are left alone."""
    import subprocess
    import sys

    from resnet_tools.core.files import TEMP_MARK

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = tmp_path / f".big{TEMP_MARK}{dead_pid}-abc123.weights.h5"
    live = tmp_path / f".other{TEMP_MARK}{os.getpid()}-def456.npz"
    mine = tmp_path / ".my-hidden-notes.txt"
    for f in (stale, live, mine):
        f.write_bytes(b"x" * 100)
    convert(_npz(tmp_path, "w.npz"), tmp_path / "out.safetensors")
    assert not stale.exists() and live.exists() and mine.exists()


def test_pdparams_written_without_paddle_is_what_paddle_reads(tmp_path: Path) -> None:
    """The .pdparams writer imports no paddle; paddle.load + set_state_dict give the same model as a file
    paddle.save wrote, and the restricted unpickler reads it back bitwise."""
    import subprocess
    import sys

    import paddle

    spec = get_spec("resnet50", num_classes=7)
    weights = random_weights(spec, seed=8)
    src = tmp_path / "w.npz"
    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    write_checkpoint(Checkpoint(weights), spec, src, FORMATS["npz"])
    ours = tmp_path / "ours.pdparams"
    code = (
        "import sys\nfrom resnet_tools.checkpoints.convert import convert\n"
        f"convert({str(src)!r}, {str(ours)!r})\n"
        "assert 'paddle' not in sys.modules and 'tensorflow' not in sys.modules, sorted(sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rp = LOADED["paddle"]
    by_paddle = tmp_path / "paddle.pdparams"
    paddle.save(rp.import_weights(rp.create_model(spec), weights).state_dict(), str(by_paddle))
    models = []
    for f in (ours, by_paddle):
        model = rp.create_model(spec)
        missing, unexpected = model.set_state_dict(paddle.load(str(f)))
        assert not missing and not unexpected
        models.append(rp.export_weights(model))
    assert _same(models[0], models[1]) and _same(models[0], weights)
    assert _same(read_checkpoint(ours, format_for(ours)).weights, weights)


def test_keras_file_without_our_stamp_is_identified_by_its_shapes(tmp_path: Path) -> None:
    """A file Keras wrote itself names no model: its layer names, or without them its variable shapes in
    Keras' layer order, single out the zoo model and head."""
    import h5py

    rk = LOADED["keras"]
    spec = get_spec("resnext50_32x4d", num_classes=7)
    weights = random_weights(spec, seed=3)
    path = tmp_path / "plain.weights.h5"
    rk.import_weights(rk.create_model(spec), weights).save_weights(str(path))
    ckpt = read_checkpoint(path, FORMATS["keras"])  # by the layer names Keras records
    assert resolve_spec(ckpt, None) == spec and _same(ckpt.weights, weights)
    with h5py.File(path, "r+") as f:  # older Keras 3 records no names: Keras' layer order and the shapes decide
        f.visititems(lambda _n, o: o.attrs.__delitem__("name") if "name" in o.attrs else None)
    ckpt = read_checkpoint(path, FORMATS["keras"])
    assert ckpt.spec == spec and _same(ckpt.weights, weights)


# ---- streaming: tensors go from reader to writer one at a time (issue 16) ------------------------------

STREAMED_SOURCES = [".npz", ".safetensors", ".weights.h5"]  # formats whose tensors stay in the file until read


@pytest.fixture(scope="module")
def resnet50_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    folder = tmp_path_factory.mktemp("r50")
    spec = get_spec("resnet50")
    weights = random_weights(spec, seed=11)
    files = {}
    for ext in [*STREAMED_SOURCES, ".pdparams"]:
        files[ext] = folder / f"src{ext}"
        write_checkpoint(Checkpoint(weights), spec, files[ext], format_for(files[ext]))
    return files


def _traced_peak(run: object) -> int:
    """Peak bytes allocated (numpy data included: numpy reports to tracemalloc) while ``run()`` runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        run()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("src_ext", STREAMED_SOURCES)
@pytest.mark.parametrize("dst_ext", [".safetensors", ".npz", ".pdparams", ".weights.h5"])
def test_conversion_holds_a_few_tensors_not_the_checkpoint(
    src_ext: str, dst_ext: str, resnet50_files: dict[str, Path], tmp_path: Path
) -> None:
    if src_ext == dst_ext:
        pytest.skip("same format")
    src, dst = resnet50_files[src_ext], tmp_path / f"out{dst_ext}"
    size = src.stat().st_size
    peak = _traced_peak(lambda: convert(src, dst))
    # resnet50's largest tensors are ~9 MB of ~100: a reader + writer pair holds two or three of them
    assert peak < 0.35 * size, f"{src_ext} -> {dst_ext}: peak {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    assert _same(read_checkpoint(dst, format_for(dst)).weights, read_checkpoint(src, format_for(src)).weights)


def test_pickled_source_holds_one_copy(resnet50_files: dict[str, Path], tmp_path: Path) -> None:
    """A .pdparams is one pickle (read whole): the canonical copy replaces it tensor by tensor."""
    src = resnet50_files[".pdparams"]
    peak = _traced_peak(lambda: convert(src, tmp_path / "out.safetensors"))
    assert peak < 1.25 * src.stat().st_size


def test_streamed_writers_write_what_eager_ones_do(resnet50_files: dict[str, Path], tmp_path: Path) -> None:
    from resnet_tools.checkpoints.formats import write_checkpoint
    from resnet_tools.checkpoints.lazy import LazyArray

    src = resnet50_files[".npz"]
    lazy = read_checkpoint(src, FORMATS["npz"], lazy=True)
    eager = read_checkpoint(src, FORMATS["npz"])
    assert all(isinstance(v, LazyArray) for v in lazy.weights.values())
    assert not any(isinstance(v, LazyArray) for v in eager.weights.values())
    spec = get_spec("resnet50")
    for name in ("paddle", "safetensors", "keras"):
        a, b = tmp_path / f"lazy{FORMATS[name].extensions[0]}", tmp_path / f"eager{FORMATS[name].extensions[0]}"
        write_checkpoint(lazy, spec, a, FORMATS[name])
        write_checkpoint(eager, spec, b, FORMATS[name])
        if name != "keras":  # HDF5 files carry creation times; their contents are compared below
            assert a.read_bytes() == b.read_bytes(), name
        assert _same(read_checkpoint(a, FORMATS[name]).weights, eager.weights)


def test_our_safetensors_files_are_the_librarys(tmp_path: Path) -> None:
    """Written by hand (to stream), read by the safetensors library: mixed dtypes, metadata, 8-byte
    aligned data."""
    from safetensors.numpy import load_file

    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    spec = get_spec("resnet18", num_classes=10)
    weights = random_weights(spec, seed=2)
    weights = {k: v.astype(["float16", "float32", "float64"][i % 3]) for i, (k, v) in enumerate(weights.items())}
    path = tmp_path / "mixed.safetensors"
    write_checkpoint(Checkpoint(weights), spec, path, FORMATS["safetensors"])
    back = load_file(str(path))
    assert set(back) == set(weights)
    assert all(back[k].dtype == weights[k].dtype and np.array_equal(back[k], weights[k]) for k in weights)
    header_size = int.from_bytes(path.read_bytes()[:8], "little")
    assert header_size % 8 == 0
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        assert f.metadata()["model"] == "resnet18" and f.metadata()["num_classes"] == "10"
    from safetensors.numpy import save_file

    theirs = tmp_path / "theirs.safetensors"
    save_file(weights, str(theirs), {"model": "resnet18"})  # the library's own file, read by our reader
    ours = read_checkpoint(theirs, FORMATS["safetensors"])
    assert ours.metadata == {"model": "resnet18"}
    assert all(
        ours.weights[k].dtype == weights[k].dtype and np.array_equal(ours.weights[k], weights[k]) for k in weights
    )


def test_safetensors_header_that_lies_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    src = _npz(tmp_path, "ok.npz")
    good = tmp_path / "good.safetensors"
    assert main(["convert", str(src), str(good)]) == 0
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header["fc.weight"]["shape"] = [100000, 100000]  # claims 40 GB in a small file
    text = json.dumps(header).encode()
    lying = tmp_path / "lying.safetensors"
    lying.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
    capsys.readouterr()
    assert main(["inspect", str(lying)]) == 2
    err = capsys.readouterr().err
    assert "fc.weight's byte range does not fit" in err and len(err.strip().splitlines()) == 1


def _rewritten_header(tmp_path: Path, edit: Any, name: str) -> Path:
    """A copy of a good safetensors file of ours with its JSON header changed by ``edit(header) -> header``."""
    import json

    src = _npz(tmp_path, "ok.npz")
    good = tmp_path / "good.safetensors"
    if not good.exists():
        convert(src, good)
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    text = edit(json.loads(raw[8 : 8 + n]))
    text = text if isinstance(text, bytes) else json.dumps(text).encode()
    out = tmp_path / name
    out.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
    return out


def _overlap(h: dict) -> dict:
    """The second tensor (by offset) made a copy of the first's entry: two tensors on one byte range."""
    a, b = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"])[:2]
    h[b]["shape"], h[b]["dtype"] = h[a]["shape"], h[a]["dtype"]
    h[b]["data_offsets"] = list(h[a]["data_offsets"])
    return h


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("overlap", "overlaps another"),
        ("float shape", "a bad header entry"),
        ("overflow", "does not fit"),
        ("nested", "cannot read"),
    ],
)
def test_safetensors_headers_the_library_rejects_are_one_line(
    case: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the safetensors library refuses is refused here too: ranges that overlap, shapes that are not
    integers, element counts past int64, a header of absurdly nested JSON; and the library agrees."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    def float_shape(h: dict) -> dict:
        h["fc.bias"]["shape"] = [float(h["fc.bias"]["shape"][0])]
        return h

    def overflow(h: dict) -> dict:
        h["fc.bias"]["shape"] = [2**40, 2**40, 2**40]
        return h

    edits = {"overlap": _overlap, "float shape": float_shape, "overflow": overflow,
             "nested": lambda h: b"[" * 100000 + b"]" * 100000}  # fmt: skip
    path = _rewritten_header(tmp_path, edits[case], f"{case.replace(' ', '_')}.safetensors")
    capsys.readouterr()
    assert main(["convert", str(path), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out.npz").exists()
    with pytest.raises((SafetensorError, ValueError, OverflowError, RecursionError)):
        load_file(str(path))


def test_a_source_cut_short_after_opening_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Tensors are read when written: a file damaged in between fails in one line, and nothing is written."""
    import zipfile

    src = _npz(tmp_path, "ok.npz")
    bad = tmp_path / "damaged.npz"
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:  # flip bytes inside one member's data: its CRC no longer matches
        info = zf.getinfo("fc.weight.npy")
    data[info.header_offset + 200 : info.header_offset + 260] = bytes(60)
    bad.write_bytes(bytes(data))
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(bad), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and str(bad) in err and len(err.strip().splitlines()) == 1
    assert not dst.exists() and not list(tmp_path.glob(".*resnet-tmp*"))


@pytest.mark.parametrize("options", [{"stem": "cifar", "in_channels": 1, "num_classes": 10}, {"in_channels": 4}])
def test_keras_files_of_models_built_with_options_read_back(options: dict, tmp_path: Path) -> None:
    """A CIFAR-stem or n-channel model's .weights.h5, named by our stamp or by --model: the options are read
    off the variable shapes (a stamped name alone used to build the 3-channel ImageNet stem)."""
    from resnet_tools.checkpoints.formats import Checkpoint, write_checkpoint

    spec = get_spec("resnet18", **options)
    weights = random_weights(spec, seed=5)
    path = tmp_path / "opt.weights.h5"
    write_checkpoint(Checkpoint(weights), spec, path, FORMATS["keras"])
    for model in (None, "resnet18"):
        ckpt = read_checkpoint(path, FORMATS["keras"], model)
        assert resolve_spec(ckpt, model) == spec and _same(ckpt.weights, weights)
