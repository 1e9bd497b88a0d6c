"""Derived specs: ResNets outside the zoo get a spec of their own. He et al.'s CIFAR ResNet-20 and -56 as the most
copied CIFAR code writes them (option-A zero-padding shortcuts, three stages of 16/32/64 channels, saved as
``{'state_dict': ...}`` with DataParallel's ``module.`` keys) convert into every framework, each result compared
with the user's own model; what the weights cannot show (where option A puts its zeros) is refused until the
user's word or code settles it; the derived spec is a YAML of the zoo's own format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from parity_tests import handwritten
from parity_tests.conftest import LOADED
from resnet_spec import count_params
from resnet_spec.derive import from_document
from resnet_spec.spec import load_zoo
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel
EXT = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}
#: The user's word on what no weight shows: where option A puts its zeros, and He et al.'s strides and stem.
SPLIT = MapRequest(assume={"channel_pad": "split", "derived": "he2016"})

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs torch, paddle and keras")


def _x(batch: int = 3, size: int = 32) -> np.ndarray:
    """Square images: the CIFAR code's head pools with a kernel of the image's width (global on squares only)."""
    return np.random.default_rng(8).standard_normal((batch, 3, size, size)).astype("float32")


def _torch_out(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(x)).numpy())


def _save_like_the_cifar_code(model: Any, path: Path) -> None:
    """``torch.save({'state_dict': model.state_dict(), 'best_prec1': ...})`` of a DataParallel model."""
    import torch

    torch.save({"state_dict": torch.nn.DataParallel(model).state_dict(), "best_prec1": 91.7}, path)


def _everywhere(src: Path, expected: np.ndarray, x: np.ndarray, tmp_path: Path, how: MapRequest = PLAIN) -> Any:
    spec = None
    for fw, ext in EXT.items():
        dst = tmp_path / f"out-{fw}{ext}"
        spec = convert(src, dst, how=how, force=True).spec
        ckpt = read_checkpoint(dst, format_for(dst), spec)
        mod = LOADED[fw]
        got = mod.forward_numpy(mod.import_weights(mod.create_model(spec), ckpt.weights), x)["logits"]
        assert tensor_diff(expected, got).max_rel <= TOL, fw
    return spec


def test_cifar_resnet20_option_a_derives_its_spec_and_converts(tmp_path: Path) -> None:
    model = handwritten.torch_cifar_resnet_option_a(n=3)
    src = tmp_path / "resnet20.th"
    _save_like_the_cifar_code(model, src)
    x = _x()
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path, SPLIT)
    assert (spec.name, spec.depths, spec.widths, spec.shortcut) == (
        "resnet20_cifar", (3, 3, 3), (16, 32, 64), "zero_pad_when_needed"
    )  # fmt: skip
    assert count_params(spec)[0] == sum(p.numel() for p in model.parameters()) == 269_722  # He et al.: 0.27M


def test_option_a_without_code_or_word_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Where option A puts its zeros, no weight shows: exit 2, one line naming both placements, nothing written."""
    src = tmp_path / "resnet20.th"
    _save_like_the_cifar_code(handwritten.torch_cifar_resnet_option_a(n=3), src)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "channel_pad: split" in err and "torch.cat([x, zeros], 1)" in err and "--reference" in err, err
    assert err.count("\n") == 1 and not dst.exists()


@pytest.mark.parametrize("pad", ["split", "end"])
def test_cifar_resnet56_proved_by_its_code(pad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ResNet-56 with --reference: the user's model only runs square images (its head pools with a kernel of the
    image's width), so it is proved on a square batch, and the run finds where option A puts its zeros."""
    model = handwritten.torch_cifar_resnet_option_a(n=9, pad=pad)
    src = tmp_path / "resnet56.th"
    _save_like_the_cifar_code(model, src)
    code = tmp_path / "cifar_model.py"
    code.write_text(
        "from parity_tests import handwritten\n\n\n"
        f"def resnet56():\n    return handwritten.torch_cifar_resnet_option_a(n=9, pad={pad!r})\n"
    )
    ref = f"{code}:resnet56"
    assert main(["convert", str(src), str(tmp_path / "o.pdparams"), "--reference", ref]) == 0
    out = capsys.readouterr().out
    assert "square images only" in out and f"channel_pad={pad}" in out and "proved against your model" in out, out
    x = _x()
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path, MapRequest(reference=ref))
    assert spec.name == "resnet56_cifar" and spec.channel_pad == pad and spec.depths == (9, 9, 9)


def test_the_derived_spec_is_a_zoo_yaml_and_travels_with_our_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--save-spec writes the derived spec in the zoo's format (load_zoo validates it with the zoo's schema);
    `resnet --spec` makes it the zoo, so our Keras file of it reads back; our .safetensors records it, and a .pth
    in the zoo's names is derived again, refused until the zeros' place is said."""
    model = handwritten.torch_cifar_resnet_option_a(n=3)
    src = tmp_path / "resnet20.th"
    _save_like_the_cifar_code(model, src)
    spec_file, h5 = tmp_path / "resnet20.yaml", tmp_path / "r20.weights.h5"
    argv = ["convert", str(src), str(h5), "--assume", "channel_pad=split,derived=he2016", "--save-spec", str(spec_file)]
    assert main(argv) == 0
    assert "derived spec" in capsys.readouterr().out
    zoo = load_zoo(spec_file)
    assert list(zoo) == ["resnet20_cifar"] and zoo["resnet20_cifar"] == from_document(
        yaml.safe_load(spec_file.read_text())
    )
    back = tmp_path / "back.safetensors"
    assert main(["--spec", str(spec_file), "convert", str(h5), str(back), "--verify"]) == 0
    x = _x()
    rp = LOADED["paddle"]
    pd = tmp_path / "again.pdparams"
    spec = convert(back, pd).spec  # read by the spec its metadata records
    got = rp.forward_numpy(rp.import_weights(rp.create_model(spec), read_checkpoint(pd, format_for(pd)).weights), x)
    assert tensor_diff(_torch_out(model, x), got["logits"]).max_rel <= TOL
    capsys.readouterr()
    assert main(["convert", str(pd), str(tmp_path / "x.pth")]) == 2  # canonical names, derived: zeros' place?
    assert "--assume channel_pad" in capsys.readouterr().err
    assert main(["convert", str(pd), str(tmp_path / "x.pth"), "--assume", "channel_pad=split"]) == 2  # strides?
    assert "--assume derived=he2016" in capsys.readouterr().err
    assert main(["convert", str(pd), str(tmp_path / "x.pth"), "--assume", "channel_pad=split,derived=he2016"]) == 0


def _tutorial(tmp_path: Path, stem_relu: bool = False) -> tuple[Any, Path, str]:
    """The 4-block tutorial model (stride 2 in every block on a first conv that keeps its width, no stem ReLU or
    pool), its state_dict file and its code as --reference."""
    import torch

    model = handwritten.torch_tutorial_four_blocks(stem_relu=stem_relu)
    src = tmp_path / "tutorial.pth"
    torch.save(model.state_dict(), src)
    code = tmp_path / "tutorial_model.py"
    code.write_text(
        "from parity_tests import handwritten\n\n\n"
        f"def build():\n    return handwritten.torch_tutorial_four_blocks(stem_relu={stem_relu})\n"
    )
    return model, src, f"{code}:build"


def test_a_tutorial_model_without_its_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its weights fit a derived spec, but its strides, stem pool and ReLU show in no weight: exit 2, one line
    naming what to give, nothing written. Said to be He et al.'s (--assume derived=he2016), it converts onto that
    spec, which is not the tutorial's: the word is the user's, the notes say so, the numbers differ."""
    model, src, _ref = _tutorial(tmp_path)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "--reference" in err and "--assume derived=he2016" in err and err.count("\n") == 1, err
    assert not dst.exists()
    result = convert(src, dst, how=MapRequest(assume={"derived": "he2016"}))
    assert any("settled as you said (--assume): derived=he2016" in n for n in result.notes), result.notes
    rp, x = LOADED["paddle"], _x(2, 32)
    weights = read_checkpoint(dst, format_for(dst), result.spec).weights
    got = rp.forward_numpy(rp.import_weights(rp.create_model(result.spec), weights), x)
    assert tensor_diff(_torch_out(model, x), got["logits"]).max_rel > 100 * TOL


@pytest.mark.parametrize("stem_relu", [False, True])
def test_a_tutorial_model_is_read_off_its_run(
    stem_relu: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With its code, the run shows what the weights cannot: stride 2 in every block (the first stage too), the
    stem without pool, with or without a ReLU; each framework's result matches the user's model on 32x40 images."""
    model, src, ref = _tutorial(tmp_path, stem_relu)
    x = np.random.default_rng(9).standard_normal((3, 3, 32, 40)).astype("float32")
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path, MapRequest(reference=ref))
    assert (spec.stage_strides, spec.stem.pool, spec.stem.relu, spec.widen_on) == ((2, 2, 2, 2), False, stem_relu,
                                                                                   "conv2")  # fmt: skip
    assert count_params(spec)[0] == sum(p.numel() for p in model.parameters())
    capsys.readouterr()
    assert main(["convert", str(src), str(tmp_path / "o.pth"), "--reference", ref, "--force"]) == 0
    out = capsys.readouterr().out
    assert "read off your model's run" in out and "stage strides 2, 2, 2, 2" in out, out
