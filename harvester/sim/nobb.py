"""The simulated NOBB Export API: ``GET`` and ``POST /api/v2/items``.

Follows the published pagination page: HTTP Basic auth (401 otherwise); filters ``from``/``to``
(yyyy-mm-dd, inclusive unless ``nobb_from_exclusive`` / ``nobb_to_exclusive`` pick another reading,
on the item's last-modified date), ``nobbnos``, ``suppliers``; ``pageSize``
(default 1000, at most 10000, else 400), ``pageToken``, ``sortField`` (NobbNo, OwnerParticipantNo,
Created) and ``sortOrder`` (asc, desc). POST takes the NOBB numbers as a JSON array or as
``{"nobbNos": [...]}``, and the other filters as query parameters.

Tokens are keyset cursors like the real ones: base64 of ``F|page|lastSortValue|lastNobb|ticks``
(``B|...`` backward), where ``ticks`` are the .NET ticks of the walk's first request and are
carried along the chain. A token older than ``token_ttl`` is ignored and page 1 comes back with
status 200, as the API documents. Headers: ``x-totalHits``, ``x-forwardToken`` (absent on the last
page), ``x-backwardToken`` (absent on page 1); the ``kebab`` header style sends ``x-total-hits``,
``x-forward-token``, ``x-backward-token`` instead (both spellings appear in the docs).

The parameters are checked, and the tokens encoded, in ``sim/nobb_query.py``.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Iterator

from aiohttp import web

from harvester.sim.context import SimContext
from harvester.sim.faults import Once, fails_always, hash_share
from harvester.sim.nobb_query import (
    BadRequest,
    NobbQuery,
    decode_token,
    encode_token,
    read_query,
    ticks,
    unix,
)
from harvester.sim.wire import json_error, send

__all__ = ["routes"]

PATH = "/api/v2/items"
#: Page 1 of a day range up to this size is found by a scan (``NobbApi._quick_page_one``) as
#: long as the scan is expected to take at most ``QUICK_SCAN`` steps.
QUICK_PAGE = 100
QUICK_SCAN = 20_000


def routes(ctx: SimContext) -> list[web.RouteDef]:
    """The NOBB routes, bound to the simulator's shared context."""
    api = NobbApi(ctx)
    return [web.get(PATH, api.items), web.post(PATH, api.items)]


class NobbApi:
    """Request handling over the shared catalogue; keeps a small cache of filtered orderings."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._orderings: OrderedDict[tuple[object, ...], tuple[array[int], array[int]]] = (
            OrderedDict()
        )
        self._days: tuple[int, array[int]] = (-1, array("i"))
        self._accepted = Once()  # requests answered 202 once (readings.nobb_accepted)

    def _ordering(
        self, filters: tuple[object, ...], sort_field: str
    ) -> tuple[array[int], array[int]]:
        """(positions, sort values) of the matching items in ascending sort order, cached."""
        key = (*filters, sort_field, self.ctx.nobb_generation)
        hit = self._orderings.get(key)
        if hit is not None:
            self._orderings.move_to_end(key)
            return hit
        cat = self.ctx.nobb
        day_from, day_to, nobbnos, suppliers = filters
        pos = cat.matching(
            day_from=day_from,  # type: ignore[arg-type]
            day_to=day_to,  # type: ignore[arg-type]
            nobbnos=nobbnos,  # type: ignore[arg-type]
            suppliers=suppliers,  # type: ignore[arg-type]
        )
        if sort_field != "NobbNo":
            pos.sort(key=lambda p: cat.sort_value(sort_field, p))
        result = (array("q", pos), array("q", (cat.sort_value(sort_field, p) for p in pos)))
        self._orderings[key] = result
        if len(self._orderings) > 8:
            self._orderings.popitem(last=False)
        return result

    async def items(self, request: web.Request) -> web.StreamResponse:
        ctx = self.ctx
        user = ctx.basic_user(request)
        if user is None:
            return json_error(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="NOBB"'})
        decision = ctx.rate_check("nobb", user)
        if not decision.allowed:
            return json_error(429, "Too many requests", decision.headers)
        body = await request.read() if request.method == "POST" else b""
        if fails_always(ctx.settings.fail_matching, request.path_qs, body):
            ctx.stats["permanent_faults"] += 1
            return json_error(500, "Internal server error", decision.headers)
        fault = ctx.faults.decide(f"{request.method} {request.path_qs} {body!r}")
        if fault == "error500":
            return json_error(500, "Internal server error", decision.headers)
        if fault == "throttle":
            ctx.stats["throttled"] += 1
            return json_error(429, "Too many requests", decision.headers)
        try:
            plan = self._plan(request, body)
        except BadRequest as exc:
            return json_error(400, str(exc), decision.headers)
        positions, headers = plan
        if ctx.settings.readings.nobb_accepted and self._accepted.add(request.path_qs):
            ctx.stats["nobb_accepted"] += 1
            wait = {"Retry-After": "1"} if hash_share(request.path_qs) < 0.5 else {}
            return web.Response(status=202, headers={**decision.headers, **wait})
        ctx.stats["nobb_pages"] += 1
        return await send(
            request,
            self._body(positions),
            content_type="application/json; charset=utf-8",
            headers={**decision.headers, **headers},
            latency=ctx.settings.latency_ms / 1000,
            fault=fault,
            encoding=ctx.settings.readings.encoding,
        )

    def _body(self, positions: array[int] | list[int]) -> Iterator[bytes]:
        render = self.ctx.nobb.render
        yield b"["
        first = True
        for p in positions:
            if not first:
                yield b","
            first = False
            yield render(p)
        yield b"]"

    def _plan(self, request: web.Request, body: bytes) -> tuple[list[int], dict[str, str]]:
        """The page a request asks for: its item positions and its paging headers."""
        q = read_query(request.query, request.method, body, self.ctx.settings)
        now = self.ctx.clock()
        quick = None if q.token else self._quick_page_one(q.filters, q.sort_field, q.size, q.order)
        if quick is not None:
            chunk, n = quick
            return chunk, self._headers(chunk, n, n > len(chunk), 1, ticks(now), q.sort_field)
        positions, values = self._ordering(q.filters, q.sort_field)
        direction, page, value, walk_ticks = self._cursor(q.token, now)
        chunk, more = _page(positions, values, q, direction, value)
        return chunk, self._headers(chunk, len(values), more, page, walk_ticks, q.sort_field)

    def _cursor(self, token: str, now: float) -> tuple[str, int, int, int]:
        """(direction, page, last sort value, ticks) of a token; page 1's for none or expired."""
        if not token:
            return "", 1, 0, ticks(now)
        direction, page, value, _, walk_ticks = decode_token(token)
        age_ms = round((now - unix(walk_ticks)) * 1000)
        stats = self.ctx.stats
        stats["nobb_oldest_token_ms"] = max(stats["nobb_oldest_token_ms"], age_ms)
        if age_ms > self.ctx.settings.token_ttl * 1000:
            # Expired: "it will not be considered" - the first page comes back, status 200.
            self.ctx.stats["expired_tokens"] += 1
            if self.ctx.settings.readings.nobb_expired_400:
                raise BadRequest("pageToken is not a valid token")
            return "", 1, 0, ticks(now)
        if self.ctx.settings.readings.nobb_token_from_issue:
            walk_ticks = ticks(now)  # the next token's life counts from this page
        return direction, page, value, walk_ticks

    def _headers(
        self, chunk: list[int], n: int, more: bool, page: int, ticks: int, sort_field: str
    ) -> dict[str, str]:
        names = self.ctx.nobb_headers
        headers = {names[0]: str(n)}
        if page > 1 and self.ctx.settings.readings.nobb_total_hits_first_only:
            headers = {}
        cat = self.ctx.nobb
        if chunk and more:
            last = chunk[-1]
            headers[names[1]] = encode_token(
                "F", page + 1, cat.sort_value(sort_field, last), cat.keys[last], ticks
            )
        if chunk and page > 1:
            first = chunk[0]
            headers[names[2]] = encode_token(
                "B", page - 1, cat.sort_value(sort_field, first), cat.keys[first], ticks
            )
        return headers

    def _quick_page_one(
        self, filters: tuple[object, ...], sort_field: str, size: int, order: str
    ) -> tuple[list[int], int] | None:
        """Page 1 of a plain day range by NobbNo without building its ordering, or None.

        Planning probes ever new day ranges (pageSize=1). A full ordering scans the catalogue in
        this one thread, so concurrent probes would queue behind each other, adding seconds at
        1M items to what should cost one latency. Here the count comes from the sorted change
        days and the page from a short scan in key order: the same answer, cheaply.
        """
        day_from, day_to, nobbnos, suppliers = filters
        key = (*filters, sort_field, self.ctx.nobb_generation)
        if sort_field != "NobbNo" or nobbnos is not None or suppliers is not None:
            return None
        if self.ctx.nobb.vanished:
            return None  # the sorted days still count the vanished items
        if size > QUICK_PAGE or key in self._orderings:
            return None
        lo = day_from if isinstance(day_from, int) else -(10**9)
        hi = day_to if isinstance(day_to, int) else 10**9
        days = self._sorted_days()
        n = bisect.bisect_right(days, hi) - bisect.bisect_left(days, lo)
        cat = self.ctx.nobb
        if n and size * cat.size > n * QUICK_SCAN:
            return None  # matches too sparse for a short scan
        mod = cat.modified
        chunk: list[int] = []
        if n:
            for p in range(cat.size) if order == "asc" else range(cat.size - 1, -1, -1):
                if lo <= mod[p] <= hi:
                    chunk.append(p)
                    if len(chunk) == size:
                        break
        return chunk, n

    def _sorted_days(self) -> array[int]:
        """Every item's change day, sorted; rebuilt when the catalogue changes."""
        if self._days[0] != self.ctx.nobb_generation:
            self._days = (self.ctx.nobb_generation, array("i", sorted(self.ctx.nobb.modified)))
        return self._days[1]


def _page(
    positions: array[int], values: array[int], q: NobbQuery, direction: str, value: int
) -> tuple[list[int], bool]:
    """The page after (F) or before (B) ``value`` in ``q.order``, and whether more follow it.

    Works on the ascending arrays; a descending walk reads them from the top down.
    """
    n, size = len(values), q.size
    if q.order == "asc":
        if direction == "F":
            lo = bisect.bisect_right(values, value)
            hi = min(n, lo + size)
        elif direction == "B":
            hi = bisect.bisect_left(values, value)
            lo = max(0, hi - size)
        else:
            lo, hi = 0, min(n, size)
        return list(positions[lo:hi]), hi < n
    if direction == "F":
        hi = bisect.bisect_left(values, value)
        lo = max(0, hi - size)
    elif direction == "B":
        lo = bisect.bisect_right(values, value)
        hi = min(n, lo + size)
    else:
        lo, hi = max(0, n - size), n
    return list(reversed(positions[lo:hi])), lo > 0
