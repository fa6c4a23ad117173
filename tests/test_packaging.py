"""Packaging and layout: pyproject builds cleanly; public import paths, layers, the one module
each of obstore, aiohttp and lxml enters through, no cycles."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from benchmarks.layout_stats import cycles, graph

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


def _graph(*, module_level: bool) -> dict[str, set[str]]:
    """Module → the harvester modules it imports, counted from the source by layout_stats."""
    return graph(HARVESTER, module_level=module_level)


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


SIBLINGS = ("harvester.engine", "harvester.store", "harvester.parse")


def _package(module: str) -> str | None:
    """The one of ``SIBLINGS`` or ``harvester.plan`` that ``module`` belongs to, if any."""
    return next(
        (p for p in (*SIBLINGS, "harvester.plan") if module == p or module.startswith(p + ".")),
        None,
    )


def test_engine_store_and_parse_import_none_of_each_other_nor_plan() -> None:
    """engine/, store/ and parse/ import none of the other three lower packages, anywhere."""
    graph = _graph(module_level=False)
    assert {_package(m) for m in graph} - {None} == {*SIBLINGS, "harvester.plan"}  # all walked
    across = {
        (m, t)
        for m in graph
        if _package(m) in SIBLINGS
        for t in graph[m]
        if _package(t) not in (None, _package(m))
    }
    assert not across


def test_the_simulator_imports_only_itself_and_its_api_modules_not_the_server() -> None:
    """harvester.sim imports only harvester.sim; sim.nobb and sim.dbk never import sim.server."""
    graph = _graph(module_level=False)
    sim = {m: deps for m, deps in graph.items() if m.startswith("harvester.sim")}
    assert {t for deps in sim.values() for t in deps} <= set(sim)
    assert "harvester.sim.server" not in sim["harvester.sim.nobb"] | sim["harvester.sim.dbk"]


def test_parse_imports_only_itself_and_the_error_tree() -> None:
    """harvester.parse imports nothing of harvester but itself and harvester.errors."""
    graph = _graph(module_level=False)
    parse = {m: deps for m, deps in graph.items() if m.startswith("harvester.parse")}
    assert {t for deps in parse.values() for t in deps} <= set(parse) | {"harvester.errors"}


def test_every_package_docstring_names_each_of_its_modules_and_only_re_exports() -> None:
    """Each package's __init__ has a docstring naming each module in it, and only imports."""
    for init in sorted(HARVESTER.glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree) or ""
        mods = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        assert [m for m in mods if f"``{m}" not in doc] == [], init
        code = [n for n in tree.body[1:] if not isinstance(n, ast.Import | ast.ImportFrom)]
        assert all(isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__"
                   for n in code), init  # fmt: skip


def test_no_import_cycles_among_harvester_modules() -> None:
    """Imports that run on import (not in functions, not under TYPE_CHECKING) form no cycle."""
    assert cycles(_graph(module_level=True)) == []


def test_no_import_cycle_even_counting_lazy_and_type_checking_imports() -> None:
    """With function-level and TYPE_CHECKING imports counted too, no modules form a cycle."""
    # storage.py imports objstore.py lazily (obstore is an optional extra); both take the URL
    # apart in s3url.py, so objstore.py needs nothing of storage.py.
    assert cycles(_graph(module_level=False)) == []


def _foreign_imports(package: str) -> dict[str, set[str]]:
    """Module → what it imports of ``package``, anywhere in its file: ``import a.b`` as ``a.b``,
    ``from a import b`` as ``a.b``."""
    out: dict[str, set[str]] = {}
    for path in sorted(HARVESTER.rglob("*.py")):
        module = ".".join(path.with_suffix("").relative_to(HARVESTER.parent).parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found = {n for n in names if n.startswith(package + ".") or n == package}
            if found:
                out.setdefault(module, set()).update(found)
    return out


def test_obstore_aiohttp_and_lxml_each_enter_through_their_one_module() -> None:
    """obstore only in store/objstore.py; aiohttp only in engine/http.py, but for the
    simulator's aiohttp.web (the server side); lxml only in parse/."""
    assert set(_foreign_imports("obstore")) == {"harvester.store.objstore"}
    aiohttp = _foreign_imports("aiohttp")
    assert aiohttp.pop("harvester.engine.http") == {"aiohttp"}
    assert aiohttp and all(m.startswith("harvester.sim.") for m in aiohttp)
    assert set().union(*aiohttp.values()) == {"aiohttp.web"}
    lxml = _foreign_imports("lxml")
    assert lxml and all(m.startswith("harvester.parse.") for m in lxml)
