"""The official pretrained checkpoints (``official_weights.yaml``) as :class:`OfficialWeights` records.

Data only: where a file lives, its hash, the zoo model it fills and its preprocessing. Downloading is
the tools' business (:mod:`resnet_tools.hub`).

Example:
    >>> w = get_official("torchvision:resnet50")
    >>> w.id, w.model, w.preprocessing
    ('torchvision:resnet50.IMAGENET1K_V2', 'resnet50', 'torchvision_v2')
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from resnet_spec.errors import SpecError
from resnet_spec.model_spec import ModelSpec
from resnet_spec.spec import get_preprocessing, get_spec, list_models

TABLE_PATH = Path(__file__).with_name("official_weights.yaml")
SCHEMA_PATH = Path(__file__).with_name("official_weights.schema.json")
#: Environment variable naming another table to use instead of the built-in one (a private zoo, tests).
TABLE_ENV_VAR = "RESNET_WEIGHTS_TABLE"
#: ``source:name``; a source name has two characters or more, so ``C:\\x`` is never an id.
_ID = re.compile(r"^([a-z][a-z0-9_-]+):([A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class OfficialWeights:
    """One published checkpoint: ``torchvision:resnet50.IMAGENET1K_V2``."""

    source: str  # torchvision, paddle, keras
    name: str  # the source's own name: resnet50.IMAGENET1K_V2
    model: str  # our zoo model it fills
    url: str
    file: str  # the file name in the cache and on a mirror
    format: str  # a checkpoint format name (resnet_tools.checkpoints.formats.FORMATS)
    sha256: str | None  # full hex digest, or the 8-hex prefix torchvision names its files with
    md5: str | None
    top1: float | None  # published ImageNet-1K accuracy, percent (None: not published with the weights)
    top5: float | None
    num_classes: int  # 0 for files without a classifier (keras' include_top=False)
    preprocessing: str  # a recipe of the zoo YAML's preprocessing:
    default: bool  # what ``source:model`` means when the source has several weights for the model

    @property
    def id(self) -> str:
        return f"{self.source}:{self.name}"

    def spec(self) -> ModelSpec:
        """The model these weights fill, with their head size."""
        return get_spec(self.model, num_classes=self.num_classes)

    def hash_text(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 else f"md5 {self.md5}"


def table_path() -> Path:
    """The table in use: ``$RESNET_WEIGHTS_TABLE`` when set, else the built-in one."""
    return Path(os.environ.get(TABLE_ENV_VAR) or TABLE_PATH)


def load_table(path: Path | str) -> dict[str, OfficialWeights]:
    """Parse and validate a weights table; every entry's model and preprocessing must exist in the zoo."""
    path = Path(path)
    try:
        doc: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the weights table: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise SpecError(f"{path.name}: {where}: {exc.message}") from None
    table: dict[str, OfficialWeights] = {}
    for source, block in doc["sources"].items():
        for name, e in block["weights"].items():
            w = OfficialWeights(
                source=source,
                name=name,
                model=e["model"],
                url=block["base_url"] + e["file"],
                file=e["file"],
                format=block["format"],
                sha256=e.get("sha256"),
                md5=e.get("md5"),
                top1=e.get("top1"),
                top5=e.get("top5"),
                num_classes=e.get("num_classes", 1000),
                preprocessing=e["preprocessing"],
                default=e.get("default", False),
            )
            _check_entry(w, path)
            table[w.id] = w
    for source in doc["sources"]:
        for model in {w.model for w in table.values() if w.source == source}:
            defaults = [w.id for w in table.values() if w.source == source and w.model == model and w.default]
            if len(defaults) > 1:
                raise SpecError(f"{path.name}: {source}: several defaults for {model}: {', '.join(defaults)}")
    return table


def _check_entry(w: OfficialWeights, path: Path) -> None:
    if w.model not in list_models():
        raise SpecError(f"{path.name}: {w.id}: unknown model {w.model!r} (known: {', '.join(list_models())})")
    get_preprocessing(w.preprocessing)  # unknown recipe: one line naming the known ones
    if w.top1 is not None and w.top5 is not None and w.top5 < w.top1:
        raise SpecError(f"{path.name}: {w.id}: top5 {w.top5} is below top1 {w.top1}")


@functools.cache
def _table(path: Path) -> dict[str, OfficialWeights]:
    return load_table(path)


def official_weights() -> dict[str, OfficialWeights]:
    """Every entry of the active table, by id, in table order."""
    return _table(table_path())


def sources() -> list[str]:
    return list(dict.fromkeys(w.source for w in official_weights().values()))


def looks_like_id(text: str) -> bool:
    """Shaped like ``source:name`` (the caller checks first that no such local file exists)."""
    return _ID.match(text) is not None


def get_official(ref: str) -> OfficialWeights:
    """The entry ``ref`` names: ``source:name`` exactly, or ``source:model`` (its default, or its only
    entry). Anything else is one line naming what is known."""
    table = official_weights()
    if ref in table:
        return table[ref]
    source, _, name = ref.partition(":")
    if source not in sources():
        raise SpecError(f"unknown weights source {source!r} in {ref!r}; known: {', '.join(sources())}")
    mine = [w for w in table.values() if w.source == source and name in (w.model, w.name.split(".")[0])]
    defaults = [w for w in mine if w.default]
    if len(defaults) == 1:
        return defaults[0]
    if len(mine) == 1:
        return mine[0]
    if mine:
        raise SpecError(f"{ref} names several weights; pick one: {', '.join(w.id for w in mine)}")
    ids = [w.id for w in table.values() if w.source == source]
    close = difflib.get_close_matches(ref, ids, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise SpecError(f"unknown weights {ref!r}{hint}; `resnet zoo` lists them ({source}: {len(ids)} ids)")
