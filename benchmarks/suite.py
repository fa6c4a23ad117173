"""The suite's shared parts: a result row, interleaved rounds, the table and the JSON file.

Every scenario returns ``Row`` values: one figure for harvester and one for its baseline,
measured in the same run, each the median of interleaved rounds (A B A B: noise on a shared
machine lands on both sides alike). ``ratio`` is always oriented so that above 1 means harvester
is better (a rate divided by the baseline's rate, a baseline's seconds divided by harvester's;
none for 429 counts, which are shown side by side). ``render_table`` prints all rows as one
table; ``write_results`` writes them with the machine description to
``benchmarks/results/<UTC start time>.json``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench_nobb import start

__all__ = [
    "RESULTS",
    "ROOT",
    "Row",
    "interleave",
    "load_rows",
    "machine",
    "median",
    "render_table",
    "simulator",
    "size",
    "write_results",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HIGHER_IS_BETTER = ("items/s", "products/s", "products/s/core", "MB/s", "utilization", "ops/s")


@dataclass(slots=True, kw_only=True)
class Row:
    """One line of the table: a scenario's figure for harvester beside its baseline's.

    ``harvester``/``baseline`` are None when that side was not measured (``note`` says why);
    RSS figures are peak resident set sizes in MB of each side's own process.
    """

    scenario: str
    case: str
    metric: str
    harvester: float | None
    baseline: float | None
    baseline_name: str
    rss_harvester_mb: float | None = None
    rss_baseline_mb: float | None = None
    note: str = ""
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Above 1: harvester better (faster, more of the limit used); None for 429 counts."""
        h, b = self.harvester, self.baseline
        if h is None or b is None or self.metric == "429s":
            return None  # a ratio of counts that are often zero says nothing: both are shown
        if self.metric in HIGHER_IS_BETTER:
            return h / b if b else None
        return b / h if h else None


def median(runs: list[dict[str, Any]], key: str) -> float:
    """The median of one figure over a variant's runs."""
    return float(statistics.median(float(r[key]) for r in runs))


def interleave(
    variants: Mapping[str, Callable[[], dict[str, Any]]], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Run every variant once per round, in the same order each round (A B C A B C ...)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(max(1, rounds)):
        for name, fn in variants.items():
            runs[name].append(fn())
    return runs


@contextlib.contextmanager
def simulator(*flags: str) -> Iterator[str]:
    """A simulator subprocess (its own process; no rate limit unless ``flags`` set one): its URL."""
    proc, url = start(*flags)
    try:
        if not url.startswith("http://"):
            raise SystemExit(f"simulator did not start ({' '.join(flags)})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model, cores, memory, Python, OS."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2, 1)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "note": "the simulator runs on the same cores as the clients",
    }


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "utilization":
        return f"{value:.1%}"
    if metric in ("items/s", "products/s", "products/s/core", "429s"):
        return f"{value:,.0f}"
    if metric == "MB/s" or metric.startswith("s"):
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.2f}"


def size(n: int) -> str:
    """An item count as a label: 20k, 1M."""
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1000:g}k"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


HEADER = ("scenario", "case", "metric", "harvester", "baseline", "ratio", "RSS h MB", "RSS b MB")


def render_table(rows: list[Row], *, markdown: bool = False) -> str:
    """All rows as one table (aligned text, or Markdown); numbered notes name each baseline."""
    cells = [HEADER]
    notes: list[str] = []
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        extra = f"baseline: {row.baseline_name}" + (f"; {row.note}" if row.note else "")
        if extra not in notes:
            notes.append(extra)
        cells.append((
            row.scenario, f"{row.case} [{notes.index(extra) + 1}]", row.metric,
            _fmt(row.metric, row.harvester), _fmt(row.metric, row.baseline), ratio,
            _mb(row.rss_harvester_mb), _mb(row.rss_baseline_mb),
        ))  # fmt: skip
    lines = []
    if markdown:
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "---|" * 3 + "---:|" * (len(HEADER) - 3))
        lines.extend("| " + " | ".join(c) + " |" for c in cells[1:])
    else:
        widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
        for n, c in enumerate(cells):
            left = [c[i].ljust(widths[i]) for i in range(3)]
            right = [c[i].rjust(widths[i]) for i in range(3, len(HEADER))]
            lines.append("  ".join(left + right).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    bullet = "- " if markdown else ""
    lines.extend(f"{bullet}[{i}] {text}" for i, text in enumerate(notes, 1))
    lines.append(f"{bullet}ratio: above 1 means harvester is better (faster, or more of the "
                 "limit used); RSS: peak resident set of each side's own process")  # fmt: skip
    return "\n".join(lines)


def load_rows(path: Path) -> list[Row]:
    """The rows of a results file written by ``write_results``."""
    data = orjson.loads(path.read_bytes())
    names = {f.name for f in fields(Row)}
    return [Row(**{k: v for k, v in row.items() if k in names}) for row in data["rows"]]


def write_results(
    rows: list[Row],
    args: Mapping[str, Any],
    extra: Mapping[str, Any],
    started: datetime,
    directory: Path = RESULTS,
) -> Path:
    """Write the run to ``<directory>/<UTC start time>.json``; returns the path.

    Keys: ``started`` (UTC ISO time), ``argv``, ``args``, ``machine``, ``rows`` (each row's fields
    plus ``ratio``), ``extra`` (per-scenario figures such as the scaling fit).
    """
    directory.mkdir(parents=True, exist_ok=True)
    stamp = f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    path = directory / f"{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stamp}-{n}.json"
    data = {
        "started": started.astimezone(UTC).isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in args.items()},
        "machine": machine(),
        "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
        "extra": dict(extra),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return path
