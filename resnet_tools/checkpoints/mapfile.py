"""Map files: how a checkpoint's modules map onto the zoo, as editable YAML (``resnet map --save``); a command
given one with ``--map`` maps the checkpoint by it (``MapRequest.map_file``) instead of the naming rules.

```yaml
framework: torch          # the checkpoint's framework
model: resnet50           # the zoo model, with the options its shapes imply
options: {num_classes: 5, in_channels: 3, stride_on: conv3x3}   # what the weights cannot show too
modules:                  # the checkpoint's module path -> the zoo's canonical module
  s.0: conv1
  r.0.a: layer1.0.conv1
```
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from resnet_spec import bounded_yaml
from resnet_spec.errors import CheckpointError
from resnet_spec.frameworks import FRAMEWORKS
from resnet_spec.lookalikes import open_axes
from resnet_spec.spec import get_spec
from resnet_tools.checkpoints.structure import StructureMap, Unit, targets_of, units_of

#: The entry of a draft map that lists what ``resnet map`` could not decide: a map holding it is refused until edited.
UNCHECKED = "unchecked"


def load(path: Path | str) -> dict[str, Any]:
    """A map file, checked for its fields (one line on what is wrong)."""
    try:
        data = bounded_yaml.load_file(path)  # no aliases, bounded depth and size: read in bounded time and memory
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read map file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CheckpointError(f"map file {path} is not YAML: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:
        raise CheckpointError(f"map file {path} is refused: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("modules"), dict) or not data["modules"]:
        raise CheckpointError(f"map file {path} has no 'modules:' mapping (write one with resnet map --save)")
    if data.get("framework") not in FRAMEWORKS or not isinstance(data.get("model"), str):
        raise CheckpointError(f"map file {path} needs 'framework:' ({', '.join(FRAMEWORKS)}) and 'model:'")
    if not isinstance(data.get("options", {}), dict):
        raise CheckpointError(f"map file {path}: 'options:' must be a mapping")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data["modules"].items()):
        raise CheckpointError(f"map file {path}: 'modules:' must map module paths to canonical modules (strings)")
    unchecked = data.get(UNCHECKED, [])
    if unchecked:
        listing = ", ".join(map(str, unchecked[:3] if isinstance(unchecked, list) else [unchecked]))
        raise CheckpointError(
            f"map file {path} is an unchecked draft: resnet map flagged {listing} as ambiguous; check those lines "
            f"against your code, fix what is wrong, then delete its '{UNCHECKED}:' entry"
        )
    return data


def apply(data: Mapping[str, Any], native: Mapping[str, Any], framework: str, source: str) -> StructureMap:
    """The mapping a map file describes, checked against the checkpoint: every module mapped once, onto
    a module of the same kind and shape."""
    if data["framework"] != framework:
        raise CheckpointError(f"the map is for a {data['framework']} checkpoint; {source} is {framework}")
    try:
        spec = get_spec(data["model"], **data.get("options", {}))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"the map's model: {exc}") from None
    units = {u.path: u for u in units_of(native, framework)}
    targets = {t.module: t for t in targets_of(spec)}
    modules: dict[str, str] = dict(data["modules"])
    unmapped = [p for p in units if p not in modules]
    unknown = [p for p in modules if p not in units]
    if unmapped or unknown:
        what = f"{unmapped[0]} is in the file but not the map" if unmapped else f"{unknown[0]} is not in the file"
        raise CheckpointError(f"the map does not fit {source}: {what}")
    mapped: dict[str, Unit] = {}
    for path, module in modules.items():
        unit, target = units[path], targets.get(module)
        if target is None:
            raise CheckpointError(f"the map sends {path} to {module}, which {spec.name} does not have")
        if (unit.kind, unit.shape) != (target.kind, target.shape):
            got, want = f"{unit.kind} {list(unit.shape)}", f"{target.kind} {list(target.shape)}"
            raise CheckpointError(f"the map sends {path} ({got}) to {module} ({want})")
        if module in mapped:
            raise CheckpointError(f"the map sends both {mapped[module].path} and {path} to {module}")
        mapped[module] = unit
    missing = [m for m in targets if m not in mapped]
    if missing:
        raise CheckpointError(f"the map leaves {spec.name}'s {missing[0]} unfilled")
    return StructureMap(spec, {m: mapped[m] for m in targets}, framework, [f"mapped by the map file onto {spec.name}"])


def dump(m: StructureMap) -> str:
    """A map file's text for a mapping (``resnet map --save``)."""
    assert m.spec is not None
    options = {k: getattr(m.spec, k) for k in ("num_classes", "in_channels")}
    if m.spec.stem.kind != "imagenet":
        options["stem"] = m.spec.stem.kind
    for name in ("conv_bias", "shortcut"):  # d2l-style options the structure implied
        if name in m.spec.overridden:
            options[name] = m.spec.conv_bias.inner if name == "conv_bias" else m.spec.shortcut
    for a in open_axes(m.spec):  # what the weights cannot show, written out for the user to check
        options[a.name] = a.current(m.spec)
    data = {
        "framework": m.framework,
        "model": m.spec.name,
        "options": options,
        "modules": {unit.path: module for module, unit in m.units.items()},
    }
    head = "# resnet map: the checkpoint's module paths -> the zoo's canonical modules. Edit, then pass --map.\n"
    flagged = [n for n in m.notes if n.startswith("AMBIGUOUS")]
    head += "".join(f"# {n}\n" for n in flagged)
    if flagged:  # refused by --map until the user has checked them and deleted this entry
        data = {UNCHECKED: [n.split(":", 1)[0].removeprefix("AMBIGUOUS").strip() or "options" for n in flagged],
                **data}  # fmt: skip
    return head + yaml.safe_dump(data, sort_keys=False)
