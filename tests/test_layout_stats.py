"""benchmarks.layout_stats: the longest functions, counted from the source with ast."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.layout_stats import functions, main

SOURCE = """\
def short():
    return 1


class Walker:
    @property
    def name(self):
        return "w"

    async def walk(self):
        def step():
            x = 1
            return x

        return step()
"""


def test_functions_are_measured_def_to_last_line_and_named_by_class(tmp_path: Path) -> None:
    """Each function's lines run from its def to its body's end; methods and nested ones named."""
    (tmp_path / "harvester").mkdir()
    (tmp_path / "harvester" / "m.py").write_text(SOURCE)
    assert functions(tmp_path / "harvester") == [
        (6, "harvester/m.py:10", "Walker.walk"),
        (3, "harvester/m.py:11", "Walker.walk.step"),
        (2, "harvester/m.py:1", "short"),
        (2, "harvester/m.py:7", "Walker.name"),
    ]


def test_main_prints_the_ten_longest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report ends with a header and at most ten rows, longest first."""
    (tmp_path / "harvester").mkdir()
    for i in range(12):
        body = "".join(f"    x{j} = {j}\n" for j in range(i))
        (tmp_path / "harvester" / f"m{i:02d}.py").write_text(f"def f{i}():\n{body}    return 0\n")
    main([str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    at = out.index("ten longest functions (file:line, name, lines):")
    rows = [line.split() for line in out[at + 1 :]]
    assert rows == [[f"harvester/m{i:02d}.py:1", f"f{i}", str(i + 2)] for i in range(11, 1, -1)]
