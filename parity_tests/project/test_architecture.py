"""The tree shows the architecture: rules checked on every import statement (module level and lazy).

- ``resnet_spec`` imports no framework and nothing of ours but itself, and names no backend package.
- ``resnet_tools.core`` (shared low-level helpers) imports no wing above it.
- A wing imports no other wing's CLI; nothing imports ``resnet_tools.cli`` but the CLI.
- No import cycle anywhere in ``resnet_tools`` or ``resnet_spec``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = {"torch", "paddle", "tensorflow", "keras", "jax", "torchvision", "flax", "optax", "orbax"}
#: Every backend package, from the records (resnet_spec.frameworks lists the frameworks; each has resnet_<name>/).
BACKEND_PACKAGES = {f"resnet_{name}" for name in __import__("resnet_spec.frameworks").frameworks.FRAMEWORKS}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an ``import`` / ``from ... import`` in the file names (function bodies and
    ``if TYPE_CHECKING:`` blocks included: a circle of types is a circle too);
    ``from pkg import sub`` counts as ``pkg.sub`` when that is one of our modules."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    files = [f for pkg in packages for f in (ROOT / pkg).rglob("*.py")]
    ours = {_module_name(f) for f in files}
    return {_module_name(f): {m for m in _imports(f) if m in ours} for f in files} | {
        f"__raw__{_module_name(f)}": _imports(f) for f in files
    }


GRAPH = _graph(("resnet_spec", "resnet_tools"))
EDGES = {m: deps for m, deps in GRAPH.items() if not m.startswith("__raw__")}
RAW = {m.removeprefix("__raw__"): deps for m, deps in GRAPH.items() if m.startswith("__raw__")}


def _top(name: str) -> str:
    return name.split(".")[0]


def test_spec_imports_no_framework_and_no_backend() -> None:
    for mod, deps in RAW.items():
        if mod.startswith("resnet_spec"):
            bad = {d for d in deps if _top(d) in FRAMEWORKS | BACKEND_PACKAGES or _top(d) == "resnet_tools"}
            assert not bad, f"{mod} imports {sorted(bad)}"


def test_core_imports_no_wing() -> None:
    for mod, deps in EDGES.items():
        if mod.startswith("resnet_tools.core"):
            above = {d for d in deps if d.startswith("resnet_tools.") and not d.startswith("resnet_tools.core")}
            assert not above, f"{mod} imports {sorted(above)} (core sits below the wings)"


def test_only_the_cli_imports_the_cli() -> None:
    for mod, deps in EDGES.items():
        if not mod.startswith("resnet_tools.cli"):
            assert not {d for d in deps if d.startswith("resnet_tools.cli")}, mod


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            # a package's __init__ is imported on the way to its modules: not an edge back
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle() -> None:
    assert _cycle(EDGES) is None, " -> ".join(_cycle(EDGES) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a made-up loop is found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(edges) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    "wing", ["cli", "core", "checkpoints", "parity", "bench", "predict", "zoo", "hub", "train", "export", "course"]
)
def test_wings_exist_with_a_docstring(wing: str) -> None:
    init = ROOT / "resnet_tools" / wing / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says what the wing holds"
