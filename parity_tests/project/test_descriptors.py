"""One place per framework: each backend package's descriptor is complete, the tools read descriptors (never a
framework's name compared with a string), and a fourth framework is enumerated by every tool that lists
frameworks once its record and its package's descriptor exist (docs/architecture.md lists the files)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from resnet_spec import frameworks
from resnet_spec.frameworks import DESCRIPTOR_FACTS, ENGINE_FACTS, Conventions, Rank
from resnet_tools.core import backends
from resnet_tools.core.errors import UsageError
from resnet_tools.export.formats import SHARED, formats
from resnet_tools.train.parallel import engine_of, processes, rank_env

ROOT = Path(__file__).resolve().parents[2]
NAMES = {*frameworks.FRAMEWORKS, "tensorflow", "jax"}
#: Framework-specific code by design: each framework's own bench paths.
OWN_CODE = set((ROOT / "resnet_tools" / "bench" / "paths").glob("*.py"))


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return set().union(*(_strings(e) for e in node.elts))
    return set()


def framework_comparisons(path: Path) -> list[str]:
    """Every comparison in ``path`` with a framework's name as a string literal (==, !=, in, not in)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            literals = _strings(node.left).union(*(_strings(c) for c in node.comparators))
            if literals & NAMES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def framework_lists(path: Path) -> list[str]:
    """Every tuple, list, set or dict literal in ``path`` naming two frameworks or more (as items or keys): a fact
    about each framework kept outside its record."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict) and items is not None:
            named = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)} & NAMES
            if len(named) >= 2:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_tool_compares_a_framework_name_with_a_string() -> None:
    files = [f for f in sorted((ROOT / "resnet_tools").rglob("*.py")) if f not in OWN_CODE]
    found = [line for f in files for line in framework_comparisons(f) + framework_lists(f)]
    assert not found, "read the backend's descriptor instead:\n" + "\n".join(found)


def test_the_comparison_finder_finds_one(tmp_path: Path) -> None:
    """The check above can fail: planted comparisons are found, in each form."""
    planted = tmp_path / "planted.py"
    planted.write_text('if backend == "torch" or "keras" in names or b not in ("paddle", "x"):\n    pass\n')
    (tmp_path / "ok.py").write_text('label = "torch"\nif backend == other:\n    pass\n')
    sys.modules.pop("planted", None)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(framework_comparisons(planted)) == 3
        assert framework_comparisons(tmp_path / "ok.py") == []
        listed = tmp_path / "listed.py"
        listed.write_text('A = ("torch", "paddle")\nB = {"keras", "flax"}\nC = {"torch": 1, "jax": 2}\nD = ["torch"]\n')
        assert len(framework_lists(listed)) == 3
    finally:
        ROOT = saved


def test_the_shared_formats_have_their_runners_and_several_writers() -> None:
    """A shared format (export.formats.SHARED) is run by export.runtimes whoever wrote it, and is shared because
    more than one framework writes it."""
    from resnet_tools.export.runtimes import RUNNERS

    assert set(RUNNERS) == set(SHARED)
    table = backends.descriptors()
    for name in SHARED:
        assert len([b for b, d in table.items() if name in d.exports]) >= 2, name


@pytest.mark.parametrize("name", frameworks.FRAMEWORKS)
def test_every_backend_descriptor_is_complete(name: str) -> None:
    d = backends.descriptor(name)
    assert backends.incomplete(d, name) == []
    assert d.package == f"resnet_{name}" and d.framework == name
    for fact in DESCRIPTOR_FACTS:
        assert hasattr(d, fact), fact
    assert set(d.artifacts) <= set(d.exports), "a format it defines but does not write"
    others = {k for n, o in backends.descriptors().items() if n != name for k in o.artifacts}
    assert not set(d.artifacts) & others, "a format two frameworks define"
    assert not set(d.artifacts) & set(SHARED), "a shared format defined again by one framework"
    assert set(d.best_paths) <= {"cpu train", "cpu serve", "gpu train", "gpu serve"}, d.best_paths
    assert not any("," in path for paths in d.best_paths.values() for path in paths), "bench --paths splits on ','"
    if importlib.util.find_spec(d.module) is not None:  # resnet choose times these: each is one of its bench paths
        from resnet_tools.bench.paths import paths_of

        for mode in ("train", "serve"):
            named = {p for p, _, _ in paths_of(name).cpu_paths("resnet18", 1, 32, mode.replace("serve", "eval"), 1)}
            assert set(d.best_paths.get(f"cpu {mode}", ())) <= named, (mode, named)
    if d.engine is not None:
        assert all(hasattr(d.engine, f) for f in ENGINE_FACTS)
        env = d.engine.rank_env(Rank(0, 2, 0, 2, "127.0.0.1:29500", (29501, 29502)))
        assert env and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())


def _fake_package(root: Path, body: str) -> None:
    pkg = root / "resnet_fake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('the fake framework is never imported by these tests')\n")
    (pkg / "descriptor.py").write_text(textwrap.dedent(body))
    importlib.invalidate_caches()  # the folder is new: the import system's directory listings are stale


FAKE = """
    from resnet_spec.frameworks import ArtifactKind, Descriptor, Engine

    DESCRIPTOR = Descriptor(
        framework="fake", package="resnet_fake", module="json", distribution="fake-framework", import_before=(),
        engine=Engine(name="fake all-reduce", batch_norm="per-replica BN statistics", one_process=False,
                      global_bn=False, cpu_sync_bn=False, needs=None,
                      rank_env=lambda r: {"FAKE_RANK": str(r.rank)}, launcher="fakerun {n}"),
        exports={"onnx": ("onnx",), "fake-runtime": ()},
        artifacts={"fake-runtime": ArtifactKind(folder=False, suffix=".fk", runtime="fake's runtime", dist="fake")},
        extra="fake", model_base="fake.nn.Module", reports=(), watches=False,
        runs_on=(), bench_engines={}, engine_env="", best_paths={}, int8={},
    )
"""


@pytest.fixture
def fourth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fourth framework: a naming record in resnet_spec, a backend package holding only its descriptor."""
    torch_like = frameworks.conventions("torch")
    monkeypatch.setitem(frameworks.CONVENTIONS, "fake", Conventions(**{**torch_like.__dict__, "name": "fake"}))
    monkeypatch.syspath_prepend(str(tmp_path))
    backends.descriptor.cache_clear()
    yield tmp_path
    backends.descriptor.cache_clear()


def test_a_fourth_framework_is_enumerated_by_the_tools(fourth: Path) -> None:
    _fake_package(fourth, FAKE)
    assert backends.known_backends()[-1] == "fake"
    assert "fake" in backends.descriptors() and "fake" in backends.installed_backends()  # its module: json
    assert backends.parse_backends("torch,fake") == ["torch", "fake"]
    assert backends.load_order(["keras", "fake", "paddle"]) == ["paddle", "keras", "fake"]
    assert formats()["onnx"].writers[-1] == "fake" and formats()["onnx"].needs["fake"] == ("onnx",)
    own = formats()["fake-runtime"]  # a format it defines: from its descriptor alone
    assert own.writers == ("fake",) and (own.suffix, own.runtime) == (".fk", "fake's runtime")
    assert engine_of("fake").name == "fake all-reduce" and processes("fake", 4) == 4
    assert rank_env("fake", 1, 2, [1, 2, 3]) == {"FAKE_RANK": "1"}


def test_an_incomplete_descriptor_names_the_missing_fact(fourth: Path) -> None:
    _fake_package(fourth, FAKE.replace(' model_base="fake.nn.Module",', ""))
    with pytest.raises(UsageError, match=r"resnet_fake/descriptor.py is incomplete: .*'model_base'"):
        backends.descriptor("fake")


def test_a_descriptor_for_another_framework_is_refused(fourth: Path) -> None:
    _fake_package(fourth, FAKE.replace('framework="fake"', 'framework="torch"'))
    with pytest.raises(UsageError, match=r"framework is 'torch', not 'fake'"):
        backends.descriptor("fake")


def test_the_architecture_page_lists_exactly_a_backends_files() -> None:
    """docs/architecture.md's list of the files a fourth framework needs is the file set of every backend."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- backend-files -->", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    listed = sorted(line.split()[0] for line in block.splitlines() if line.strip())
    for framework in frameworks.FRAMEWORKS:
        files = sorted(p.name for p in (ROOT / f"resnet_{framework}").glob("*.py"))
        assert listed == files, f"docs/architecture.md lists {listed}; resnet_{framework}/ has {files}"


def test_the_fourth_framework_touched_only_what_this_page_lists() -> None:
    """Flax's name appears, outside its package, the tests, the docs, the course and the bench scripts, in exactly
    the files docs/architecture.md lists as what the fourth framework touched."""
    import re
    import subprocess

    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- fourth-framework-files -->", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    listed = sorted(line.split()[0] for line in block.splitlines() if line.strip())
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    outside = ("resnet_flax/", "parity_tests/", "docs/", "course/", "bench/", "README.md", "mkdocs.yml", ".ci/")
    naming = re.compile(r"\bflax\b|resnet_flax")
    found = sorted(
        f for f in tracked
        if not f.startswith(outside) and (ROOT / f).is_file() and naming.search((ROOT / f).read_text(errors="ignore"))
    )  # fmt: skip
    assert found == listed, f"the tree names flax in {found}; docs/architecture.md lists {listed}"


def test_flax_the_fourth_framework_is_enumerated_by_the_tools() -> None:
    """The real fourth backend, not a patched record: every tool finds it through its records."""
    if "flax" not in backends.installed_backends():
        pytest.skip("flax not installed")
    assert backends.known_backends()[-1] == "flax" and "flax" in frameworks.FRAMEWORKS
    assert backends.parse_backends("torch,flax") == ["torch", "flax"]
    assert backends.load_order(["flax", "keras", "paddle"]) == ["paddle", "flax", "keras"]
    assert engine_of("flax").one_process and processes("flax", 4) == 1
    assert rank_env("flax", 0, 1, [1], local_replicas=2) == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert formats()["jax-export"].writers == ("flax",)  # its exporter, from its descriptor
