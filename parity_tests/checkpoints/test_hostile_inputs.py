"""Hostile and wrong inputs on the mapping surfaces (map files, spec files, .keras archives, --reference code,
--like, the course's checker): each is one line, exit 2, nothing written, in bounded time and memory."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from parity_tests import handwritten
from parity_tests.conftest import LOADED
from resnet_tools.cli import main

LAUGHS = "\n".join(
    [f"a0: &a0 [{', '.join(['lol'] * 9)}]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["framework: torch", "model: resnet18", "modules: *a9"]
)


def _one_line(capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    err = capsys.readouterr().err
    assert all(e in err for e in expected) and err.count("\n") == 1, err
    return err


def _cifar(tmp_path: Path) -> Path:
    import torch

    src = tmp_path / "cifar.pth"
    torch.save(handwritten.torch_cifar_resnet18().state_dict(), src)
    return src


@pytest.mark.skipif("torch" not in LOADED, reason="needs torch")
def test_map_files_with_aliases_or_deep_nesting_are_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2 kB "billion laughs" map file (nested aliases) used to hang convert --map past 60 s."""
    src = _cifar(tmp_path)
    laughs, deep = tmp_path / "laughs.yaml", tmp_path / "deep.yaml"
    laughs.write_text(LAUGHS)
    deep.write_text("framework: torch\nmodel: resnet18\nmodules: " + "[" * 5000 + "]" * 5000 + "\n")
    for bad, expected in ((laughs, "aliases are not read"), (deep, "nested deeper than")):
        start = time.perf_counter()
        assert main(["convert", str(src), str(tmp_path / "o.pth"), "--map", str(bad)]) == 2
        assert time.perf_counter() - start < 10
        _one_line(capsys, expected, str(bad))
    assert not (tmp_path / "o.pth").exists()


def test_spec_files_with_aliases_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "zoo.yaml"
    spec.write_text(LAUGHS)
    assert main(["--spec", str(spec), "list"]) == 2
    _one_line(capsys, "aliases are not read")


def _keras_zip(path: Path, members: list[tuple[str, bytes]], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def test_keras_archives_that_lie_are_refused_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two members of one name; a config.json that inflates to 64 MiB from a few kB; a config nested 200,000 deep."""
    meta = ("metadata.json", b"{}")
    twice = tmp_path / "twice.keras"
    with zipfile.ZipFile(twice, "w") as zf:
        zf.writestr("config.json", b"{}")
        zf.writestr("config.json", b"{}")
        zf.writestr("model.weights.h5", b"")
    bomb = _keras_zip(
        tmp_path / "bomb.keras",
        [("config.json", b" " * (64 << 20)), meta, ("model.weights.h5", b"")],
        zipfile.ZIP_DEFLATED,
    )
    assert bomb.stat().st_size < 1 << 20
    deep = _keras_zip(
        tmp_path / "deep.keras", [("config.json", b"[" * 200_000 + b"]" * 200_000), meta, ("model.weights.h5", b"")]
    )
    cases = ((twice, "config.json twice"), (bomb, "unpacks to"), (deep, "nests too deeply"))
    for path, expected in cases:
        assert main(["inspect", str(path)]) == 2, path
        _one_line(capsys, expected)


def _inspect_within_1gib(path: Path) -> subprocess.CompletedProcess[str]:
    """``resnet inspect PATH`` in a fresh interpreter whose data segment may not pass 1 GiB."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))\n"
        "from resnet_tools.cli import main\n"
        f"sys.exit(main(['inspect', {str(path)!r}]))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_a_keras_bomb_is_refused_within_a_memory_limit(tmp_path: Path) -> None:
    """The refusal needs no memory the archive's declared size asks for: under a 1 GiB address-space limit
    on the data segment, inspect still answers in one line."""
    bomb = _keras_zip(
        tmp_path / "bomb.keras",
        [("config.json", b"{}"), ("metadata.json", b"{}"), ("model.weights.h5", b"\0" * (1 << 30))],
        zipfile.ZIP_DEFLATED,
    )
    res = _inspect_within_1gib(bomb)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "unpacks" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif("torch" not in LOADED, reason="needs torch")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("import sys\nsys.exit(0)\n", "called sys.exit(0) while importing"),
        ("import sys\n\ndef build():\n    sys.exit(3)\n", "called sys.exit(3) while building"),
        ("import time\n\ndef build():\n    time.sleep(30)\n", "did not return within 1 s while building"),
    ],
    ids=["exit-on-import", "exit-in-factory", "never-returns"],
)
def test_reference_code_that_exits_or_hangs_is_an_error(
    body: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_tools.checkpoints import reference

    monkeypatch.setattr(reference, "USER_CODE_SECONDS", 1.0)
    src = _cifar(tmp_path)
    code = tmp_path / "model.py"
    code.write_text(body + ("\ndef build():\n    pass\n" if "def build" not in body else ""))
    dst = tmp_path / "o.pdparams"
    start = time.perf_counter()
    assert main(["convert", str(src), str(dst), "--reference", f"{code}:build"]) == 2
    assert time.perf_counter() - start < 20 and not dst.exists()
    _one_line(capsys, expected)


@pytest.mark.skipif(len(LOADED) < 2, reason="needs torch and paddle")
def test_like_writes_the_templates_format_or_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`convert x out.pth --like t.pdparams` wrote a paddle pickle named .pth that torch.load cannot read."""
    from resnet_tools.checkpoints.convert import convert

    src = _cifar(tmp_path)
    template = tmp_path / "t.pdparams"
    convert(src, template)
    dst = tmp_path / "out.pth"
    assert main(["convert", str(src), str(dst), "--like", str(template)]) == 2
    _one_line(capsys, "t.pdparams is a paddle checkpoint", "out.pdparams")
    assert not dst.exists()
    assert main(["convert", str(src), str(tmp_path / "out.pdparams"), "--like", str(template)]) == 0


@pytest.mark.skipif("torch" not in LOADED, reason="needs torch")
def test_the_checker_compares_input_channels() -> None:
    """A student's ResNet-18 for 1-channel images is not the exercise's resnet18 (3 channels)."""
    from resnet_tools.course import check_model

    report = check_model(handwritten.torch_d2l_resnet18(in_channels=1), "resnet18")
    assert not report.passed and "1 input channel" in report.verdict and "resnet18 takes 3" in report.verdict


def test_bounded_yaml_reads_what_map_files_hold() -> None:
    from resnet_spec.bounded_yaml import load_text

    assert load_text("framework: torch\nmodules: {a.b: layer1.0.conv1}\n") == {
        "framework": "torch",
        "modules": {"a.b": "layer1.0.conv1"},
    }
    with pytest.raises(ValueError, match="alias"):
        load_text("a: &x 1\nb: *x\n")


def _keras_resnet18_file(tmp_path: Path, names: bool = True) -> Path:
    """resnet18's .weights.h5 as Keras writes it (``names=False``: as older Keras 3 did, no layer names)."""
    import h5py

    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights

    rk = LOADED["keras"]
    path = tmp_path / "r18.weights.h5"
    spec = get_spec("resnet18", num_classes=5)
    rk.import_weights(rk.create_model(spec), random_weights(spec, seed=2)).save_weights(str(path))
    if not names:
        with h5py.File(path, "r+") as f:
            f.visititems(lambda _n, o: o.attrs.__delitem__("name") if "name" in o.attrs else None)
    return path


@pytest.mark.skipif("keras" not in LOADED, reason="needs keras")
def test_a_weights_h5_declaring_a_huge_variable_is_refused_within_a_memory_limit(tmp_path: Path) -> None:
    """A variable declared 100 GB with no data behind it (HDF5 reads it as fill values, allocated whole) is refused
    from its declaration, before any read: one line, exit 2, under a 1 GiB limit on the data segment."""
    import h5py

    path = _keras_resnet18_file(tmp_path)
    with h5py.File(path, "r+") as f:
        group = f["layers/conv2d/vars"]
        del group["0"]
        group.create_dataset("0", shape=(25_000_000_000,), dtype="float32")  # 100 GB declared, nothing stored
    res = _inspect_within_1gib(path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "declares [25000000000] float32" in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]


@pytest.mark.skipif("keras" not in LOADED, reason="needs keras")
@pytest.mark.parametrize("model", [None, "resnet18"])
def test_a_weights_h5_read_by_order_checks_every_shape(
    model: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file without layer names is read in Keras' layer order: as many variables as resnet18's is not enough,
    each must have its shape there (two conv layers' kernels swapped: refused, naming the layer)."""
    import h5py

    path = _keras_resnet18_file(tmp_path, names=False)
    with h5py.File(path, "r+") as f:
        a, b = f["layers/conv2d_1/vars/0"][()], f["layers/conv2d_5/vars/0"][()]
        assert a.shape != b.shape
        for name, value in (("layers/conv2d_1/vars/0", b), ("layers/conv2d_5/vars/0", a)):
            del f[name]
            f.create_dataset(name, data=value)
    dst = tmp_path / "out.pth"
    assert main(["convert", str(path), str(dst), *(["--model", model] if model else [])]) == 2
    _one_line(capsys, "conv2d_1")
    assert not dst.exists()
