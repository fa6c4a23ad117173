"""How much a reader must hold to see the package's layout: rooms, import pairs and cycles.

    python -m benchmarks.layout_stats            # the harvester/ beside this checkout
    python -m benchmarks.layout_stats PATH       # another checkout's harvester/ (e.g. a worktree)

Counted from the source with ``ast``, nothing imported:

- rooms: what sits directly in ``harvester/``: modules (not ``__init__``) and packages;
- module pairs: distinct (A, B), both harvester modules, A != B, where A imports B anywhere in
  its file (function-level and ``TYPE_CHECKING`` imports included);
- room pairs: the same with each module folded into its room (``harvester.engine.http`` into
  ``engine``), pairs inside one room not counted;
- cycles: strongly connected groups of modules, under any import, and under module-level
  imports only (function bodies and ``if TYPE_CHECKING:`` blocks left out: what runs on import);
- the ten longest functions: ``file:line``, qualified name (``Class.method``, a nested function
  as ``outer.inner``) and lines from ``def`` to the last line of its body (decorators and the
  blank lines after it not counted; a nested function counts in its outer one too).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harvester"


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``root`` (packages by ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.with_suffix("").relative_to(root.parent).parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(
    name: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        bases = [a.name for a in node.names]
    else:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        if node.level:
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        # ``from harvester.engine import http`` names a module; ``from x import Name`` does not.
        bases = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    for target in bases:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in known and target != name:
            yield target


def _imports(tree: ast.AST, *, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if not module_level:
        yield from (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
        return
    stack = list(getattr(tree, "body", []))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack += node.orelse
        elif isinstance(node, ast.If | ast.Try):
            stack += [
                *node.body,
                *node.orelse,
                *getattr(node, "handlers", []),
                *getattr(node, "finalbody", []),
            ]
        elif isinstance(node, ast.ExceptHandler):
            stack += node.body


def graph(root: Path, *, module_level: bool = False) -> dict[str, set[str]]:
    """Module → the harvester modules it imports (see the module docstring)."""
    mods = modules(root)
    known = set(mods)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        nodes = _imports(tree, module_level=module_level)
        edges[name] = {t for node in nodes for t in _targets(name, path, node, known)}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def functions(root: Path) -> list[tuple[int, str, str]]:
    """(lines, ``file:line``, qualified name) of every function under ``root``, longest first."""
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, prefix: str, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    found.append((lines, f"{where}:{child.lineno}", name))
                visit(child, f"{name}.", where)
            else:
                visit(child, prefix, where)

    for path in sorted(root.rglob("*.py")):
        visit(ast.parse(path.read_text()), "", str(path.relative_to(root.parent)))
    return sorted(found, key=lambda f: (-f[0], f[1]))


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def main(argv: list[str]) -> None:
    root = Path(argv[0]) / "harvester" if argv else ROOT
    edges = graph(root)
    rooms = [p for p in root.iterdir() if p.suffix == ".py" and p.stem != "__init__"]
    rooms += [p for p in root.iterdir() if (p / "__init__.py").exists()]
    module_pairs = sum(len(v) for v in edges.values())
    room_pairs = {(_room(a), _room(b)) for a, deps in edges.items() for b in deps}
    room_pairs = {(a, b) for a, b in room_pairs if a != b}
    print(f"rooms (top-level modules and packages): {len(rooms)}")
    print(f"module import pairs: {module_pairs}")
    print(f"room import pairs: {len(room_pairs)}")
    for group in cycles(edges):
        print("cycle (any import):", " ".join(group))
    for group in cycles(graph(root, module_level=True)):
        print("cycle (module level):", " ".join(group))
    print("ten longest functions (file:line, name, lines):")
    for lines, where, name in functions(root)[:10]:
        print(f"  {where:<36} {name:<32} {lines:4d}")


if __name__ == "__main__":
    main(sys.argv[1:])
