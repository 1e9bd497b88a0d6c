"""Keras 3 ``.keras`` archives: what ``model.save()`` writes (a zip of ``config.json``, ``metadata.json``
and ``model.weights.h5``).

Read with zipfile, json and h5py: no Keras import, and nothing in the archive is executed (its config is
read as data, never deserialized into layers). The weights are read like a ``.weights.h5``
(:mod:`keras_h5`); the config says what the file's model computes around them: a transfer-learning head
after average pooling converts with its head, a head after Flatten or max pooling is refused (no zoo
model computes it), and preprocessing layers outside the ResNet are noted (they hold no weights to move).

Written with Keras itself: a plain functional model of built-in layers, so ``keras.models.load_model``
needs no custom objects.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_tools.checkpoints import keras_h5
from resnet_tools.checkpoints.lazy import LazyArray

WEIGHTS_MEMBER = "model.weights.h5"
CONFIG_MEMBER = "config.json"
#: Layers that may sit between the ResNet body and a Dense head without changing what the head sees
#: at inference (average pooling as the zoo's models do it; dropout and activations are identities there).
_HEAD_PATH_OK = {
    *("GlobalAveragePooling2D", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise"),
    *("Activation", "Softmax", "InputLayer"),
}
#: Layers that change what a head sees: no zoo model computes them.
_HEAD_PATH_BAD = {"Flatten", "GlobalMaxPooling2D", "MaxPooling2D", "AveragePooling2D", "Reshape", "Conv2D", "Dense"}
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}


def _layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    return [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []


def _classes(config: dict[str, Any]) -> Iterator[str]:
    """Every layer class in a (possibly nested) model config."""
    for layer in _layers(config):
        yield str(layer.get("class_name"))
        yield from _classes(layer)


def _name(layer: dict[str, Any]) -> str:
    cfg = layer.get("config")
    return str(cfg.get("name")) if isinstance(cfg, dict) else "?"


def config_notes(config: Any, source: str) -> list[str]:
    """Check the file's model around the ResNet body; refuse what no zoo model computes, note the rest."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise CheckpointError(f"{source}: config.json is not a Keras model config")
    top = _layers(config)
    body = [x for x in top if x.get("class_name") in _MODEL_CLASSES and "Conv2D" in set(_classes(x))]
    if not body:  # the ResNet is the file's model itself (keras.applications saved as it is)
        pools = [_name(x) for x in top if x.get("class_name") == "GlobalMaxPooling2D"]
        notes = [f"its model max-pools the features ({pools[0]}); the zoo's models average-pool"] if pools else []
        return notes + _activation_note(top)
    after = top[top.index(body[0]) + 1 :]
    classes = [str(x.get("class_name")) for x in after]
    has_head = "Dense" in classes
    if has_head:
        before_head = classes[: classes.index("Dense")]
        bad = [c for c in before_head if c in _HEAD_PATH_BAD or c not in _HEAD_PATH_OK]
        if bad or "GlobalAveragePooling2D" not in before_head:
            between = ", ".join(before_head) or "nothing"
            raise CheckpointError(
                f"{source}: its head sees the ResNet's features through {between}; the zoo's classifier "
                f"reads average-pooled features (GlobalAveragePooling2D), so no zoo model computes this head"
            )
    notes = []
    outside = [str(x.get("class_name")) for x in top if x is not body[0] and x.get("class_name") not in _HEAD_PATH_OK]
    outside = [c for c in outside if c != "Dense"]
    if outside:
        notes.append(
            f"layers outside the ResNet ({', '.join(outside)}) hold no weights and are not converted: "
            f"apply them to the inputs yourself"
        )
    return notes + _activation_note(after)


def _activation_note(layers: list[dict[str, Any]]) -> list[str]:
    """keras.applications' default head ends in softmax; the zoo's models output the logits before it."""
    dense = [x["config"] for x in layers if x.get("class_name") == "Dense" and isinstance(x.get("config"), dict)]
    activation = dense[-1].get("activation") if dense else None
    if activation in (None, "linear"):
        return []
    return [f"its classifier applies {activation}; the converted model outputs the logits before it"]


#: The most a .keras member may unpack to: config.json (a ResNet-152's is about 200 kB) and, when a tool recompressed
#: the archive, the weights member (read into memory then; float64 wide_resnet101_2 is about 1 GiB).
MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 2 << 30
#: A real archive's members compress little (Keras stores them; floats deflate about 1.1x): past this, a zip bomb.
MAX_RATIO = 20


def check_members(zf: zipfile.ZipFile, source: str) -> None:
    """Before anything is read: no member twice (zipfile would read the last one silently), and what each member
    of ours declares it unpacks to within bounds (the sizes a zip declares come before its data)."""
    names = zf.namelist()
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise CheckpointError(f"{source}: the archive holds {twice[0]} twice; which one is the model's is unknown")
    for name, limit in ((CONFIG_MEMBER, MAX_CONFIG_BYTES), (WEIGHTS_MEMBER, MAX_WEIGHTS_BYTES)):
        if name not in names:
            continue
        info = zf.getinfo(name)
        packed = info.compress_type != zipfile.ZIP_STORED
        if (name == CONFIG_MEMBER or packed) and info.file_size > limit:
            raise CheckpointError(f"{source}: {name} unpacks to {info.file_size:,} bytes (more than {limit:,})")
        if packed and info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
            raise CheckpointError(
                f"{source}: {name} unpacks {info.file_size // max(info.compress_size, 1)}x its size: not a model's"
            )


def _open_weights(zf: zipfile.ZipFile, source: str) -> Any:
    """``model.weights.h5`` opened in place (Keras stores members uncompressed: reads seek into the zip),
    or read into memory where a tool recompressed the archive."""
    import h5py

    names = zf.namelist()
    if WEIGHTS_MEMBER not in names:
        sharded = [n for n in names if n.startswith("model.weights")]
        why = f"sharded weights ({sharded[0]})" if sharded else "no model.weights.h5"
        raise CheckpointError(f"{source}: {why}; save the model with model.save(path) in one file")
    info = zf.getinfo(WEIGHTS_MEMBER)
    member = zf.open(info) if info.compress_type == zipfile.ZIP_STORED else io.BytesIO(zf.read(info))
    return h5py.File(member, "r")


def read(path: Path, model: str | ModelSpec | None) -> tuple[ModelSpec | None, dict[str, LazyArray], list[str]]:
    """A ``.keras`` archive's ResNet (see :func:`keras_h5.read_layers`) and notes on its model's config."""
    source = str(path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except (OSError, zipfile.BadZipFile, NotImplementedError, EOFError) as exc:  # a version zipfile lacks too
        raise CheckpointError(f"cannot read {path} as a .keras archive (a zip): {exc}") from None
    try:
        if CONFIG_MEMBER not in zf.namelist():
            raise CheckpointError(f"{path} is a zip without config.json: not a Keras 3 .keras archive")
        check_members(zf, source)
        try:
            config = json.loads(zf.read(CONFIG_MEMBER))
            notes = config_notes(config, source)
        except ValueError:
            raise CheckpointError(f"{path}: config.json is not JSON") from None
        except RecursionError:  # a config nested thousands deep (models in models): Python's stack is the bound
            raise CheckpointError(f"{path}: config.json nests too deeply to be a model's config") from None
        f = _open_weights(zf, source)
        spec, native, more = keras_h5.read_layers(f, source, model)
    except OSError as exc:
        zf.close()
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError) as exc:
        zf.close()  # a damaged zip: bad CRC or lengths, a method or version zipfile lacks, an encrypted member
        raise CheckpointError(f"cannot read {path} as a .keras archive (a zip): {exc}") from None
    except BaseException:
        zf.close()
        raise
    return spec, native, notes + more


def write(weights: dict[str, Any], spec: ModelSpec, path: Path) -> None:
    """A ``.keras`` that ``keras.models.load_model`` opens without custom objects: our model's graph as a
    plain functional model of built-in layers, saved by Keras (float64 weights build a float64 model)."""
    from resnet_tools.core.backends import load_backend

    rk: Any = load_backend("keras")
    import keras

    dtype = (
        "float64"
        if any(np.dtype(getattr(v, "dtype", "float32")) == np.float64 for v in weights.values())
        else "float32"
    )
    model = rk.import_weights(rk.create_model(spec, dtype=dtype), {k: np.asarray(v) for k, v in weights.items()})
    plain = keras.Model(model.inputs, model.outputs, name=spec.name)
    plain.save(str(path))
