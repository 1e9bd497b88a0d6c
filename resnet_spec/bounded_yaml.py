"""YAML a user hands us (a map file, a spec file) read within bounds: no aliases (a 2 kB file of nested aliases,
"billion laughs", expands to gigabytes in whatever walks it), at most :data:`MAX_DEPTH` levels of nesting, at
most :data:`MAX_BYTES` of text. Checked while composing, before any value is built; each breach is one
``ValueError`` line naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: Bigger than any map or spec file (the zoo's YAML is 8 kB; a ResNet-152's map file about 40 kB).
MAX_BYTES = 4 << 20
#: Deeper than any map or spec file needs (they nest four levels).
MAX_DEPTH = 32


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases and nesting past :data:`MAX_DEPTH` as the document is composed."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            mark = event.start_mark
            raise ValueError(f"an alias (*{event.anchor}) at line {mark.line + 1}: aliases are not read here")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_text(text: str) -> Any:
    """A YAML document, bounded (see the module docstring); ValueError or yaml.YAMLError on a breach."""
    if len(text.encode()) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES >> 20} MiB")
    return yaml.load(text, Loader=_BoundedLoader)


def load_file(path: Path | str) -> Any:
    """:func:`load_text` of a file, its size checked before it is read."""
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES >> 20} MiB")
    return load_text(path.read_text())
