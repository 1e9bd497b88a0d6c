"""mkdocs hook: pages get generated content at build time, so it cannot drift from the code.

``<!-- zoo-table -->`` becomes the zoo table computed from resnet_spec/resnets.yaml.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- zoo-table -->"


def zoo_table_markdown() -> str:
    from resnet_tools.zoo.table import zoo_rows

    lines = [
        "| model | family | block | depths | inner widths | params | BN stats | GMACs @224 "
        "| stage outputs @224 (CxHxW) |",
        "|---|---|---|---|---|---:|---:|---:|---|",
    ]
    for r in zoo_rows():
        lines.append(
            f"| `{r.name}` | {r.family} | {r.block} | {r.depths} | {r.widths} | {r.trainable:,} | {r.bn_stats:,} "
            f"| {r.gmacs:.2f} | {r.stage_shapes} |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, zoo_table_markdown())
    return markdown
