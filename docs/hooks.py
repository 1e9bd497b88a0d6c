"""mkdocs hook: pages get generated content at build time, so it cannot drift from the code.

``<!-- zoo-table -->`` becomes the zoo table computed from resnet_spec/resnets.yaml;
``<!-- official-weights-table -->`` the official checkpoints of resnet_spec/official_weights.yaml;
``<!-- diff A B -->`` a side-by-side diff of two source files with the changed tokens marked.
"""

from __future__ import annotations

import difflib
import html
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIFF = re.compile(r"<!-- diff (\S+) (\S+) -->")
SNIPPET_LINE = re.compile(r"^\s*# --8<-- \[(start|end):[\w-]+\]\s*$")
TOKENS = re.compile(r"\w+|\s+|[^\w\s]")
CONTEXT = 3  # identical lines kept around each change; longer identical runs fold into one row

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


def _source_lines(path: str) -> list[str]:
    """A source file's lines without the docs' snippet markers."""
    return [ln for ln in (ROOT / path).read_text().splitlines() if not SNIPPET_LINE.match(ln)]


def _marked(a: str, b: str) -> tuple[str, str]:
    """Two changed lines as HTML, the tokens that differ wrapped in <del> (left) and <ins> (right)."""
    ta, tb = TOKENS.findall(a), TOKENS.findall(b)
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        x, y = html.escape("".join(ta[i1:i2])), html.escape("".join(tb[j1:j2]))
        if op == "equal":
            left.append(x)
            right.append(y)
        else:
            left.append(f"<del>{x}</del>" if x else "")
            right.append(f"<ins>{y}</ins>" if y else "")
    return "".join(left), "".join(right)


def diff_html(path_a: str, path_b: str) -> str:
    """A two-column diff of two source files: changed lines paired, changed tokens marked, long identical
    runs folded. Generated at build time, so it shows the code as it is."""
    a, b = _source_lines(path_a), _source_lines(path_b)
    rows: list[str] = []

    def row(left: str, right: str, kind: str) -> None:
        rows.append(f'<tr class="{kind}"><td><code>{left}</code></td><td><code>{right}</code></td></tr>')

    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for n, (op, i1, i2, j1, j2) in enumerate(ops):
        if op == "equal":
            lines = a[i1:i2]
            head = CONTEXT if n > 0 else 0
            tail = CONTEXT if n < len(ops) - 1 else 0
            if len(lines) > head + tail + 1:
                for ln in lines[:head]:
                    row(html.escape(ln), html.escape(ln), "same")
                folded = len(lines) - head - tail
                rows.append(f'<tr class="fold"><td colspan="2">… {folded} identical lines …</td></tr>')
                for ln in lines[len(lines) - tail :]:
                    row(html.escape(ln), html.escape(ln), "same")
            else:
                for ln in lines:
                    row(html.escape(ln), html.escape(ln), "same")
            continue
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            if k < len(left) and k < len(right):
                row(*_marked(left[k], right[k]), "changed")
            elif k < len(left):
                row(f"<del>{html.escape(left[k])}</del>", "", "changed")
            else:
                row("", f"<ins>{html.escape(right[k])}</ins>", "changed")
    head = f"<tr><th><code>{html.escape(path_a)}</code></th><th><code>{html.escape(path_b)}</code></th></tr>"
    return f'<div class="xf-diff"><table class="xf-diff-table">{head}{"".join(rows)}</table></div>'


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, zoo_table_markdown())
    if WEIGHTS_MARKER in markdown:
        markdown = markdown.replace(WEIGHTS_MARKER, official_weights_markdown())
    return DIFF.sub(lambda m: diff_html(m.group(1), m.group(2)), markdown)
