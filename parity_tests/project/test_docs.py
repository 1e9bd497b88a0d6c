"""The docs site builds strictly; the generated zoo table is the spec's."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_spec import count_params, get_spec, list_models

ROOT = Path(__file__).resolve().parents[2]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_zoo_table_matches_spec() -> None:
    table = _hooks().zoo_table_markdown().splitlines()
    rows = [line for line in table[2:] if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list_models()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        spec = get_spec(cells[0].strip("`"))
        assert cells[3] == "-".join(map(str, spec.depths))
        assert (int(cells[5].replace(",", "")), int(cells[6].replace(",", ""))) == count_params(spec)


def test_hook_replaces_marker() -> None:
    out = _hooks().on_page_markdown("before\n<!-- zoo-table -->\nafter")
    assert "<!-- zoo-table -->" not in out and "`resnet152v2`" in out


@pytest.mark.skipif(
    shutil.which("mkdocs") is None and importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs not installed (dev extra)",
)
def test_docs_build_strict(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    side = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "site" / "side-by-side" / "index.html").read_text()))
    assert "class PreActBottleneck(nn.Layer):" in side and "class PreActBottleneck:" in side  # pulled from source
    assert "resnext101_64x4d" in (tmp_path / "site" / "zoo" / "index.html").read_text()


def test_source_snippets_sit_inside_code_fences() -> None:
    """A snippet of source pulled in outside a fence renders its code as running text (issue 15)."""
    bad = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        fenced = False
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if line.strip().startswith("```"):
                fenced = not fenced
            elif line.strip().startswith("--8<--") and not fenced:
                target = line.split('"')[1] if '"' in line else ""
                if not target.startswith("docs/"):  # generated Markdown is meant to render as Markdown
                    bad.append(f"{page.name}:{number}: {line.strip()}")
    assert not bad, bad


# ---- every example runs as written ---------------------------------------------------------------------

#: An HTML comment just before a fence: ``<!-- docs-test: skip (reason) -->``. Only for what needs the network.
SKIP_MARK = re.compile(r"<!-- docs-test: skip \((.+)\) -->")


def docs_examples(page: Path) -> tuple[list[str], list[str]]:
    """(the page's Python examples in order, the reasons of those marked skip). Source snippets pulled in
    with ``--8<--`` are the tested code itself, not examples."""
    blocks, skipped, current, skip = [], [], None, None
    for line in page.read_text().splitlines():
        stripped = line.strip()
        if current is None:
            mark = SKIP_MARK.search(stripped)
            if mark:
                skip = mark.group(1)
            elif stripped == "```python" and line == stripped:  # top-level fences only (not inside tabs)
                current = []
            elif stripped:
                skip = None
        elif stripped == "```":
            code = "\n".join(current)
            if "--8<--" not in code:
                (skipped.append(skip) if skip else blocks.append(code))
            current, skip = None, None
        else:
            current.append(line)
    return blocks, skipped


PAGES_WITH_EXAMPLES = sorted(p.name for p in (ROOT / "docs").glob("*.md") if any(docs_examples(p)))


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_docs_examples_run_as_written(page: str, tmp_path: Path) -> None:
    """Each page's Python examples, run in order in one fresh interpreter (a NameError, a fragment or a stale
    API fails here). Skips are allowed only with a reason naming the network."""
    blocks, skipped = docs_examples(ROOT / "docs" / page)
    assert all("network" in why for why in skipped), skipped
    if not blocks:
        return
    script = tmp_path / "examples.py"
    script.write_text("\n\n".join(blocks) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert res.returncode == 0, f"docs/{page}:\n{res.stderr[-3000:]}"


def test_docs_examples_finds_fragments(tmp_path: Path) -> None:
    """The extractor sees top-level examples, leaves out snippets and honours the skip mark."""
    page = tmp_path / "p.md"
    page.write_text(
        '```python\nx = 1\n```\n\n```python\n--8<-- "a.py:b"\n```\n\n<!-- docs-test: skip (needs the network) -->\n'
        '```python\nfetch()\n```\n\n=== "tab"\n    ```python\n    y = 2\n    ```\n'
    )
    assert docs_examples(page) == (["x = 1"], ["needs the network"])


def test_diff_hook_marks_changed_tokens_and_folds_the_rest(tmp_path: Path) -> None:
    """The torch-vs-paddle page's diff: changed tokens marked on their side, identical runs folded, snippet
    markers gone, and the real files' differences (layer class names, bias switch) visible."""
    hooks = _hooks()
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    same = [f"x{i} = {i}" for i in range(20)]
    a.write_text("\n".join(["# --8<-- [start:s]", "layer = nn.Conv2d(3, 4, bias=False)", *same, "end = 1"]) + "\n")
    b.write_text("\n".join(["# --8<-- [start:s]", "layer = nn.Conv2D(3, 4, bias_attr=False)", *same, "end = 2"]) + "\n")
    hooks.ROOT = tmp_path
    out = hooks.diff_html("a.py", "b.py")
    assert "<del>Conv2d</del>" in out and "<ins>Conv2D</ins>" in out and "<ins>bias_attr</ins>" in out
    assert "identical lines" in out and out.count("x10 = 10") == 0 and "--8&lt;--" not in out
    assert "<del>1</del>" in out and "<ins>2</ins>" in out
    hooks.ROOT = ROOT
    real = hooks.diff_html("resnet_torch/blocks.py", "resnet_paddle/blocks.py")
    assert "<ins>Conv2D</ins>" in real and "<ins>Layer</ins>" in real and "bias_attr" in real
    assert hooks.on_page_markdown("<!-- diff resnet_torch/model.py resnet_paddle/model.py -->").startswith(
        '<div class="xf-diff">'
    )


def _site_checker():
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browser_check_fails_on_a_missing_image_and_a_wide_table(tmp_path: Path) -> None:
    """``make docs-check`` in headless Chromium: a page with a missing image and a table wider than the column
    fails, with both named; a plain page passes; every page gets a screenshot."""
    checker = _site_checker()
    browser = checker.chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt install chromium): make docs-check says the same")
    site = tmp_path / "site"
    wide = "<table><tr>" + "".join(f"<td>column_number_{i}_with_a_long_name</td>" for i in range(14)) + "</tr></table>"
    layout = '<html><body><article class="md-content__inner" style="width: 600px">{}</article></body></html>'
    (site / "bad").mkdir(parents=True)
    (site / "bad" / "index.html").write_text(layout.format(f'<img src="nowhere.png"><div>{wide}</div>'))
    (site / "index.html").write_text(layout.format("<p>fine</p>"))
    results = checker.check(site, tmp_path / "shots", 1280, browser)
    assert results["index"] == []
    assert any(p.startswith("missing image: nowhere.png") for p in results["bad"]), results
    assert any(p.startswith("table wider than the column") for p in results["bad"]), results
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["bad.png", "index.png"]
