"""Packaging and layout: pyproject builds cleanly; public import paths, layers, no cycles."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_license_is_an_spdx_string_on_a_setuptools_that_reads_it() -> None:
    """`license` is the SPDX string (a table is deprecated); setuptools >= 77 understands it."""
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["license"] == "MIT"
    (setuptools,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert m is not None and int(m.group(1)) >= 77, setuptools


HARVESTER = PYPROJECT.parent / "harvester"
LOWER = ("harvester.engine", "harvester.store", "harvester.plan")
UPPER = ("harvester.sources", "harvester.app", "harvester.run", "harvester.cli", "harvester.status")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(HARVESTER.rglob("*.py")):
        parts = path.with_suffix("").relative_to(HARVESTER.parent).parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(name: str, path: Path, nodes: list[ast.stmt | ast.expr], known: set[str]) -> set[str]:
    """The harvester modules that these import statements name (``from pkg import mod`` too)."""
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1 packages
                package = name.split(".")[: None if path.name == "__init__.py" else -1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                found.add(target)
    return found


def _module_level(tree: ast.Module) -> list[ast.stmt | ast.expr]:
    """Statements that run on import: module body, into if/try, not ``if TYPE_CHECKING:``."""
    out: list[ast.stmt | ast.expr] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, ast.If):
            typing_only = "TYPE_CHECKING" in ast.unparse(node.test)
            stack += node.orelse if typing_only else [*node.body, *node.orelse]
        elif isinstance(node, ast.Try):
            stack += [*node.body, *node.orelse, *node.finalbody]
            stack += [s for h in node.handlers for s in h.body]
    return out


def _graph(*, module_level: bool) -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        nodes: list[ast.stmt | ast.expr] = (
            _module_level(tree)
            if module_level
            else [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        )
        graph[name] = _imported(name, path, nodes, set(mods))
    return graph


def test_public_names_import_from_their_documented_paths() -> None:
    """read_run, verify_run, latest_run, to_xml and Simulator import from their documented paths."""
    from harvester.output import latest_run, read_run, verify_run
    from harvester.parse.onix_xml import to_xml
    from harvester.sim.server import Simulator
    from harvester.store import output

    assert (read_run, verify_run, latest_run) == (
        output.read_run,
        output.verify_run,
        output.latest_run,
    )
    assert callable(to_xml) and isinstance(Simulator, type)


def test_engine_store_and_plan_never_import_sources_or_the_run_layer() -> None:
    """Nothing in engine/, store/ or plan/ imports sources, app, run, cli or status, anywhere."""
    graph = _graph(module_level=False)
    lower = [m for m in graph if m.startswith(LOWER)]
    assert len(lower) > 20, lower  # the packages exist and were walked
    upward = {
        (m, t)
        for m in lower
        for t in graph[m]
        if any(t == u or t.startswith(u + ".") for u in UPPER)
    }
    assert not upward


def test_the_simulator_imports_only_itself_and_its_api_modules_not_the_server() -> None:
    """harvester.sim imports only harvester.sim; sim.nobb and sim.dbk never import sim.server."""
    graph = _graph(module_level=False)
    sim = {m: deps for m, deps in graph.items() if m.startswith("harvester.sim")}
    assert {t for deps in sim.values() for t in deps} <= set(sim)
    assert "harvester.sim.server" not in sim["harvester.sim.nobb"] | sim["harvester.sim.dbk"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = [stack.pop()]
            while group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_harvester_modules() -> None:
    """Imports that run on import (not in functions, not under TYPE_CHECKING) form no cycle."""
    assert _cycles(_graph(module_level=True)) == []


def test_the_only_cycle_counting_every_import_is_storage_and_its_lazy_objstore() -> None:
    """With function-level and TYPE_CHECKING imports too, only storage <-> objstore is a cycle."""
    # storage.py imports objstore.py inside a function (obstore is an optional extra) and for
    # type hints; objstore.py imports storage.py's URL helpers. No other circle is allowed back.
    assert _cycles(_graph(module_level=False)) == [
        ["harvester.store.objstore", "harvester.store.storage"]
    ]
