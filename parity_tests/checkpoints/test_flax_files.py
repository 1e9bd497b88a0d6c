"""Flax checkpoints: the model Flax's examples/imagenet trains (written in ``parity_tests/flax_example.py`` as the
example writes it, random BN statistics), saved with ``flax.serialization.to_bytes``, converts to every framework's
file and back bitwise; each framework's model of it equals the example's own output at even and odd sizes (where
its 'SAME' padding differs from the zoo's symmetric padding, and where it does not); its look-alike with symmetric
padding is other numbers; hostile msgpack files are refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from parity_tests import handwritten
from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.checkpoints.request import MapRequest
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel
EXT = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5", "flax": ".msgpack"}

pytestmark = pytest.mark.skipif("flax" not in LOADED, reason="needs flax")


def _example(name: str, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """The example's model and its variables: random weights, random BN statistics (variances > 0)."""
    import jax
    import jax.numpy as jnp

    from parity_tests import flax_example

    cls = {"resnet18": flax_example.ResNet18, "resnet50": flax_example.ResNet50}[name]
    model = cls(num_classes=7)
    shapes = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3)), train=False)
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype("float32") * 0.1, shapes["params"])
    stats = jax.tree.map(lambda a: (rng.random(a.shape) + 0.5).astype("float32"), shapes["batch_stats"])
    stats = jax.tree_util.tree_map_with_path(
        lambda p, a: a - 1.0 if p[-1].key == "mean" else a, stats
    )  # means around 0, variances in [0.5, 1.5)
    return model, {"params": params, "batch_stats": stats}


def _save(variables: dict[str, Any], path: Path) -> Path:
    from flax import serialization

    path.write_bytes(serialization.to_bytes(variables))
    return path


def _logits(model: Any, variables: dict[str, Any], x: np.ndarray) -> np.ndarray:
    import jax.numpy as jnp

    return np.asarray(model.apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)), train=False))


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_the_examples_checkpoint_converts_both_ways_bitwise(name: str, tmp_path: Path) -> None:
    from flax import serialization
    from flax.traverse_util import flatten_dict

    _model, variables = _example(name)
    src = _save(variables, tmp_path / f"{name}.msgpack")
    for fw, ext in EXT.items():
        if fw == "flax" or fw not in LOADED:
            continue
        there, back = tmp_path / f"there{ext}", tmp_path / f"back-{fw}.msgpack"
        assert convert(src, there).spec.padding == "same"
        convert(there, back, how=MapRequest(assume={"padding": "same"}))
        restored = serialization.msgpack_restore(back.read_bytes())
        want, got = flatten_dict(variables), flatten_dict({k: restored[k] for k in ("params", "batch_stats")})
        assert set(want) == set(got), fw
        for key, value in want.items():
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value), (fw, key)


@pytest.mark.parametrize("backend_name", sorted(EXT))
def test_every_framework_computes_the_examples_model(backend_name: str, tmp_path: Path) -> None:
    """Converted into each framework's own file and loaded there: the example's logits at 64 x 80 (even: 'SAME'
    pads one side) and 65 x 81 (odd at the first strides), batch 2."""
    if backend_name not in LOADED:
        pytest.skip(f"{backend_name} not installed")
    mod = LOADED[backend_name]
    model, variables = _example("resnet18", seed=1)
    src = _save(variables, tmp_path / "r18.msgpack")
    dst = tmp_path / f"r18{EXT[backend_name]}"
    spec = convert(src, dst, force=True).spec
    assert spec == get_spec("resnet18", num_classes=7, padding="same")
    weights = read_checkpoint(dst, format_for(dst), spec).weights
    rng = np.random.default_rng(5)
    for h, w in ((64, 80), (65, 81)):
        x = rng.standard_normal((2, 3, h, w)).astype("float32")
        want = _logits(model, variables, x)
        got = mod.forward_numpy(mod.import_weights(mod.create_model(spec), weights), x)["logits"]
        assert tensor_diff(want, got).max_rel <= TOL, (h, w)
        # the look-alike that pads every side (the zoo's): other numbers, so the padding read matters
        lookalike = get_spec("resnet18", num_classes=7)
        other = mod.forward_numpy(mod.import_weights(mod.create_model(lookalike), weights), x)["logits"]
        assert tensor_diff(want, other).max_rel > 100 * TOL, (h, w)


def test_padding_is_the_users_word_when_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An NNX model of the user's own that pads every side: --assume padding=symmetric; the example's file without
    it is read with the example's padding, and the note says so."""
    _model, variables = _example("resnet18")
    src = _save(variables, tmp_path / "r.msgpack")
    assert main(["convert", str(src), str(tmp_path / "a.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "padding='same'" in out and "TensorFlow's SAME" in out and "--assume padding=symmetric" in out
    result = convert(src, tmp_path / "b.safetensors", how=MapRequest(assume={"padding": "symmetric"}))
    assert result.spec.padding == "symmetric"
    assert (
        read_checkpoint(tmp_path / "a.safetensors", format_for(tmp_path / "a.safetensors")).metadata["unseen_options"]
        == '{"padding": "same"}'
    )


def test_our_flax_file_is_flaxs_own_layout(tmp_path: Path) -> None:
    """A file we write is the example's variables: flax.serialization reads it into the example's own model (its
    params and batch_stats trees), and resnet_flax's NNX model gives the torch model's logits."""
    import jax
    import jax.numpy as jnp
    from flax import serialization

    from parity_tests import flax_example

    torch_mod, flax_mod = LOADED.get("torch"), LOADED["flax"]
    if torch_mod is None:
        pytest.skip("needs torch")
    from resnet_spec.random_weights import random_weights

    spec = get_spec("resnet50", num_classes=7)
    tm = torch_mod.import_weights(torch_mod.create_model(spec), random_weights(spec, seed=4))
    src = tmp_path / "r50.npz"
    from resnet_tools.checkpoints.formats.base import Checkpoint
    from resnet_tools.checkpoints.formats.registry import FORMATS, write_checkpoint

    write_checkpoint(Checkpoint(torch_mod.export_weights(tm)), spec, src, FORMATS["npz"])
    dst = tmp_path / "r50.msgpack"
    convert(src, dst)
    target = flax_example.ResNet50(num_classes=7).init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), train=False)
    restored = serialization.from_bytes(target, dst.read_bytes())  # the example's own loader
    assert jax.tree.structure(restored) == jax.tree.structure(target)
    weights = read_checkpoint(dst, format_for(dst)).weights
    x = np.random.default_rng(2).standard_normal((2, 3, 67, 81)).astype("float32")
    want = torch_mod.forward_numpy(tm, x)["logits"]
    got = flax_mod.forward_numpy(flax_mod.import_weights(flax_mod.create_model(spec), weights), x)["logits"]
    assert tensor_diff(want, got).max_rel <= TOL


def _ext_array(shape: Any, dtype: str, data: bytes, code: int = 1) -> msgpack.ExtType:
    return msgpack.ExtType(code, msgpack.packb((shape, dtype, data), use_bin_type=True))


def _hostile(tmp_path: Path, tree: Any) -> Path:
    path = tmp_path / "bad.msgpack"
    path.write_bytes(tree if isinstance(tree, bytes) else msgpack.packb(tree, use_bin_type=True))
    return path


_KERNEL = np.zeros((7, 7, 3, 64), "float32")
HOSTILE = {
    "not msgpack": (b"\xc1\xc1 definitely not", "cannot read"),
    "a list": ([1, 2, 3], "holds a list"),
    "object dtype": ({"params": {"k": _ext_array([2], "object", b"xx")}, "batch_stats": {}}, "dtype 'object'"),
    "short buffer": ({"params": {"k": _ext_array([1000], "float32", b"abcd")}, "batch_stats": {}}, "holding 4 bytes"),
    "complex ext": ({"params": {"k": _ext_array([1], "float32", b"abcd", code=2)}, "batch_stats": {}}, "complex"),
    "no batch_stats": (
        {"params": {"conv_init": {"kernel": _ext_array([7, 7, 3, 64], "float32", _KERNEL.tobytes())}}},
        "no batch_stats",
    ),
    "chunked": ({"params": {"k": {"__msgpack_chunked_array__": True}}, "batch_stats": {}}, "chunked array"),
    "blocks misnumbered": (
        {
            "params": {
                "ResNetBlock_0": {"Conv_0": {"kernel": _ext_array([3, 3, 64, 64], "float32", bytes(147456))}},
                "ResNetBlock_2": {"Conv_0": {"kernel": _ext_array([3, 3, 64, 64], "float32", bytes(147456))}},
            },
            "batch_stats": {},
        },
        "not 0..1",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_msgpack_is_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, fragment = HOSTILE[case]
    src = _hostile(tmp_path, tree)
    before = set(tmp_path.iterdir())
    assert main(["convert", str(src), str(tmp_path / "out.pth")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") <= 2, err
    assert set(tmp_path.iterdir()) == before


def test_emit_code_refuses_same_padding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A generated model file pads every side: for the example's SAME padding it is refused, nothing written."""
    _model, variables = _example("resnet18")
    src = _save(variables, tmp_path / "r.msgpack")
    before = set(tmp_path.iterdir())
    code = tmp_path / "model.py"
    assert main(["convert", str(src), str(tmp_path / "r.pth"), "--emit-code", str(code)]) == 2
    err = capsys.readouterr().err
    assert "padding='same'" in err and "Traceback" not in err and err.count("\n") <= 2, err
    assert set(tmp_path.iterdir()) == before


def test_orbax_directories_of_an_nnx_model_and_of_the_example(tmp_path: Path) -> None:
    """``ocp.StandardCheckpointer().save(dir, nnx.state(model))`` of resnet_flax's model (--assume
    padding=symmetric: it pads every side) and of the example's variables: each converts to torch, whose model
    computes what the saved one does."""
    import orbax.checkpoint as ocp
    from flax import nnx

    from resnet_spec.random_weights import random_weights

    torch_mod, flax_mod = LOADED.get("torch"), LOADED["flax"]
    if torch_mod is None:
        pytest.skip("needs torch")
    x = np.random.default_rng(8).standard_normal((2, 3, 64, 80)).astype("float32")
    ours = flax_mod.create_model("resnet18", num_classes=5)
    flax_mod.import_weights(ours, random_weights(ours.spec, seed=2))
    example, variables = _example("resnet18", seed=3)
    cases = [
        ("nnx", nnx.state(ours), {"padding": "symmetric"}, flax_mod.forward_numpy(ours, x)["logits"]),
        ("example", variables, {}, _logits(example, variables, x)),
    ]
    for label, tree, assume, want in cases:
        folder = tmp_path / label
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(folder, tree)
        dst = tmp_path / f"{label}.pth"
        spec = convert(folder, dst, how=MapRequest(assume=assume)).spec
        weights = read_checkpoint(dst, format_for(dst), spec).weights
        got = torch_mod.forward_numpy(torch_mod.import_weights(torch_mod.create_model(spec), weights), x)["logits"]
        assert tensor_diff(want, got).max_rel <= TOL, label


def test_a_folder_that_is_no_orbax_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "_CHECKPOINT_METADATA").write_text("{}")  # looks like orbax's; holds nothing
    for src, fragment in ((folder, "as an orbax checkpoint"), (tmp_path / "missing", "no such folder")):
        args = [] if src == folder else ["--from", "orbax"]
        assert main(["convert", str(src), str(tmp_path / "out.pth"), *args]) == 2
        err = capsys.readouterr().err
        assert fragment in err and "Traceback" not in err and err.count("\n") <= 2, err
    assert not (tmp_path / "out.pth").exists()


def test_a_torch_file_written_as_orbax_is_the_examples_variables(tmp_path: Path) -> None:
    """The example's checkpoint -> .pth -> ``--to orbax``: orbax restores the example's own variables, every leaf
    bitwise, and the example computes its logits from them; the folder reads back into torch bitwise."""
    from flax.traverse_util import flatten_dict

    if "torch" not in LOADED:
        pytest.skip("needs torch")
    import orbax.checkpoint as ocp

    model, variables = _example("resnet18", seed=5)
    pth, folder, back = tmp_path / "w.pth", tmp_path / "ckpt", tmp_path / "back.pth"
    convert(_save(variables, tmp_path / "w.msgpack"), pth)
    convert(pth, folder, to_format="orbax")
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(folder.resolve())
    want, got = flatten_dict(variables), flatten_dict(restored)
    assert set(want) == set(got)
    for key, value in want.items():
        assert np.asarray(got[key]).dtype == value.dtype and np.array_equal(got[key], value), key
    x = np.random.default_rng(4).standard_normal((2, 3, 64, 80)).astype("float32")
    assert np.array_equal(_logits(model, restored, x), _logits(model, variables, x))
    convert(folder, back)  # our metadata rides in orbax's custom_metadata: no padding note, no --assume needed
    a, b = (read_checkpoint(p, format_for(p), None).weights for p in (pth, back))
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_an_orbax_output_keeps_the_force_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing orbax folder is replaced only with --force (no temp folder left beside it); a folder that is
    not an orbax checkpoint is never replaced, --force or not; a name without --to is one line."""
    from resnet_spec.random_weights import random_weights

    src = tmp_path / "w.safetensors"
    first, second = (random_weights(get_spec("resnet18"), seed=s) for s in (1, 2))
    from resnet_tools.checkpoints.formats import FORMATS, Checkpoint

    def weights_of(folder: Path) -> dict[str, Any]:
        return read_checkpoint(folder, FORMATS["orbax"], None).weights

    folder = tmp_path / "ckpt"
    FORMATS["safetensors"].write(Checkpoint(first, {}), get_spec("resnet18"), src)  # type: ignore[misc]
    assert main(["convert", str(src), str(folder), "--to", "orbax"]) == 0
    assert np.array_equal(weights_of(folder)["fc.weight"], first["fc.weight"])
    FORMATS["safetensors"].write(Checkpoint(second, {}), get_spec("resnet18"), src)  # type: ignore[misc]
    assert main(["convert", str(src), str(folder), "--to", "orbax"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert np.array_equal(weights_of(folder)["fc.weight"], first["fc.weight"])
    assert main(["convert", str(src), str(folder), "--to", "orbax", "--force"]) == 0
    assert np.array_equal(weights_of(folder)["fc.weight"], second["fc.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "w.safetensors"]  # no temp folder left
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"not a checkpoint")
    for extra in ([], ["--force"]):
        assert main(["convert", str(src), str(mine), "--to", "orbax", *extra]) == 2
        err = capsys.readouterr().err
        assert "is a folder that is not an orbax checkpoint" in err and err.count("\n") == 1, err
    assert [p.name for p in mine.iterdir()] == ["cat.jpg"]
    assert main(["convert", str(src), str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert "--to" in err and err.count("\n") == 1, err


# ---- --reference: a hand-written NNX model, run and watched -------------------------------------------------


_BUILD = "from parity_tests import handwritten\n\n\ndef build():\n    return "


def _nnx_reference(tmp_path: Path, args: str, orbax: bool = False) -> tuple[Any, Path, str]:
    """The user's NNX model (parity_tests/handwritten.py), its file as an NNX user saves one (msgpack of the pure
    state dict, or an orbax folder of ``nnx.state``), and a ``--reference`` to the code that builds it."""
    from flax import nnx, serialization

    kwargs = {k.strip(): v.strip() == "True" or int(v) for k, v in (a.split("=") for a in args.split(",") if a)}
    model = handwritten.flax_tutorial_resnet18(**kwargs)  # as the --reference code below builds it
    if orbax:
        import orbax.checkpoint as ocp

        src = tmp_path / "mine_ckpt"
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(src.resolve(), nnx.state(model))
            checkpointer.wait_until_finished()
    else:
        src = tmp_path / "mine.msgpack"
        src.write_bytes(serialization.to_bytes(nnx.state(model).to_pure_dict()))
    code = tmp_path / "my_model.py"
    code.write_text(f"{_BUILD}handwritten.flax_tutorial_resnet18({args})\n")
    return model, src, f"{code}:build"


@pytest.mark.parametrize(("args", "orbax"), [("num_classes=7", False), ("num_classes=5, cifar=True", True)])
def test_a_hand_written_nnx_model_converts_by_its_code(args: str, orbax: bool, tmp_path: Path) -> None:
    """A tutorial's NNX ResNet-18 (its own names: ``layer2.layers.0.shortcut.layers.1``), saved as NNX users save
    it: --reference builds it, Flax's own reader loads the file into it, its layers are watched as they run, and
    every framework's model of the converted file computes the user's own logits (H != W, batch 2)."""
    import jax.numpy as jnp

    model, src, ref = _nnx_reference(tmp_path, args, orbax)
    x = np.random.default_rng(4).standard_normal((2, 3, 40, 56)).astype("float32")
    expected = np.asarray(model(jnp.asarray(x.transpose(0, 2, 3, 1))))
    notes = read_checkpoint(src, format_for(src), how=MapRequest(reference=ref)).notes
    assert any("proved against your model: every block and the logits" in n for n in notes), notes
    for fw, ext in EXT.items():
        if fw not in LOADED:
            continue
        dst = tmp_path / f"out-{fw}{ext}"
        result = convert(src, dst, how=MapRequest(reference=ref))
        assert result.spec.name == "resnet18" and result.spec.num_classes == int(args.split(",")[0].split("=")[1])
        assert (result.spec.stem.kind == "cifar") == ("cifar" in args)
        mod = LOADED[fw]
        weights = read_checkpoint(dst, format_for(dst)).weights
        got = mod.forward_numpy(mod.import_weights(mod.create_model(result.spec), weights), x)["logits"]
        assert tensor_diff(expected, got).max_rel <= TOL, fw


@pytest.mark.parametrize(
    ("args", "where"), [("stride_on_conv2=True", "block layer2.0"), ("same_padding=True", "the stem")]
)
def test_nnx_lookalikes_with_the_same_weights_are_refused(
    args: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same weight shapes, another computation (the stride on each downsampling block's second conv;
    TF-'SAME' padding on the strided convs and the pool): the run against the user's model refuses to convert,
    naming where the two part, and writes nothing."""
    _model, src, ref = _nnx_reference(tmp_path, args)
    dst = tmp_path / "out.pth"
    assert main(["convert", str(src), str(dst), "--reference", ref]) == 1
    err = capsys.readouterr().err
    assert f"part at {where}" in err and "architectural difference" in err and err.count("\n") == 1, err
    assert not dst.exists()


def test_an_nnx_file_that_is_not_the_models_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _model, src, _ref = _nnx_reference(tmp_path, "num_classes=7")
    code = tmp_path / "other.py"
    code.write_text(f"{_BUILD}handwritten.flax_tutorial_resnet18()\n")
    assert main(["convert", str(src), str(tmp_path / "o.pth"), "--reference", f"{code}:build"]) == 2
    err = capsys.readouterr().err
    assert "does not load into it" in err and "fc/bias is [7] in the file, [10] in the model" in err, err
    assert err.count("\n") == 1, err
