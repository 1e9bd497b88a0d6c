"""``resnet convert --emit-code``: the user's model in the other framework, as code. Each generated file is used as
people use one: imported from its folder in a fresh interpreter, the model built with no arguments, the converted
weights loaded strictly, and its logits compared with the user's own model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests import handwritten
from parity_tests.conftest import LOADED
from resnet_spec.tolerances import tolerance
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs torch, paddle and keras")

#: How a user loads each framework's file into the generated model and runs an NCHW batch (saved as x.npy).
USE = {
    ".pth": (
        "import numpy as np, torch\nfrom {module} import {builder}\nmodel = {builder}().eval()\n"
        "model.load_state_dict(torch.load('{weights}', weights_only=True), strict=True)\n"
        "with torch.no_grad():\n    y = model(torch.from_numpy(np.load('x.npy'))).numpy()\n"
    ),
    ".pdparams": (
        "import numpy as np, paddle\nfrom {module} import {builder}\nmodel = {builder}()\n"
        "missing, unexpected = model.set_state_dict(paddle.load('{weights}'))\n"
        "assert not missing and not unexpected, (missing, unexpected)\nmodel.eval()\n"
        "y = model(paddle.to_tensor(np.load('x.npy'))).numpy()\n"
    ),
    ".weights.h5": (
        "import numpy as np\nfrom {module} import {builder}\nmodel = {builder}()\nmodel.load_weights('{weights}')\n"
        "y = np.asarray(model(np.load('x.npy').transpose(0, 2, 3, 1)))\n"
    ),
    ".msgpack": (
        "import numpy as np\nfrom {module} import {builder}, load\nmodel = load({builder}(), '{weights}')\n"
        "y = np.asarray(model(np.load('x.npy').transpose(0, 2, 3, 1)))\n"
    ),
}


def _torch_out(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(x)).numpy())


def _use_generated(folder: Path, module: str, builder: str, weights: str, x: np.ndarray) -> np.ndarray:
    """Run the generated file as a user would, in a fresh interpreter started in its folder (no resnet-xf there:
    an import of it would fail)."""
    np.save(folder / "x.npy", x)
    ext = next(e for e in USE if weights.endswith(e))
    script = USE[ext].format(module=module, builder=builder, weights=weights) + "np.save('y.npy', y)\n"
    guard = "import sys\nsys.modules['resnet_spec'] = sys.modules['resnet_tools'] = None  # no resnet-xf\n"
    res = subprocess.run(
        [sys.executable, "-c", guard + script], cwd=folder, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return np.load(folder / "y.npy")


@pytest.mark.parametrize("ext", [".pth", ".pdparams", ".weights.h5", ".msgpack"])
def test_cifar_resnet20_as_code_in_every_framework(ext: str, tmp_path: Path) -> None:
    """The CIFAR ResNet-20 (option A, derived spec) written out as a model file for each framework."""
    import torch

    model = handwritten.torch_cifar_resnet_option_a(n=3)
    src = tmp_path / "resnet20.th"
    torch.save({"state_dict": torch.nn.DataParallel(model).state_dict()}, src)
    out, code = tmp_path / f"resnet20{ext}", tmp_path / "cifar_resnet.py"
    argv = ["convert", str(src), str(out), "--assume", "channel_pad=split,derived=he2016", "--emit-code", str(code)]
    assert main(argv) == 0
    text = code.read_text()
    assert "resnet_spec" not in text.replace("resnet-xf", "") and "channel_pad=split" in text
    x = np.random.default_rng(3).standard_normal((3, 3, 32, 32)).astype("float32")
    got = _use_generated(tmp_path, "cifar_resnet", "resnet20_cifar", out.name, x)
    assert tensor_diff(_torch_out(model, x), got).max_rel <= TOL


@pytest.mark.parametrize("ext", [".pdparams", ".weights.h5", ".msgpack"])
def test_timm_layout_resnetv2_as_code(ext: str, tmp_path: Path) -> None:
    """timm's pre-activation layout (first-block strides, -inf pool) as Paddle and Keras code: not
    keras.applications' ResNet50V2, its look-alike."""
    import torch

    model = handwritten.torch_timm_style_resnetv2_50()
    src = tmp_path / "timm.pth"
    torch.save(model.state_dict(), src)
    out, code = tmp_path / f"v2{ext}", tmp_path / "my_resnetv2.py"
    assert main(["convert", str(src), str(out), "--emit-code", str(code)]) == 0
    assert "stride_block='first'" in code.read_text()
    x = np.random.default_rng(4).standard_normal((2, 3, 65, 97)).astype("float32")
    got = _use_generated(tmp_path, "my_resnetv2", "resnet50v2", out.name, x)
    assert tensor_diff(_torch_out(model, x), got).max_rel <= TOL


def test_emit_code_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    src = tmp_path / "cifar.pth"
    torch.save(handwritten.torch_cifar_resnet18().state_dict(), src)
    (tmp_path / "taken.py").write_text("# mine\n")
    cases = [
        (["out.safetensors", "--emit-code", "m.py"], "give DST as .pth, .pdparams, .weights.h5 or .msgpack"),
        (["out.pth", "--emit-code", "m.txt"], "give a new .py file"),
        (["out.pth", "--emit-code", "taken.py"], "exists"),
        (["out.pth", "--emit-code", "m.py", "--like", str(src)], "--emit-code and --like"),
    ]
    for args, expected in cases:
        argv = ["convert", str(src), str(tmp_path / args[0]), *[a if a.startswith("-") or "/" in a else
                                                               str(tmp_path / a) for a in args[1:]]]  # fmt: skip
        assert main(argv) == 2, args
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (args, err)
        assert not (tmp_path / args[0]).exists() and not (tmp_path / "m.py").exists()
    assert (tmp_path / "taken.py").read_text() == "# mine\n"


@pytest.mark.parametrize("ext", [".pth", ".pdparams", ".weights.h5", ".msgpack"])
def test_a_tutorial_model_as_code(ext: str, tmp_path: Path) -> None:
    """The 4-block tutorial model (read off its run: stride 2 in every block, no stem ReLU or pool) as code."""
    import torch

    model = handwritten.torch_tutorial_four_blocks()
    src = tmp_path / "tutorial.pth"
    torch.save(model.state_dict(), src)
    ref = tmp_path / "tutorial_model.py"
    ref.write_text(
        "from parity_tests import handwritten\n\n\ndef build():\n    return handwritten.torch_tutorial_four_blocks()\n"
    )
    out, code = tmp_path / f"ported_weights{ext}", tmp_path / "ported.py"
    assert main(["convert", str(src), str(out), "--reference", f"{ref}:build", "--emit-code", str(code)]) == 0
    x = np.random.default_rng(6).standard_normal((2, 3, 32, 40)).astype("float32")
    got = _use_generated(tmp_path, "ported", "resnet10_cifar", out.name, x)
    assert tensor_diff(_torch_out(model, x), got).max_rel <= TOL


def test_a_hand_written_keras_model_as_pytorch_code(tmp_path: Path) -> None:
    """A functional Keras ResNet-18 with Keras' own layer names, proved by its code, written out as PyTorch."""
    import keras

    from parity_tests.checkpoints.test_lookalikes import _trained_like

    model = _trained_like(handwritten.keras_cifar_resnet18(num_classes=7))  # untrained, its logits overflow
    src = tmp_path / "tutorial.weights.h5"
    model.save_weights(src)
    ref = tmp_path / "keras_model.py"
    body = "handwritten.keras_cifar_resnet18(num_classes=7)"
    ref.write_text(f"from parity_tests import handwritten\n\n\ndef build():\n    return {body}\n")
    out, code = tmp_path / "ported.pth", tmp_path / "ported_model.py"
    assert main(["convert", str(src), str(out), "--reference", f"{ref}:build", "--emit-code", str(code)]) == 0
    x = np.random.default_rng(7).standard_normal((2, 3, 32, 40)).astype("float32")
    expected = np.asarray(keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False)))
    got = _use_generated(tmp_path, "ported_model", "resnet18", out.name, x)
    assert tensor_diff(expected, got).max_rel <= TOL


def test_a_neg_inf_pool_resnet50v2_as_keras_code(tmp_path: Path) -> None:
    """A PyTorch ResNet50V2 whose stem pool pads with -inf (keras.applications pads zeros), proved by its code, as
    Keras code: the generated model pads with -inf too."""
    import torch

    model = handwritten.torch_keras_style_resnet50v2(neg_inf_pool=True)
    src = tmp_path / "v2.pth"
    torch.save(model.state_dict(), src)
    ref = tmp_path / "v2_model.py"
    ref.write_text(
        "from parity_tests import handwritten\n\n\n"
        "def build():\n    return handwritten.torch_keras_style_resnet50v2(neg_inf_pool=True)\n"
    )
    out, code = tmp_path / "v2.weights.h5", tmp_path / "v2_keras.py"
    assert main(["convert", str(src), str(out), "--reference", f"{ref}:build", "--emit-code", str(code)]) == 0
    assert "pool_pad='neg_inf'" in code.read_text()
    x = np.random.default_rng(8).standard_normal((2, 3, 65, 97)).astype("float32")
    got = _use_generated(tmp_path, "v2_keras", "resnet50v2", out.name, x)
    assert tensor_diff(_torch_out(model, x), got).max_rel <= TOL
