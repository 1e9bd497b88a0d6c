"""What every checkpoint format shares: the canonical checkpoint, the format record, one-line read
errors, the metadata we write, state-dict wrappers (Lightning, EMA, DDP prefixes), lazy tensors that fail in one
line, and native <-> canonical weights."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError, ResNetError
from resnet_spec.naming import TORCH_BN_COUNTER, canonical_entry_from_native, from_native, to_native
from resnet_spec.weights import validate_weights
from resnet_tools.checkpoints.lazy import apply

#: What a reader is told of the model: nothing, a zoo name, or the spec itself (a derived spec has no name to look up).
ModelRef = str | ModelSpec | None

FORMAT_VERSION = "1"
PRODUCER = "resnet-xf"
#: Where the weights came from, kept through conversions by formats with metadata: the official id, and
#: the preprocessing its images need (predict uses it; torchvision's V2 weights want resize 232).
PROVENANCE_KEYS = ("weights_id", "preprocessing")
#: A training checkpoint (resnet train --save) keeps its optimizer state beside the weights under this
#: prefix, and its run (optimizer, step, data, seed) as JSON in the ``training`` metadata entry.
OPTIMIZER_PREFIX = "optimizer/"
TRAINING_KEY = "training"


@dataclass
class Checkpoint:
    """Canonical weights plus what the file says about itself."""

    weights: dict[str, Any]  # numpy arrays; LazyArray (still in the file) when read with lazy=True
    metadata: dict[str, str] = field(default_factory=dict)
    spec: ModelSpec | None = None  # known when the format needs it to be read (Keras .weights.h5)
    notes: list[str] = field(default_factory=list)  # what reading changed, e.g. bfloat16 widened to float32
    optimizer: dict[str, Any] = field(default_factory=dict)  # a training checkpoint's optimizer state
    mapping: Any = None  # torch/paddle: how the file's modules map onto the zoo (structure.StructureMap)
    container: Any = None  # torch/paddle: how the file wraps its state dict (Container)
    #: A state dict as the reader found it (``{native key: tensor}`` in ``framework``'s naming and layouts), until
    #: the map step (``resnet_tools.checkpoints.mapping``) turns it into ``weights``: readers do not map.
    native: dict[str, Any] | None = None
    framework: str | None = None
    ordered: bool = True  # native's keys in the model's registration order (False: sorted by the writer)
    reader: Any = None  # the user's model that read the file (--reference on a file only its model reads)


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    framework: str | None  # its ecosystem: the backend predict uses by default, and verifies with
    read: Callable[[Path, ModelRef], Checkpoint]
    write: Callable[[Checkpoint, ModelSpec, Path], None] | None
    description: str
    imports: str | None = None  # the backend reading or writing it imports (None: no framework at all)
    write_imports: str | None = None  # the backend its writer alone imports (a .keras is read without Keras)
    #: A state-dict format (torch, paddle): writes a native ``{key: array}`` object, wrappers kept (``--like``).
    #: Such files may hold a ResNet of the user's own naming, mapped by structure (``resnet map``).
    write_state: Callable[[Any, Path], None] | None = None
    #: A framework's weights file that the model file of ``--emit-code`` loads (not a model archive, not read-only).
    code: bool = False
    #: A checkpoint directory (orbax), not a file.
    folder: bool = False


def why(exc: BaseException) -> str:
    """One line on why a file could not be read. The loaders' own advice to load untrusted pickles
    unsafely (``weights_only=False``, ``allow_pickle=True``) is never passed on."""
    text = str(exc).strip()
    if not text:
        return f"{type(exc).__name__} (empty or truncated file)"
    if "weights_only" in text or "allow_pickle" in text or "pickled" in text:
        where = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" ({where[1]})" if where else ""
        return (
            f"not a plain tensor file: it is corrupt, or it pickles Python objects{what} (a whole model saved "
            "with torch.save(model)? save model.state_dict() instead; paddle: paddle.save(model.state_dict())); "
            "loading it could run code, so it is refused"
        )
    return text.splitlines()[0]


#: The metadata entry holding, as JSON, what the weights cannot show (``resnet_spec.lookalikes``) where it is not
#: the zoo entry's: a file of a look-alike (timm's resnetv2 as resnet50v2 with stride_block=first) reads back as one.
ASSUMED_KEY = "unseen_options"


#: The metadata entry holding, as JSON, a derived spec's document (``resnet_spec.derive.document_of``): a model outside
#: the zoo reads back as itself.
DERIVED_KEY = "derived_spec"


def unseen_options(spec: ModelSpec) -> dict[str, str]:
    """``{look-alike axis: value}`` where ``spec`` differs from its zoo entry."""
    from resnet_spec.lookalikes import AXES

    return {a.name: a.current(spec) for a in AXES if a.name in spec.overridden}


def file_metadata(spec: ModelSpec, ckpt: Checkpoint) -> dict[str, str]:
    from resnet_spec.derive import document_of
    from resnet_spec.spec import is_zoo_model

    unseen = unseen_options(spec)
    derived = not is_zoo_model(spec.name)
    return {
        **({ASSUMED_KEY: json.dumps(unseen, sort_keys=True)} if unseen and not derived else {}),
        **({DERIVED_KEY: json.dumps(document_of(spec), sort_keys=True)} if derived else {}),
        "model": spec.name,
        "spec_hash": spec.spec_hash(),
        "format_version": FORMAT_VERSION,
        "producer": PRODUCER,
        "num_classes": str(spec.num_classes),
        "source_framework": ckpt.metadata.get("source_framework", "unknown"),
        "source_version": ckpt.metadata.get("source_version", ""),
        **{k: ckpt.metadata[k] for k in PROVENANCE_KEYS if k in ckpt.metadata},
        # a training run's record stays only with its optimizer state (a converted copy holds weights alone)
        **({TRAINING_KEY: ckpt.metadata[TRAINING_KEY]} if has_optimizer_state(ckpt) else {}),
    }


def has_optimizer_state(ckpt: Checkpoint) -> bool:
    return TRAINING_KEY in ckpt.metadata and any(k.startswith(OPTIMIZER_PREFIX) for k in ckpt.weights)


def guarded(path: Path, load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """A lazy tensor's loader whose failure (a file changed or cut short since it was opened) is one line."""

    def run() -> np.ndarray:
        try:
            return load()
        except ResNetError:
            raise
        except Exception as exc:
            raise CheckpointError(f"cannot read {path}: {why(exc)}") from None

    return run


#: Where training scripts keep the state dict: plain, Lightning, timm, DeiT, kuangliu's CIFAR ("net"), in that
#: order of preference; an EMA copy is used only when it is all the file holds.
TORCH_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "state_dict_ema", "model_ema", "ema")
#: Prefixes wrappers add to every key: DataParallel/DDP, Lightning's ``self.model``, torch.compile.
KEY_PREFIXES = ("module.", "model.", "_orig_mod.")


@dataclass(frozen=True)
class Container:
    """How a torch/paddle file holds its state dict: the wrapper keys above it, the prefix on every key, and
    whether each BN carries torch's batch counter (``--like`` writes a file the same way)."""

    trail: tuple[str, ...] = ()
    prefix: str = ""
    counters: bool = False


def unwrap_state(obj: Any, is_tensor: Callable[[Any], bool], path: Path) -> tuple[dict[str, Any], list[str], Container]:
    """The ``{key: tensor}`` inside a training checkpoint's wrappers, with wrapper prefixes stripped."""
    notes: list[str] = []
    trail: list[str] = []
    while isinstance(obj, dict) and not (obj and all(is_tensor(v) for v in obj.values())):
        key = next((k for k in TORCH_WRAPPERS if isinstance(obj.get(k), dict) and obj[k]), None)
        if key is None:
            break
        others = [k for k in TORCH_WRAPPERS if k != key and isinstance(obj.get(k), dict)]
        if others:
            notes.append(f"read the weights under '{key}'; the file also holds {', '.join(repr(k) for k in others)}")
        trail.append(key)
        obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(is_tensor(v) for v in obj.values()):
        kinds = sorted({type(v).__name__ for v in obj.values()}) if isinstance(obj, dict) else [type(obj).__name__]
        raise CheckpointError(
            f"{path} is not a state dict (expected name -> tensor, optionally under "
            f"{' / '.join(TORCH_WRAPPERS)}); found {', '.join(kinds[:4])}"
        )
    if trail:
        notes.append(f"state dict found under {' / '.join(repr(k) for k in trail)}")
    stripped = []
    while True:
        prefix = next((p for p in KEY_PREFIXES if all(k.startswith(p) for k in obj)), None)
        if prefix is None:
            break
        obj = {k.removeprefix(prefix): v for k, v in obj.items()}
        stripped.append(prefix)
    if stripped:
        notes.append(f"key prefix {''.join(stripped)!r} removed")
    counters = any(k.endswith(TORCH_BN_COUNTER) for k in obj)
    return obj, notes, Container(tuple(trail), "".join(stripped), counters)


def native_state(ckpt: Checkpoint, spec: ModelSpec, framework: str) -> dict[str, Any]:
    """``{native_key: tensor}`` in the model's module order, checked first (no model is built). Lazy
    tensors stay lazy (the layout transform runs when the writer reads them); arrays whose layout is
    unchanged are shared with ``ckpt``, not copied (the file gets its own bytes)."""
    return {
        ne.key: apply(
            ckpt.weights[ne.entry.name], functools.partial(to_native, ne.entry, framework, copy=False), ne.shape
        )
        for ne in validate_weights(spec, framework, ckpt.weights)
    }


def weights_from_native(
    native: dict[str, Any], framework: str, path: Path, depths: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """Native keys and layouts -> canonical ones, by naming rule (Flax's names need the stage ``depths``); lazy
    tensors get their transform chained. Consumes ``native``: each array read into memory is let go once its
    canonical copy exists."""
    out = {}
    try:
        for key in list(native):
            value = native.pop(key)
            entry = canonical_entry_from_native(key, framework, tuple(np.shape(value)), depths)
            out[entry.name] = apply(value, functools.partial(from_native, entry, framework), entry.shape)
    except ValueError as exc:
        raise CheckpointError(f"{path}: not a ResNet checkpoint of this zoo: {exc}") from None
    return out
