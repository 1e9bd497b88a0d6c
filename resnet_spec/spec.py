"""Load, validate and resolve the YAML zoo into immutable :class:`ModelSpec` objects."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from resnet_spec import bounded_yaml
from resnet_spec.errors import SpecError
from resnet_spec.model_spec import ConvBias, ModelSpec, StemSpec
from resnet_spec.params import count_params

SPEC_PATH = Path(__file__).with_name("resnets.yaml")
SCHEMA_PATH = Path(__file__).with_name("schema.json")

#: Options create_model() accepts besides the model name, with what each means.
OVERRIDES = {
    "num_classes": "classifier outputs; 0 = no head, the model returns pooled features",
    "zero_init_residual": "zero-initialise the last BN gamma (or last conv, pre-activation) of each block",
    "replace_stride_with_dilation": "3 booleans: dilate instead of stride in the 3 downsampling stages",
    "stem": "'imagenet' (7x7/2 conv + max-pool) or 'cifar' (3x3/1 conv, no max-pool)",
    "in_channels": "input channels",
    "conv_bias": "True: every conv has a bias (hand-written ResNets such as d2l's); False: none",
    "shortcut": "projection of a V1.5 model: 'projection_when_needed' (1x1 conv + BN) or 'conv_when_needed' "
    "(1x1 conv alone, as in d2l)",
    # What the weights cannot show (resnet_spec.lookalikes): models that differ only here have the same tensors.
    "stride_on": "bottleneck: the conv that strides, 'conv1x1' (ResNet v1, keras.applications) or 'conv3x3' (v1.5)",
    "stride_block": "pre-activation: the block of a stage that strides, 'last' (keras.applications V2) or 'first' "
    "(timm's resnetv2)",
    "pool_pad": "the stem max-pool's padding, 'zero' (keras.applications) or 'neg_inf' (torch's MaxPool2d padding=1)",
    "channel_pad": "option A shortcuts: the new channels' zeros 'split' before and after the input's, or at the 'end'",
    "downsample": "a strided projection shortcut: its 1x1 'conv' strides (torchvision), or an 'avg_pool' 2x2 does "
    "(ResNet-D: timm's resnet*d, PaddleClas' *_vd)",
    "padding": "strided 3x3 convs and the stem max-pool pad 'symmetric' (torchvision) or TensorFlow's 'same' "
    "(Flax's examples/imagenet: one after, none before, on an even side)",
}
#: The shortcut kinds a V1.5 model may be built with (the others place the projection elsewhere).
PROJECTIONS = ("projection_when_needed", "conv_when_needed")


DTYPES = ("float32", "float64")
#: Mixed-precision compute dtypes (parameters stay float32): torch/paddle autocast, Keras' mixed_* policies.
AMP_DTYPES = ("bfloat16", "float16")


def check_dtype(dtype: str) -> str:
    """A supported parameter dtype, or SpecError naming the supported ones."""
    if dtype not in DTYPES:
        raise SpecError(f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPES)}")
    return dtype


def check_amp(amp: str | None) -> str | None:
    """None (full precision) or a supported mixed-precision compute dtype, else SpecError."""
    if amp is not None and amp not in AMP_DTYPES:
        raise SpecError(f"unsupported mixed-precision dtype {amp!r}; supported: {', '.join(AMP_DTYPES)}")
    return amp


def _schema_error(path: Path, err: jsonschema.ValidationError) -> SpecError:
    where = list(err.absolute_path)
    if len(where) >= 2 and where[0] in ("models", "variants"):
        kind = "model" if where[0] == "models" else "variant"
        rest = ".".join(str(p) for p in where[2:]) or "(entry)"
        return SpecError(f"{path.name}: {kind} '{where[1]}': field '{rest}': {err.message}")
    return SpecError(f"{path.name}: field '{'.'.join(map(str, where)) or '(top)'}': {err.message}")


def validate_document(doc: Any, path: Path = SPEC_PATH) -> None:
    """Check a parsed YAML document against the JSON schema; raise SpecError naming the field."""
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(doc))
    if errors:
        # The deepest error names the offending field most precisely.
        raise _schema_error(path, max(errors, key=lambda e: len(e.absolute_path)))


def resolve_model(
    name: str, entry: dict[str, Any], doc: dict[str, Any], path: Path = SPEC_PATH, *, derived: bool = False
) -> ModelSpec:
    """Merge defaults <- variant <- model entry and check the rules a schema cannot express (``derived``: a
    derived spec's document, ``resnet_spec.derive``, whose stem may be CIFAR's)."""
    where = f"{path.name}: model '{name}'"
    variants, blocks, defaults = doc["variants"], doc["blocks"], doc["defaults"]
    if entry["variant"] not in variants:
        known = ", ".join(variants)
        raise SpecError(f"{where}: field 'variant': unknown variant {entry['variant']!r} (known: {known})")
    if entry["block"] not in blocks:
        raise SpecError(f"{where}: field 'block': unknown block {entry['block']!r} (known: {', '.join(blocks)})")
    merged: dict[str, Any] = {k: v for k, v in defaults.items() if k != "cifar_stem"}
    merged.update(variants[entry["variant"]])
    merged.update(entry)
    merged["stem"] = {**variants[entry["variant"]]["stem"], **entry.get("stem", {})}  # field-wise override
    missing = sorted(set(StemSpec.__dataclass_fields__) - set(merged["stem"]) - {"deep", "relu"})
    if missing:
        raise SpecError(f"{where}: field 'stem': missing {', '.join(missing)}")
    if merged["preprocessing"] not in doc["preprocessing"]:
        raise SpecError(
            f"{where}: field 'preprocessing': unknown {merged['preprocessing']!r} "
            f"(known: {', '.join(doc['preprocessing'])})"
        )
    if merged["block"] == "basic" and (merged["groups"] != 1 or merged["width_per_group"] != 64):
        raise SpecError(f"{where}: field 'groups': the basic block supports only groups=1, width_per_group=64")
    if merged["stem"].get("kind", "imagenet") != "imagenet" and not derived:
        raise SpecError(f"{where}: field 'stem.kind': a zoo entry has the imagenet stem (cifar is an override)")
    lengths = {len(merged[k]) for k in ("depths", "widths", "stage_strides")}
    if len(lengths) != 1:
        raise SpecError(f"{where}: fields 'depths', 'widths', 'stage_strides': one entry per stage each, got {lengths}")
    stem = StemSpec(**{**merged["stem"], "deep": tuple(merged["stem"].get("deep", ()))})
    if stem.deep and stem.kernel != 3:
        raise SpecError(f"{where}: field 'stem.kernel': a deep stem's convs are 3x3, got {stem.kernel}")
    return ModelSpec(
        name=name,
        variant=merged["variant"],
        preprocessing=merged["preprocessing"],
        block=merged["block"],
        expansion=blocks[merged["block"]]["expansion"],
        depths=tuple(merged["depths"]),
        widths=tuple(merged["widths"]),
        groups=merged["groups"],
        width_per_group=merged["width_per_group"],
        preact=merged["preact"],
        stride_on=merged["stride_on"],
        stride_block=merged["stride_block"],
        stage_strides=tuple(merged["stage_strides"]),
        conv_bias=ConvBias(**merged["conv_bias"]),
        bn_eps=float(merged["bn_eps"]),
        bn_momentum=float(merged["bn_momentum"]),
        stem=stem,
        shortcut=merged["shortcut"],
        channel_pad=merged.get("channel_pad", "split"),
        downsample=merged.get("downsample", "conv"),
        widen_on=merged.get("widen_on", "conv1"),
        padding=merged.get("padding", "symmetric"),
        post_norm=merged["post_norm"],
        num_classes=merged["num_classes"],
        in_channels=merged["in_channels"],
        expected_trainable=merged["params"]["trainable"],
        expected_bn_stats=merged["params"]["bn_stats"],
    )


def load_zoo(path: Path | str = SPEC_PATH) -> dict[str, ModelSpec]:
    """Parse, validate and resolve a zoo YAML file; every model is resolved and its declared parameter
    counts are checked against the architecture (fail fast, one line). A derived spec's file (CIFAR stems
    in its entries) loads too."""
    path = Path(path)
    try:
        doc = bounded_yaml.load_file(path)  # a --spec file is the user's: no aliases, bounded depth and size
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path.name}: not valid YAML{where}: {problem}") from None
    except ValueError as exc:
        raise SpecError(f"{path.name}: refused: {exc}") from None
    return load_document(doc, path, derived=path.resolve() != SPEC_PATH.resolve())


def load_document(doc: Any, path: Path = SPEC_PATH, *, derived: bool = False) -> dict[str, ModelSpec]:
    """Validate and resolve a parsed zoo document (the YAML's, or a derived spec's: ``derived``)."""
    validate_document(doc, path)
    zoo = {name: resolve_model(name, entry, doc, path, derived=derived) for name, entry in doc["models"].items()}
    for name, spec in zoo.items():
        counted = count_params(spec)
        if counted != (spec.expected_trainable, spec.expected_bn_stats):
            raise SpecError(
                f"{path.name}: model '{name}': field 'params': declares {spec.expected_trainable:,} trainable + "
                f"{spec.expected_bn_stats:,} BN statistics, the architecture has {counted[0]:,} + {counted[1]:,}"
            )
    return zoo


#: Environment variable naming another zoo YAML to use instead of the built-in one (``resnet --spec``).
SPEC_ENV_VAR = "RESNET_SPEC"


def active_spec_path() -> Path:
    """The zoo YAML in use: ``$RESNET_SPEC`` when set, else the built-in ``resnets.yaml``."""
    return Path(os.environ.get(SPEC_ENV_VAR) or SPEC_PATH)


@functools.cache
def _load(path: Path) -> dict[str, ModelSpec]:
    return load_zoo(path)


def _zoo() -> dict[str, ModelSpec]:
    return _load(active_spec_path())


@functools.cache
def _document(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


@dataclass(frozen=True)
class Preprocessing:
    """How a family's official checkpoints expect an image; see the YAML's ``preprocessing:``."""

    name: str
    resize: str  # "short_side": the short side to ``size``; "square": the image to size x size
    size: int
    crop: int  # center crop
    channels: str  # "RGB" or "BGR"
    divisor: float  # then (pixel / divisor - mean) / std per channel
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def get_preprocessing(name: str) -> Preprocessing:
    """The named preprocessing of the zoo YAML (``torchvision``, ``caffe``, ``tf``)."""
    _zoo()  # the active spec, validated
    table = _document(active_spec_path())["preprocessing"]
    if name not in table:
        raise SpecError(f"unknown preprocessing {name!r}; known: {', '.join(table)}")
    e = table[name]
    return Preprocessing(
        name, e["resize"], e["size"], e["crop"], e["channels"], float(e["divisor"]), tuple(e["mean"]), tuple(e["std"])
    )


#: The YAML's preprocessing recipe for models built with the CIFAR stem.
CIFAR_PREPROCESSING = "cifar"


def cifar_stem_fields() -> dict[str, Any]:
    """The CIFAR stem's fields from the YAML defaults."""
    _zoo()  # the active spec, validated
    return dict(_document(active_spec_path())["defaults"]["cifar_stem"])


def list_models() -> list[str]:
    """Names of every model in the zoo, in spec order."""
    return list(_zoo())


def is_zoo_model(name: str) -> bool:
    """Whether ``name`` is a model of the built-in zoo (``resnets.yaml``), whatever ``--spec`` is active: anything else
    is a derived or custom spec, which our files carry with them."""
    return name in _load(SPEC_PATH)


def unknown_model_message(name: str) -> str:
    """One line naming the bad model, the closest names and every known one."""
    close = difflib.get_close_matches(name, list_models(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown model {name!r}{hint}; known models: {', '.join(list_models())}"


def apply_overrides(spec: ModelSpec, **overrides: Any) -> ModelSpec:
    """Return a copy of ``spec`` with build options applied; unknown or bad options raise SpecError."""
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise SpecError(
            f"{spec.name}: unknown option(s) {', '.join(unknown)}; valid options: "
            + "; ".join(f"{k} ({v})" for k, v in OVERRIDES.items())
        )
    changes: dict[str, Any] = {}
    if "num_classes" in overrides:
        n = overrides["num_classes"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SpecError(f"{spec.name}: num_classes must be an integer >= 0, got {n!r}")
        changes["num_classes"] = n
    if "in_channels" in overrides:
        c = overrides["in_channels"]
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise SpecError(f"{spec.name}: in_channels must be an integer >= 1, got {c!r}")
        changes["in_channels"] = c
    if "zero_init_residual" in overrides:
        if not isinstance(overrides["zero_init_residual"], bool):
            raise SpecError(f"{spec.name}: zero_init_residual must be True or False")
        changes["zero_init_residual"] = overrides["zero_init_residual"]
    if "replace_stride_with_dilation" in overrides:
        flags = overrides["replace_stride_with_dilation"]
        if flags is None:
            flags = (False, False, False)
        if not (isinstance(flags, (list, tuple)) and len(flags) == 3 and all(isinstance(f, bool) for f in flags)):
            raise SpecError(f"{spec.name}: replace_stride_with_dilation must be 3 booleans, got {flags!r}")
        if any(flags) and spec.block != "bottleneck":
            raise SpecError(f"{spec.name}: replace_stride_with_dilation needs a bottleneck model ({spec.block} block)")
        changes["replace_stride_with_dilation"] = tuple(flags)
    if "stem" in overrides:
        kind = overrides["stem"]
        if kind not in ("imagenet", "cifar"):
            raise SpecError(f"{spec.name}: stem must be 'imagenet' or 'cifar', got {kind!r}")
        if kind == "cifar":
            changes["stem"] = dataclasses.replace(spec.stem, **cifar_stem_fields())
            changes["preprocessing"] = CIFAR_PREPROCESSING  # 32x32 images, not the ImageNet family's 224
    changes |= _hand_written_options(spec, overrides)
    changes |= _unseen_options(spec, overrides, changes.get("stem", spec.stem))
    changed = {k for k, v in changes.items() if getattr(spec, k) != v}
    if "stem" in changed and changes["stem"].pool_pad != spec.stem.pool_pad:
        changed.add("pool_pad")
        if dataclasses.replace(changes["stem"], pool_pad=spec.stem.pool_pad) == spec.stem:
            changed.discard("stem")  # only the padding changed: not the CIFAR stem
    changes["overridden"] = tuple(sorted(set(spec.overridden) | changed))
    return dataclasses.replace(spec, **changes)


def _hand_written_options(spec: ModelSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """``conv_bias`` and ``shortcut``: the V1.5 model as hand-written ResNets (d2l.ai's) build it."""
    changes: dict[str, Any] = {}
    if "conv_bias" in overrides:
        on = overrides["conv_bias"]
        if not isinstance(on, bool):
            raise SpecError(f"{spec.name}: conv_bias must be True or False, got {on!r}")
        changes["conv_bias"] = ConvBias(stem=on, shortcut=on, inner=on, last=on)
    if "shortcut" in overrides:
        kind = overrides["shortcut"]
        if kind not in PROJECTIONS:
            raise SpecError(f"{spec.name}: shortcut must be one of {', '.join(PROJECTIONS)}, got {kind!r}")
        if spec.shortcut not in PROJECTIONS:
            raise SpecError(f"{spec.name}: shortcut {spec.shortcut} (variant {spec.variant}) cannot be changed")
        changes["shortcut"] = kind
    return changes


def _unseen_options(spec: ModelSpec, overrides: dict[str, Any], stem: StemSpec) -> dict[str, Any]:
    """``stride_on``, ``stride_block``, ``pool_pad``, ``channel_pad``, ``downsample`` and ``padding``: settings the
    weights cannot
    show (same tensors either way)."""
    changes: dict[str, Any] = {}
    if "stride_on" in overrides:
        on = overrides["stride_on"]
        if on not in ("conv1x1", "conv3x3"):
            raise SpecError(f"{spec.name}: stride_on must be 'conv1x1' or 'conv3x3', got {on!r}")
        if spec.block != "bottleneck" and on != spec.stride_on:
            raise SpecError(f"{spec.name}: stride_on applies to bottleneck blocks ({spec.block} block)")
        changes["stride_on"] = on
    if "stride_block" in overrides:
        where = overrides["stride_block"]
        if where not in ("first", "last"):
            raise SpecError(f"{spec.name}: stride_block must be 'first' or 'last', got {where!r}")
        if where != spec.stride_block:
            if spec.shortcut != "conv_first_block":  # elsewhere the projection moves with the stride
                raise SpecError(
                    f"{spec.name}: stride_block can move only in a pre-activation model (shortcut {spec.shortcut})"
                )
            strides = spec.stage_strides
            # the same stage transitions downsample: last-block stage k strides where first-block stage k + 1 does
            changes["stage_strides"] = (1, *strides[:-1]) if where == "first" else (*strides[1:], 1)
        changes["stride_block"] = where
    if "pool_pad" in overrides:
        pad = overrides["pool_pad"]
        if pad not in ("zero", "neg_inf"):
            raise SpecError(f"{spec.name}: pool_pad must be 'zero' or 'neg_inf', got {pad!r}")
        changes["stem"] = dataclasses.replace(stem, pool_pad=pad)
    if "channel_pad" in overrides:
        where = overrides["channel_pad"]
        if where not in ("split", "end"):
            raise SpecError(f"{spec.name}: channel_pad must be 'split' or 'end', got {where!r}")
        changes["channel_pad"] = where
    if "downsample" in overrides:
        how = overrides["downsample"]
        if how not in ("conv", "avg_pool"):
            raise SpecError(f"{spec.name}: downsample must be 'conv' or 'avg_pool', got {how!r}")
        if how != spec.downsample and spec.shortcut not in PROJECTIONS:
            raise SpecError(f"{spec.name}: downsample applies to projection shortcuts (shortcut {spec.shortcut})")
        changes["downsample"] = how
    if "padding" in overrides:
        pad = overrides["padding"]
        if pad not in ("symmetric", "same"):
            raise SpecError(f"{spec.name}: padding must be 'symmetric' or 'same', got {pad!r}")
        changes["padding"] = pad
    return changes


def get_spec(name: str, **overrides: Any) -> ModelSpec:
    """The resolved spec of a zoo model, with optional build options (see :data:`OVERRIDES`).

    Example:
        >>> get_spec("resnet50").depths
        (3, 4, 6, 3)
    """
    zoo = _zoo()
    if name not in zoo:
        raise SpecError(unknown_model_message(name))
    overrides = {k: v for k, v in overrides.items() if v is not None}  # None: the YAML's value
    return apply_overrides(zoo[name], **overrides) if overrides else zoo[name]
