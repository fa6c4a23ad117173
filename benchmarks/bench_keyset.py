"""KeySet at scale: adds/s, lookups/s and peak RSS for N keys (default 10 million).

python -m benchmarks.bench_keyset [N]
"""

from __future__ import annotations

import sys
import time

from benchmarks.own_peak import own_peak_mb
from harvester.store.keyset import KeySet


def main(n: int = 10_000_000) -> None:
    keys = KeySet()
    t = time.perf_counter()
    for i in range(n):
        keys.add(10_000_000 + i * 7)
    adds = n / (time.perf_counter() - t)
    t = time.perf_counter()
    probes = min(n, 1_000_000)
    found = sum(1 for i in range(probes) if (10_000_000 + i * 7) in keys)
    lookups = probes / (time.perf_counter() - t)
    rss = own_peak_mb()
    print(
        f"keys {n:,}: {adds:,.0f} adds/s, {lookups:,.0f} lookups/s ({found:,} found), "
        f"stored {keys.nbytes() / 1e6:.0f} MB, peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
