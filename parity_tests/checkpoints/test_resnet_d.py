"""ResNet-C/D (Bag of Tricks): a deep stem (three 3x3 convs) and, in ResNet-D, a 2x2 average pool that strides each
projection shortcut before its 1x1 conv. timm's ``resnet50d`` as timm writes it converts by its names (its shortcut's
BN is ``downsample.2``: a pool sits at 0) into every framework and as code, each result compared with the user's own
model at an odd, non-square size (where the pool's ceil mode and uncounted padding show). ``resnet50c`` has the same
tensors and strides the conv: in the zoo's names the two cannot be told apart, so it is refused until the user's
code (or word) settles it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests import handwritten
from parity_tests.checkpoints.test_emit_code import _use_generated
from parity_tests.conftest import LOADED
from resnet_spec import count_params
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel
EXT = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}
SHORT = (1, 1, 2, 1)  # resnet50d's stages with fewer blocks: every kind of block, a quicker test

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs torch, paddle and keras")


def _x(batch: int = 2) -> np.ndarray:
    """67 x 81: odd at every stage, so the average pool's last window is partial (ceil mode, padding not counted)."""
    return np.random.default_rng(11).standard_normal((batch, 3, 67, 81)).astype("float32")


def _torch_out(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(x)).numpy())


def _everywhere(src: Path, expected: np.ndarray, x: np.ndarray, tmp_path: Path, how: MapRequest = PLAIN) -> Any:
    spec = None
    for fw, ext in EXT.items():
        dst = tmp_path / f"out-{fw}{ext}"
        spec = convert(src, dst, how=how, force=True).spec
        mod = LOADED[fw]
        weights = read_checkpoint(dst, format_for(dst), spec).weights
        got = mod.forward_numpy(mod.import_weights(mod.create_model(spec), weights), x)["logits"]
        assert tensor_diff(expected, got).max_rel <= TOL, fw
    return spec


def test_timm_resnet50d_converts_by_its_names(tmp_path: Path) -> None:
    import torch

    model = handwritten.torch_timm_style_resnet50d()
    src = tmp_path / "resnet50d.pth"
    torch.save(model.state_dict(), src)
    x = _x()
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path)
    assert (spec.stem.deep, spec.downsample, spec.depths) == ((32, 32), "avg_pool", (3, 4, 6, 3))
    assert count_params(spec)[0] == sum(p.numel() for p in model.parameters())
    notes = read_checkpoint(src, format_for(src)).notes
    assert any("timm's resnet*d" in n and "downsample=avg_pool" in n for n in notes), notes


def test_the_average_pool_is_what_the_names_say(tmp_path: Path) -> None:
    """Read as its look-alike (the 1x1 conv strides, as in resnet50c), the same file gives other numbers: the
    setting the names decide matters."""
    import torch

    model = handwritten.torch_timm_style_resnet50d(depths=SHORT)
    src = tmp_path / "r.pth"
    torch.save(model.state_dict(), src)
    result = convert(src, tmp_path / "out.pdparams", how=MapRequest(assume={"downsample": "conv"}))
    assert result.spec.downsample == "conv"
    rp = LOADED["paddle"]
    weights = read_checkpoint(tmp_path / "out.pdparams", format_for(tmp_path / "out.pdparams"), result.spec).weights
    got = rp.forward_numpy(rp.import_weights(rp.create_model(result.spec), weights), _x())["logits"]
    assert tensor_diff(_torch_out(model, _x()), got).max_rel > 100 * TOL


def test_resnet50c_in_the_zoos_names_is_refused_then_proved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """timm's resnet50c (deep stem, the shortcut's conv strides) saves keys in the zoo's own names, which cannot say
    whether a pool strides the shortcut: exit 2, one line, nothing written; its code proves it."""
    import torch

    model = handwritten.torch_timm_style_resnet50d(avg_down=False, depths=SHORT)
    src = tmp_path / "resnet50c.pth"
    torch.save(model.state_dict(), src)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "downsample: conv" in err and "avg_pool" in err and "--assume downsample" in err, err
    assert err.count("\n") == 1 and not dst.exists()
    code = tmp_path / "my_model.py"
    code.write_text(
        "from parity_tests import handwritten\n\n\n"
        f"def build():\n    return handwritten.torch_timm_style_resnet50d(avg_down=False, depths={SHORT})\n"
    )
    x = _x()
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path, MapRequest(reference=f"{code}:build"))
    assert spec.downsample == "conv" and spec.stem.deep == (32, 32)


@pytest.mark.parametrize("ext", [".pth", ".pdparams", ".weights.h5"])
def test_resnet_d_as_code(ext: str, tmp_path: Path) -> None:
    import torch

    model = handwritten.torch_timm_style_resnet50d(depths=SHORT)
    src = tmp_path / "timm_d.pth"
    torch.save(model.state_dict(), src)
    out, code = tmp_path / f"d{ext}", tmp_path / "my_resnet_d.py"
    assert main(["convert", str(src), str(out), "--emit-code", str(code)]) == 0
    assert "downsample='avg_pool'" in code.read_text()
    x = _x()
    got = _use_generated(tmp_path, "my_resnet_d", "resnet17_deep", out.name, x)
    assert tensor_diff(_torch_out(model, x), got).max_rel <= TOL


def test_resnet50d_proved_by_its_code(tmp_path: Path) -> None:
    """With --reference the run proves the average pool (its look-alike, the strided conv, fails the proof)."""
    import torch

    model = handwritten.torch_timm_style_resnet50d(depths=SHORT)
    src = tmp_path / "r50d.pth"
    torch.save(model.state_dict(), src)
    code = tmp_path / "my_model.py"
    body = f"handwritten.torch_timm_style_resnet50d(depths={SHORT})"
    code.write_text(f"from parity_tests import handwritten\n\n\ndef build():\n    return {body}\n")
    x = _x()
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path, MapRequest(reference=f"{code}:build"))
    assert spec.downsample == "avg_pool"
