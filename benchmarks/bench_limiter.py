"""Rate-limit behaviour over real sockets: harvester's RateLimiter beside a plain AsyncLimiter.

The matrix: {fixed 2 s, fixed 5 s, sliding 2 s} windows × {x-ratelimit-* with the reset as a
UNIX time, x-ratelimit-* with the reset in seconds, IETF RateLimit + RateLimit-Policy} headers,
plus a fixed 2 s window whose server clock runs 40 s ahead. The simulator allows 10 requests per
second (20 per 2 s, 50 per 5 s), answers after 50 ms, and 4 workers send small NOBB requests for
8 windows (6 of 5 s). harvester's limiter is built from the config default (``rate_limit =
"auto"``); the plain ``aiolimiter.AsyncLimiter(600, 60)`` is what a user would set from the
documented 600/min without reading headers (the configured default before "auto"). Both run at
the same time, each against its own simulator, so they share the machine's conditions.

Printed per row and limiter: utilization (requests the server allowed in the full windows after
the first / what the limit allows in them) and 429s after the first window. Target for every
harvester row: utilization >= 95 %, no 429 after the first window.

A second scenario (``scenario``, also used by the suite) drops the limit to 10 per 2 s after the
third window and prints the last window in which 429s were still seen; its plain limiter is
``AsyncLimiter(20, 2)``, the server's exact limit.

Then servers that announce nothing (``hidden_row``): no rate headers on any answer. First no
limit at all (target: as many requests in flight as workers, no wait); then a hidden quota of
20 per 2 s shown only by 429s, with ``Retry-After`` in seconds, as an HTTP date, or neither; a
sliding one; one halved after ``HIDDEN_DROP`` windows. Each runs ``HIDDEN_WINDOWS`` windows.
Printed: the use of the quota in the full windows after the first refusal's (target >= 90 %,
stretch 95 %) and the share of all requests refused (target <= 5 %).

    python -m benchmarks.bench_limiter [--only hidden]
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from collections import Counter
from dataclasses import dataclass

from harvester.config import NobbConfig, Secret
from harvester.engine.http import HttpClient, HttpSettings, Request
from harvester.engine.limiter import RateLimiter
from harvester.sim.server import Simulator
from harvester.sim.settings import RateHeaders, ResetStyle, SimSettings

__all__ = ["HIDDEN_ROWS", "ROWS", "Policy", "hidden_row", "main", "run_row", "scenario"]

LIMIT, WINDOW, WINDOWS, WORKERS = 20, 2.0, 7, 4
AUTH = (("Authorization", "Basic " + base64.b64encode(b"harvester:harvester").decode()),)
PLAIN = (600, 60.0)  # what a user writes from the docs' "600/min"
DEFAULT_RATE = NobbConfig(username=Secret("u"), password=Secret("p")).rate_limit


@dataclass(frozen=True, slots=True)
class Policy:
    """One server policy of the matrix."""

    label: str
    window: float
    sliding: bool = False
    headers: RateHeaders = "x"
    reset_style: ResetStyle = "epoch"
    skew: float = 0.0

    @property
    def limit(self) -> int:
        return int(10 * self.window)


def _rows() -> list[Policy]:
    rows = []
    for kind, window, sliding in (("fixed", 2.0, False), ("fixed", 5.0, False),
                                  ("sliding", 2.0, True)):  # fmt: skip
        for name, headers, style in (("x epoch", "x", "epoch"), ("x delta", "x", "delta"),
                                     ("IETF", "ietf", "epoch")):  # fmt: skip
            rows.append(Policy(f"{kind} {window:g}s, {name}", window, sliding, headers, style))  # type: ignore[arg-type]
    rows.append(Policy("fixed 2s, x epoch, clock +40s", 2.0, skew=40.0))
    return rows


ROWS = _rows()


async def _drive(sim: Simulator, kind: str, p: Policy, t0: float, windows: int,
                 drop: bool = False, plain_rate: tuple[float, float] = PLAIN,
                 ) -> tuple[dict[int, int], Counter[int], RateLimiter | None]:  # fmt: skip
    """Run WORKERS loops until ``windows`` windows after t0; served per window, 429s per window."""
    # The baseline only: aiolimiter comes with the bench and dev extras, not with harvester.
    from aiolimiter import AsyncLimiter

    ours = RateLimiter.from_setting(DEFAULT_RATE, name="bench") if kind == "harvester" else None
    plain = AsyncLimiter(*plain_rate)
    throttled: Counter[int] = Counter()
    end = t0 + windows * p.window
    request = Request(method="GET", url="/api/v2/items", params=(("pageSize", "5"),),
                      headers=AUTH, label="bench")  # fmt: skip
    window = sim.ctx.limits["nobb"]
    async with HttpClient(HttpSettings(), base_url=sim.url) as http:

        async def one() -> None:
            async with http.stream(request) as resp:
                await resp.read()
                if ours is not None:
                    ours.observe(resp.headers, resp.status)
                if resp.status == 429:
                    throttled[int((time.time() - t0) // p.window)] += 1
                    if ours is not None:
                        ours.penalize(None)

        async def worker() -> None:
            while time.time() < end:
                if drop and time.time() - t0 >= 3 * p.window:
                    window.limit = p.limit // 2
                if ours is not None:
                    async with ours.slot():
                        await one()
                else:
                    async with plain:
                        await one()

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
    served = {round((s - t0) / p.window): n for s, n in window.served.items()}
    return served, throttled, ours


def _settings(p: Policy) -> SimSettings:
    return SimSettings(nobb_items=500, rate_limit=p.limit, rate_window=p.window, latency_ms=50,
                       rate_sliding=p.sliding, rate_headers=p.headers,
                       reset_style=p.reset_style, clock_skew=p.skew)  # fmt: skip


async def run_row(p: Policy, windows: int) -> dict[str, dict[str, object]]:
    """harvester and plain side by side, each against its own simulator, from one boundary."""
    async with Simulator(_settings(p)) as a, Simulator(_settings(p)) as b:
        await asyncio.sleep(p.window - time.time() % p.window)  # start on a window boundary
        t0 = time.time()
        results = await asyncio.gather(_drive(a, "harvester", p, t0, windows),
                                       _drive(b, "plain", p, t0, windows))  # fmt: skip
    out: dict[str, dict[str, object]] = {}
    for kind, (served, throttled, ours) in zip(("harvester", "plain"), results, strict=True):
        full = range(1, windows)
        out[kind] = {
            "utilization": sum(served.get(w, 0) for w in full) / (p.limit * len(full)),
            "429s": sum(throttled.values()),
            "429s_after_first": sum(n for w, n in throttled.items() if w >= 1),
            "policy": ours.describe() if ours is not None else "",
        }
    return out


async def scenario(kind: str, drop: bool, hostile: bool = False) -> dict[str, object]:
    """A fixed 20/2 s window (limit halved after window 3 with ``drop``), one limiter; the plain
    one is ``AsyncLimiter(20, 2)``, set to the server's exact limit."""
    windows = 14 if hostile else WINDOWS
    p = Policy("fixed 2s, x epoch", WINDOW)
    settings = SimSettings(nobb_items=500, rate_limit=LIMIT, rate_window=WINDOW, latency_ms=50,
                           faults="hostile" if hostile else "none")  # fmt: skip
    async with Simulator(settings) as sim:
        await asyncio.sleep(WINDOW - time.time() % WINDOW)
        t0 = time.time()
        dropped_in: list[int] = []

        async def watch() -> None:
            while time.time() < t0 + windows * WINDOW and not dropped_in:
                if hostile and sim.ctx.faults.limit_dropped():
                    dropped_in.append(int((time.time() - t0) // WINDOW))
                await asyncio.sleep(0.05)

        (served, throttled, _), _ = await asyncio.gather(
            _drive(sim, kind, p, t0, windows, drop, (LIMIT, WINDOW)), watch()
        )
    full = range(1, windows)
    allowed = sum((LIMIT // 2 if drop and w >= 3 else LIMIT) for w in full)
    return {
        "drop_window": dropped_in[0] if dropped_in else None,
        "utilization": sum(served.get(w, 0) for w in full) / allowed,
        "429s": sum(throttled.values()),
        "429s_after_first": sum(n for w, n in throttled.items() if w >= 1),
        "last_429_window": max(throttled) if throttled else None,
    }


#: (label, simulator settings) of the rows against a server that announces nothing.
HIDDEN_ROWS: list[tuple[str, dict[str, object]]] = [
    ("hidden fixed 2s, Retry-After seconds", {"retry_after": "seconds"}),
    ("hidden fixed 2s, Retry-After date", {"retry_after": "date"}),
    ("hidden fixed 2s, no Retry-After", {}),
    ("hidden sliding 2s, Retry-After seconds", {"retry_after": "seconds", "rate_sliding": True}),
    ("hidden sliding 2s, no Retry-After", {"rate_sliding": True}),
    ("hidden fixed 2s halved, Retry-After seconds", {"retry_after": "seconds", "drop": True}),
]
HIDDEN_WINDOWS, HIDDEN_DROP = 30, 12


@dataclass(frozen=True, slots=True)
class Hidden:
    """One row against a server that announces nothing."""

    use: float | None  #: allowed in the full windows after the first refusal's / the quota
    refused: int
    requests: int
    first_refusal_window: int | None
    most_in_flight: int
    held: int  #: requests that waited for the limiter at all, after the first answer
    learned: str

    @property
    def share(self) -> float:
        return self.refused / max(1, self.requests)


async def hidden_row(settings: dict[str, object], windows: int = HIDDEN_WINDOWS) -> Hidden:
    """One limiter (the config default) with WORKERS loops against a server sending no rate
    headers: the quota's use after the first refusal, the share refused, the most in flight.
    One request goes first (before any answer the limiter lets one through at a time); the
    waits are counted from its answer on."""
    kw = dict(settings)
    drop = bool(kw.pop("drop", False))
    limit = int(kw.pop("rate_limit", LIMIT))  # type: ignore[call-overload]
    sim_settings = SimSettings(nobb_items=500, rate_limit=limit, rate_window=WINDOW,
                               latency_ms=50, rate_hidden=True, **kw)  # type: ignore[arg-type]  # fmt: skip
    ours = RateLimiter.from_setting(DEFAULT_RATE, name="bench")
    request = Request(method="GET", url="/api/v2/items", params=(("pageSize", "5"),),
                      headers=AUTH, label="bench")  # fmt: skip
    async with Simulator(sim_settings) as sim, HttpClient(HttpSettings(), base_url=sim.url) as http:
        window = sim.ctx.limits["nobb"]
        async with ours.slot(), http.stream(request) as resp:
            await resp.read()
            ours.observe(resp.headers, resp.status)
        ours.held = 0
        await asyncio.sleep(WINDOW - time.time() % WINDOW)
        window.served.clear()
        t0 = time.time()
        end = t0 + windows * WINDOW
        throttled: Counter[int] = Counter()
        most = [0]

        async def worker() -> None:
            while time.time() < end:
                if drop and time.time() - t0 >= HIDDEN_DROP * WINDOW:
                    window.limit = limit // 2
                async with ours.slot():
                    most[0] = max(most[0], ours.in_flight)
                    async with http.stream(request) as resp:
                        await resp.read()
                        ours.observe(resp.headers, resp.status)
                        refused = resp.status == 429
                if refused:
                    throttled[int((time.time() - t0) // WINDOW)] += 1
                    ours.penalize(None)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        served = {round((s - t0) / WINDOW): n for s, n in window.served.items()}
    first = min(throttled, default=None)
    full = [w for w in range(1, windows) if first is None or w > first]
    if drop:
        full = [w for w in full if w != HIDDEN_DROP]
    allowed = sum(limit // 2 if drop and w > HIDDEN_DROP else limit for w in full)
    return Hidden(
        use=sum(served.get(w, 0) for w in full) / allowed if full and limit else None,
        refused=sum(throttled.values()), requests=ours.sent, first_refusal_window=first,
        most_in_flight=most[0], held=ours.held,
        learned=ours.policy.hidden.describe() if ours.policy.hidden.active else "nothing",
    )  # fmt: skip


async def hidden_main() -> bool:
    """The rows against servers that announce nothing; True if every target was met."""
    print(f"servers sending no rate headers; rate_limit = {DEFAULT_RATE!r}, {WORKERS} workers, "
          f"50 ms latency, {HIDDEN_WINDOWS} windows of {WINDOW:g} s")  # fmt: skip
    free = await hidden_row({"rate_limit": 0}, windows=3)
    ok = free.most_in_flight == WORKERS and free.held == 0
    print(f"  no headers, no limit: {free.requests} requests, at most {free.most_in_flight} in "
          f"flight (target {WORKERS}), {free.held} held by the limiter after the first answer "
          f"(target 0): {'met' if ok else 'NOT met'}")  # fmt: skip
    print(f"  {'hidden quota 20 per 2 s':44s} {'use':>6s} {'refused':>12s}   learned")
    for label, kw in HIDDEN_ROWS:
        r = await hidden_row(kw)
        use = r.use or 0.0
        ok = ok and use >= 0.90 and r.share <= 0.05
        print(f"  {label:44s} {use:6.1%} {r.refused:4}/{r.requests:<4} {r.share:5.1%}   "
              f"{r.learned}", flush=True)  # fmt: skip
    print(
        "  use: requests allowed in the full windows after the first refusal's / the quota "
        "(halved: excluding the window it drops in); refused: 429s / all requests"
    )
    print(f"  target (>= 90 % use, stretch 95 %; <= 5 % refused): {'met' if ok else 'NOT met'}")
    return ok


async def main() -> None:
    if "--only" in sys.argv and "hidden" in sys.argv:
        await hidden_main()
        return
    print(f"rate_limit = {DEFAULT_RATE!r} (the config default) beside a plain "
          f"AsyncLimiter({PLAIN[0]}, {PLAIN[1]:g}); 10 requests/s allowed, 50 ms latency, "
          f"{WORKERS} workers")  # fmt: skip
    print(f"{'server policy':32s} {'harvester':>9s} {'429s*':>5s} {'429s':>5s}   {'plain':>6s} "
          f"{'429s*':>5s} {'429s':>5s}   harvester inferred")  # fmt: skip
    ok = True
    for p in ROWS:
        r = await run_row(p, 8 if p.window < 5 else 6)
        h, q = r["harvester"], r["plain"]
        hu, qu = float(h["utilization"]), float(q["utilization"])  # type: ignore[arg-type]
        ok = ok and hu >= 0.95 and h["429s_after_first"] == 0
        print(f"{p.label:32s} {hu:9.1%} {h['429s_after_first']:5} {h['429s']:5}   {qu:6.1%} "
              f"{q['429s_after_first']:5} {q['429s']:5}   {h['policy']}", flush=True)  # fmt: skip
    print("utilization: allowed requests in the full windows after the first / the limit; "
          "429s*: 429 answers after the first window; 429s: all of them")  # fmt: skip
    print(f"target (every harvester row: >= 95 %, 0 429s*): {'met' if ok else 'NOT met'}")
    print("limit drops to 10/2s after window 3 (fixed 20/2s, x epoch):")
    for kind in ("harvester", "plain"):
        d = await scenario(kind, True)
        print(f"  {kind:9s} utilization {float(d['utilization']):6.1%}  429s {d['429s']:3}  "  # type: ignore[arg-type]
              f"last 429 in window {d['last_429_window']}")  # fmt: skip
    print("--faults hostile (the simulator halves the limit after its 200th request), 14 windows:")
    for kind in ("harvester", "plain"):
        d = await scenario(kind, False, hostile=True)
        print(f"  {kind:9s} limit dropped in window {d['drop_window']}, 429s {d['429s']:3}, "
              f"last 429 in window {d['last_429_window']}")  # fmt: skip
    await hidden_main()


if __name__ == "__main__":
    asyncio.run(main())
