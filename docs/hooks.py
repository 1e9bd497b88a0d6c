"""mkdocs hook: pages get generated content at build time, so it cannot drift from the code.

``<!-- zoo-table -->`` becomes the zoo table computed from resnet_spec/resnets.yaml;
``<!-- official-weights-table -->`` the official checkpoints of resnet_spec/official_weights.yaml.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- zoo-table -->"
WEIGHTS_MARKER = "<!-- official-weights-table -->"


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


def official_weights_markdown() -> str:
    """One table per source (narrow enough for the page): id, model, published accuracy, recipe, hash."""
    from resnet_spec.official import TABLE_PATH, load_table

    table = load_table(TABLE_PATH)  # the built-in table, whatever the environment says
    lines: list[str] = []
    for source in dict.fromkeys(w.source for w in table.values()):
        entries = [w for w in table.values() if w.source == source]
        lines += [f"**{source}** ({entries[0].format} files)", ""]
        lines += ["| id | our model | top-1 / top-5 | preprocessing | hash |", "|---|---|---|---|---|"]
        for w in entries:
            acc = f"{w.top1:g} / {w.top5:g}" if w.top1 is not None and w.top5 is not None else "-"
            model = f"`{w.model}`" + ("" if w.num_classes else ", no classifier")
            name = f"`{w.id}`" + (" (default)" if w.default else "")
            lines.append(f"| {name} | {model} | {acc} | {w.preprocessing} | {w.hash_text()} |")
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, zoo_table_markdown())
    if WEIGHTS_MARKER in markdown:
        markdown = markdown.replace(WEIGHTS_MARKER, official_weights_markdown())
    return markdown
