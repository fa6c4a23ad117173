"""The documented path of the output reader: ``from harvester.output import read_run``.

Only a re-export: the reader lives in ``harvester/store/output.py`` (see its docstring), beside
the rest of durable output. ``read_run``, ``read_lines``, ``verify_run``, ``latest_run`` and
``current_run`` are the same objects there and here.
"""

from __future__ import annotations

from harvester.store.output import current_run, latest_run, read_lines, read_run, verify_run

__all__ = ["current_run", "latest_run", "read_lines", "read_run", "verify_run"]
