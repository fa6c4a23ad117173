"""Rate-limit behaviour against the simulator: harvester's RateLimiter vs a plain AsyncLimiter.

The simulator enforces a fixed window of 20 requests per 2 s with 50 ms latency; 4 workers send
small NOBB requests for 7 windows. Printed for each limiter, measured in the same run:
utilization (requests served / requests allowed, over full windows), 429s in total and after the
first window. A second scenario drops the limit to 10 per 2 s after the third window (a limit
change) and prints the last window in which 429s were still seen.

    python -m benchmarks.bench_limiter
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter

from aiolimiter import AsyncLimiter

from harvester.http import HttpClient, HttpSettings, Request
from harvester.limiter import RateLimiter
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings

LIMIT, WINDOW, WINDOWS, WORKERS = 20, 2.0, 7, 4
AUTH = (("Authorization", "Basic " + base64.b64encode(b"harvester:harvester").decode()),)


async def scenario(kind: str, drop: bool, hostile: bool = False) -> dict[str, object]:
    windows = 14 if hostile else WINDOWS
    settings = SimSettings(
        nobb_items=500, rate_limit=LIMIT, rate_window=WINDOW, latency_ms=50,
        faults="hostile" if hostile else "none",
    )  # fmt: skip
    async with Simulator(settings) as sim, HttpClient(HttpSettings(), base_url=sim.url) as http:
        window = sim.ctx.limits["nobb"]
        # Start on a window boundary so "full windows" are whole.
        await asyncio.sleep(WINDOW - time.time() % WINDOW)
        t0 = time.time()
        ours = RateLimiter(max_rate=LIMIT, time_period=WINDOW)
        plain = AsyncLimiter(LIMIT, WINDOW)
        throttled: Counter[int] = Counter()
        end = t0 + windows * WINDOW
        dropped_in: list[int] = []
        request = Request(method="GET", url="/api/v2/items", params=(("pageSize", "5"),),
                          headers=AUTH, label="bench")  # fmt: skip

        async def one() -> None:
            async with http.stream(request) as resp:
                await resp.read()
                if kind == "harvester":
                    ours.observe(resp.headers)
                if resp.status == 429:
                    throttled[int((time.time() - t0) // WINDOW)] += 1
                    if kind == "harvester":
                        ours.penalize(None)

        async def worker() -> None:
            while time.time() < end:
                if drop and time.time() - t0 >= 3 * WINDOW:
                    window.limit = LIMIT // 2
                if hostile and not dropped_in and sim.ctx.faults.limit_dropped():
                    dropped_in.append(int((time.time() - t0) // WINDOW))
                if kind == "harvester":
                    async with ours.slot():
                        await one()
                else:
                    async with plain:
                        await one()

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        served = {round((s - t0) / WINDOW): n for s, n in window.served.items()}
    full = range(1, windows)  # window 0 is the start-up window
    allowed = sum((LIMIT // 2 if drop and w >= 3 else LIMIT) for w in full)
    used = sum(served.get(w, 0) for w in full)
    return {
        "drop_window": dropped_in[0] if dropped_in else None,
        "utilization": used / allowed,
        "429s": sum(throttled.values()),
        "429s_after_first": sum(n for w, n in throttled.items() if w >= 1),
        "last_429_window": max(throttled) if throttled else None,
    }


async def main() -> None:
    print(f"fixed window {LIMIT}/{WINDOW:g}s, 50 ms latency, {WORKERS} workers, {WINDOWS} windows")
    for drop in (False, True):
        label = "limit drops to 10/2s after window 3" if drop else "steady limit"
        print(f"{label}:")
        for kind in ("harvester", "plain AsyncLimiter"):
            r = await scenario(kind.split()[0], drop)
            util = float(r["utilization"])  # type: ignore[arg-type]
            print(f"  {kind:18s} utilization {util:6.1%}  429s {r['429s']:3}  "
                  f"after window 1 {r['429s_after_first']:3}  last 429 in window "
                  f"{r['last_429_window']}")  # fmt: skip
    print("--faults hostile (the simulator halves the limit after its 200th request), 14 windows:")
    for kind in ("harvester", "plain AsyncLimiter"):
        r = await scenario(kind.split()[0], False, hostile=True)
        print(f"  {kind:18s} limit dropped in window {r['drop_window']}, 429s {r['429s']:3}, "
              f"last 429 in window {r['last_429_window']}")  # fmt: skip
    print("targets: utilization >= 95 %, no 429 after the first window, "
          "429s stop within one window of a drop")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
