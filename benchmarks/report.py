"""``python -m benchmarks.report [--markdown] [FILE]``: print a saved run's table again.

FILE is a JSON file written by ``python -m benchmarks`` (default: the newest in
``benchmarks/results/``); ``--markdown`` prints the table as Markdown, as pasted in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from benchmarks.suite import RESULTS, load_rows, render_table


def main() -> int:
    """Print the table of one results file; exit 2 if there is none."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    p.add_argument("file", nargs="?", type=Path, help="a results JSON (default: the newest)")
    p.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = p.parse_args()
    suites = [f for f in sorted(RESULTS.glob("*.json")) if orjson.loads(f.read_bytes())["rows"]]
    path = args.file or (suites[-1] if suites else None)
    if path is None:
        print(f"error: no results in {RESULTS}; run python -m benchmarks first")
        return 2
    data = orjson.loads(path.read_bytes())
    m = data["machine"]
    print(f"{path.name}: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
          f"started {data['started']}\n")  # fmt: skip
    print(render_table(load_rows(path), markdown=args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
