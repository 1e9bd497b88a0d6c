"""The framework-free spec: schema validation, counts, geometry, names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resnet_spec import SpecError, canonical_table, count_params, feature_shapes, get_spec, list_models, load_zoo
from resnet_spec.naming import canonical_module, keras_layer_name
from resnet_spec.shapes import conv_sites
from resnet_spec.spec import SPEC_PATH

# Independent reference: torchvision / keras.applications published counts (trainable, BN stats).
REFERENCE_COUNTS = {
    "resnet18": (11_689_512, 9_600),
    "resnet34": (21_797_672, 17_024),
    "resnet50": (25_557_032, 53_120),
    "resnet101": (44_549_160, 105_344),
    "resnet152": (60_192_808, 151_424),
    "resnext50_32x4d": (25_028_904, 68_224),
    "resnext101_32x8d": (88_791_336, 202_880),
    "resnext101_64x4d": (83_455_272, 202_880),
    "wide_resnet50_2": (68_883_240, 68_224),
    "wide_resnet101_2": (126_886_696, 137_856),
    "resnet50v1": (25_583_592, 53_120),
    "resnet101v1": (44_601_832, 105_344),
    "resnet152v1": (60_268_520, 151_424),
    "resnet50v2": (25_568_360, 45_440),
    "resnet101v2": (44_577_896, 97_664),
    "resnet152v2": (60_236_904, 143_744),
}


#: No published reference exists for these (keras.applications has no 18/34-layer V2): their YAML counts
#: come from count_params, so for them test_yaml_counts_equal_computed_counts checks consistency only,
#: not correctness. Their architecture is covered by cross-framework parity and the V2 block tests.
UNREFERENCED = {"resnet18v2", "resnet34v2"}


def test_zoo_names() -> None:
    assert set(REFERENCE_COUNTS) | UNREFERENCED == set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_yaml_counts_equal_computed_counts(name: str) -> None:
    spec = get_spec(name)
    assert count_params(spec) == (spec.expected_trainable, spec.expected_bn_stats)


@pytest.mark.parametrize("name", sorted(REFERENCE_COUNTS))
def test_yaml_counts_equal_reference(name: str) -> None:
    spec = get_spec(name)
    assert (spec.expected_trainable, spec.expected_bn_stats) == REFERENCE_COUNTS[name]


@pytest.mark.parametrize("name", list_models())
def test_keras_names_round_trip(name: str) -> None:
    modules = {e.module for e in canonical_table(get_spec(name))}
    keras_names = {keras_layer_name(m) for m in modules}
    assert len(keras_names) == len(modules)
    assert {canonical_module(k) for k in keras_names} == modules


def test_keras_application_names() -> None:
    spec = get_spec("resnet50v2")
    names = {keras_layer_name(e.module) for e in canonical_table(spec)}
    for expected in (
        "conv1_conv",
        "conv2_block1_preact_bn",
        "conv2_block1_0_conv",
        "conv2_block3_3_conv",
        "conv5_block3_2_bn",
        "post_bn",
        "predictions",
    ):
        assert expected in names
    assert "conv1_bn" not in names  # V2 stem has no BN


def test_geometry_v15_vs_v2() -> None:
    v15 = feature_shapes(get_spec("resnet50"), 224, 224)
    v2 = feature_shapes(get_spec("resnet50v2"), 224, 224)
    assert [s[1] for s in v15.values()] == [56, 56, 28, 14, 7]
    assert [s[1] for s in v2.values()] == [56, 28, 14, 7, 7]  # stride on the last block of stages 1-3


def test_dilation_output_stride() -> None:
    spec = get_spec("resnet50", replace_stride_with_dilation=(False, True, True))
    assert feature_shapes(spec, 224, 224)["stage4"] == (2048, 28, 28)
    assert count_params(spec) == count_params(get_spec("resnet50"))


def test_cifar_stem() -> None:
    spec = get_spec("resnet18", stem="cifar", num_classes=10)
    assert feature_shapes(spec, 32, 32)["stem"] == (64, 32, 32)
    assert canonical_table(spec)[0].shape == (64, 3, 3, 3)


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(SpecError) as exc:
        get_spec("resnet51")
    msg = str(exc.value)
    assert "resnet51" in msg and "did you mean" in msg
    assert all(name in msg for name in list_models())


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"num_clases": 10}, "unknown option(s) num_clases"),
        ({"num_classes": -1}, "num_classes must be"),
        ({"replace_stride_with_dilation": (True,)}, "3 booleans"),
        ({"stem": "tiny"}, "stem must be"),
        ({"zero_init_residual": "yes"}, "zero_init_residual must be"),
    ],
)
def test_bad_overrides(overrides: dict, fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        get_spec("resnet50", **overrides)
    assert fragment in str(exc.value)


def test_dilation_needs_bottleneck() -> None:
    with pytest.raises(SpecError, match="bottleneck"):
        get_spec("resnet18", replace_stride_with_dilation=(False, False, True))


def _write_variant(tmp_path: Path, mutate) -> Path:
    doc = yaml.safe_load(SPEC_PATH.read_text())
    mutate(doc)
    path = tmp_path / "bad_zoo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda d: d["models"]["resnet50"].update(depths=[3, 4]), ("model 'resnet50'", "depths")),
        (lambda d: d["models"]["resnet34"].update(block="triple"), ("model 'resnet34'", "block", "triple")),
        (lambda d: d["models"]["resnet18"].update(variant="v9"), ("model 'resnet18'", "variant", "v9")),
        (lambda d: d["variants"]["v1"].update(bn_eps=-1), ("variant 'v1'", "bn_eps")),
        (lambda d: d["models"]["resnet50"].update(params={"trainable": 1}), ("model 'resnet50'", "params")),
        (lambda d: d["models"]["resnet18"].update(groups=32), ("model 'resnet18'", "groups")),
        (lambda d: d["models"]["resnet18"].update(colour="red"), ("model 'resnet18'", "colour")),
    ],
)
def test_bad_spec_names_file_model_and_field(tmp_path: Path, mutate, fragments: tuple[str, ...]) -> None:
    path = _write_variant(tmp_path, mutate)
    with pytest.raises(SpecError) as exc:
        load_zoo(path)
    msg = str(exc.value)
    assert msg.startswith("bad_zoo.yaml: ")
    for fragment in fragments:
        assert fragment in msg


def test_unreadable_spec(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("models: [unclosed")
    with pytest.raises(SpecError, match=r"broken\.yaml: not valid YAML at line 1, column 18: ") as exc:
        load_zoo(path)
    assert "\n" not in str(exc.value)


def test_declared_counts_are_checked_on_load(tmp_path: Path) -> None:
    """A custom zoo entry whose params: block is wrong is refused on load, naming both counts."""
    path = _write_variant(tmp_path, lambda d: d["models"]["resnet50"]["params"].update(trainable=25_557_033))
    with pytest.raises(
        SpecError,
        match=r"model 'resnet50': field 'params': declares 25,557,033 trainable .* "
        r"the architecture has 25,557,032 \+ 53,120",
    ):
        load_zoo(path)


def _custom_zoo(tmp_path: Path) -> Path:
    """The built-in zoo plus a ResNet-26 (bottleneck, 2-2-2-2) with its correct counts."""

    def add(doc: dict) -> None:
        doc["models"]["resnet26_custom"] = {
            "variant": "v1.5",
            "block": "bottleneck",
            "depths": [2, 2, 2, 2],
            "params": {"trainable": 1, "bn_stats": 1},
        }
        spec = __import__("resnet_spec.spec", fromlist=["resolve_model"]).resolve_model(
            "resnet26_custom", doc["models"]["resnet26_custom"], doc
        )
        trainable, stats = count_params(spec)
        doc["models"]["resnet26_custom"]["params"] = {"trainable": trainable, "bn_stats": stats}

    return _write_variant(tmp_path, add)


def test_cli_spec_option_uses_a_custom_zoo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from resnet_tools.cli import main

    path = _custom_zoo(tmp_path)
    assert main(["--spec", str(path), "list"]) == 0
    assert "resnet26_custom" in capsys.readouterr().out
    assert "resnet26_custom" not in list_models()  # in-process main() leaves the built-in zoo active
    assert main(["--spec", str(path), "summary", "resnet26_custom", "--backend", "torch", "--input", "1x3x64x80"]) == 0
    assert "total params" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "no such file"), ("models: [unclosed", "not valid YAML at line 1"), ("{}", "field '(top)'")],
)
def test_cli_bad_spec_is_one_line(
    content: str | None, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from resnet_tools.cli import main

    path = tmp_path / "zoo.yaml"
    if content is not None:
        path.write_text(content)
    assert main(["--spec", str(path), "list"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("name", list_models())
def test_conv_sites_cover_every_conv_weight(name: str) -> None:
    spec = get_spec(name)
    sites = conv_sites(spec, 97, 131)
    weights = [e for e in canonical_table(spec) if e.kind == "conv" and e.attr == "weight"]
    assert [
        (s.conv.out_channels, s.conv.in_channels // s.conv.groups, s.conv.kernel, s.conv.kernel) for s in sites
    ] == [e.shape for e in weights]  # same convs, same order
    stem = sites[0]
    assert (stem.height, stem.width) == (97, 131)
    k, st = stem.conv.kernel, stem.conv.stride
    h_out, w_out = (97 + 2 * (k // 2) - k) // st + 1, (131 + 2 * (k // 2) - k) // st + 1
    assert stem.macs == h_out * w_out * stem.conv.out_channels * 3 * k * k
