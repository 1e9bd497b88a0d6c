"""The docs site builds strictly; the generated zoo table is the spec's."""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_spec import count_params, get_spec, list_models

ROOT = Path(__file__).resolve().parents[1]


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
