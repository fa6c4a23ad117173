"""``harvester simulate``: serve both simulated APIs until SIGINT or SIGTERM.

Prints exactly one line, ``listening on http://HOST:PORT``, once connections are accepted
(``--port 0`` picks a free port), and exits 0 when stopped by a signal. With ``--tls-cert FILE
--tls-key FILE`` (PEM) it serves HTTPS and prints ``listening on https://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harvester.sim import readings
from harvester.sim.settings import SimSettings

if TYPE_CHECKING:  # asyncio and ssl are imported where they serve: the parser needs neither
    import ssl

# harvester.sim.server (aiohttp.web and both catalogues) is imported where it serves, not here:
# every ``harvester`` command builds its parser with ``add_arguments``, and would pay ~0.2 s.

__all__ = ["add_arguments", "main", "parse_now", "run", "settings_from"]


def parse_now(text: str) -> datetime:
    """``--now``: an ISO 8601 date or date-time (no offset means UTC), or ``now`` for this moment.

    >>> parse_now("2028-02-29").isoformat()
    '2028-02-29T00:00:00+00:00'
    >>> parse_now("2026-12-31T23:59:30Z").isoformat()
    '2026-12-31T23:59:30+00:00'
    """
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date or date-time: {text!r} (e.g. 2026-11-20 or 2026-12-31T23:59:30Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The fixed ``simulate`` flags, then the readings' (``readings.add_arguments``)."""
    d = SimSettings()
    _add_world(p, d)
    _add_rate(p, d)
    _add_answers(p, d)
    _add_access(p, d)
    readings.add_arguments(p)


def _add_world(p: argparse.ArgumentParser, d: SimSettings) -> None:
    """Where it listens and how big a world it builds from which seed."""
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--nobb-items", type=int, default=d.nobb_items)
    p.add_argument("--dbk-products", type=int, default=d.dbk_products)


def _add_rate(p: argparse.ArgumentParser, d: SimSettings) -> None:
    """The rate limit: its window, its headers and the quotas nobody announces."""
    p.add_argument(
        "--rate-limit", type=int, default=d.rate_limit, help="requests per window; 0: none"
    )
    p.add_argument("--rate-window", type=float, default=d.rate_window, help="seconds")
    p.add_argument(
        "--reset-style",
        choices=("epoch", "delta"),
        default=d.reset_style,
        help="x-ratelimit-reset as a UNIX time (default) or as seconds from now",
    )
    p.add_argument(
        "--rate-headers",
        choices=("x", "ietf", "ietf6", "both"),
        default=d.rate_headers,
        help="x-ratelimit-* (default), IETF RateLimit + RateLimit-Policy (drafts 07-08), "
        "RateLimit-Limit/-Remaining/-Reset (drafts <= 06), or x and ietf together",
    )
    p.add_argument(
        "--clock-skew",
        type=float,
        default=d.clock_skew,
        metavar="SECONDS",
        help="the server's Date and UNIX-time resets run this far ahead (negative: behind)",
    )
    p.add_argument(
        "--rate-sliding",
        action="store_true",
        help="a sliding window (remaining recovers gradually) instead of a fixed one",
    )
    # Quotas nobody announces (open-points.md): all off by default.
    p.add_argument(
        "--rate-hidden",
        action="store_true",
        help="enforce --rate-limit but send no rate-limit headers (only 429s show the quota)",
    )
    p.add_argument(
        "--retry-after",
        choices=("none", "seconds", "date"),
        default=d.retry_after,
        help="what a 429 carries: no Retry-After (default), Retry-After in seconds, or as an "
        "HTTP date",
    )
    p.add_argument(
        "--rate-change-after",
        type=int,
        default=d.rate_change_after,
        metavar="REQUESTS",
        help="after this many requests to an API its limit becomes --rate-change-to (0: never)",
    )
    p.add_argument("--rate-change-to", type=int, default=d.rate_change_to, metavar="LIMIT")


def _add_answers(p: argparse.ArgumentParser, d: SimSettings) -> None:
    """How the APIs answer: latency, token life, the DBK cap, faults, the bounds' readings."""
    p.add_argument("--latency-ms", type=float, default=d.latency_ms, help="delay before first byte")
    p.add_argument("--token-ttl", type=float, default=d.token_ttl, help="NOBB token life, seconds")
    p.add_argument("--dbk-max-products", type=int, default=d.dbk_max_products)
    p.add_argument(
        "--bulk-second",
        dest="dbk_bulk_second",
        action="store_true",
        default=d.dbk_bulk_second,
        help="opt-in: one DBK second holds --dbk-max-products + 1 products, more than one "
        "response may carry (a window no client can harvest exactly)",
    )
    p.add_argument(
        "--no-bulk-second",
        dest="dbk_bulk_second",
        action="store_false",
        help="no DBK second holding more products than one response may carry (the default)",
    )
    p.add_argument("--faults", choices=("none", "flaky", "hostile"), default=d.faults)
    p.add_argument(
        "--fail-matching",
        default=d.fail_matching,
        metavar="TEXT",
        help="a permanent fault: answer 500 to every export request whose path, query or body "
        "contains TEXT",
    )
    for flag, what in (
        (
            "--dbk-from-exclusive",
            "DBK updatedFrom exclusive (a product at updatedFrom left out)",
        ),
        ("--dbk-to-inclusive", "DBK updatedTo inclusive (a product at updatedTo is sent)"),
        ("--nobb-from-exclusive", "NOBB from exclusive (items changed on the from day left out)"),
        ("--nobb-to-exclusive", "NOBB to exclusive (items changed on the to day left out)"),
    ):
        p.add_argument(flag, action="store_true", help=what)


def _add_access(p: argparse.ArgumentParser, d: SimSettings) -> None:
    """The world's moment, the account and TLS."""
    p.add_argument(
        "--now",
        type=parse_now,
        default=d.now,
        metavar="WHEN",
        help="the moment the world is built for: an ISO date or date-time (no offset: UTC), or "
        "'now'; both catalogues' changes end at it, so seed and now fix the world "
        f"(default {d.now.isoformat().replace('+00:00', 'Z')}, never today's date)",
    )
    p.add_argument("--username", default=d.username)
    p.add_argument("--password", default=d.password)
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    p.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")


def settings_from(args: argparse.Namespace) -> SimSettings:
    """SimSettings from parsed flags (ValueError for out-of-range values)."""
    return SimSettings(
        host=args.host,
        port=args.port,
        seed=args.seed,
        nobb_items=args.nobb_items,
        dbk_products=args.dbk_products,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        reset_style=args.reset_style,
        rate_headers=args.rate_headers,
        clock_skew=args.clock_skew,
        rate_sliding=args.rate_sliding,
        rate_hidden=args.rate_hidden,
        retry_after=args.retry_after,
        rate_change_after=args.rate_change_after,
        rate_change_to=args.rate_change_to,
        latency_ms=args.latency_ms,
        token_ttl=args.token_ttl,
        dbk_max_products=args.dbk_max_products,
        dbk_bulk_second=args.dbk_bulk_second,
        faults=args.faults,
        fail_matching=args.fail_matching,
        dbk_from_exclusive=args.dbk_from_exclusive,
        dbk_to_inclusive=args.dbk_to_inclusive,
        nobb_from_exclusive=args.nobb_from_exclusive,
        nobb_to_exclusive=args.nobb_to_exclusive,
        username=args.username,
        password=args.password,
        now=args.now,
        readings=readings.readings_from(args),
    )


def tls_from(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server context of ``--tls-cert`` / ``--tls-key`` (None: plain http; ValueError)."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("--tls-cert and --tls-key go together")
    from harvester.sim.server import server_context

    return server_context(cert, key)


async def serve(settings: SimSettings, ssl_context: ssl.SSLContext | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    import asyncio

    from harvester.sim.server import Simulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Simulator(settings, ssl_context=ssl_context) as sim:
        print(f"listening on {sim.url}", flush=True)
        await stop.wait()


def run(args: argparse.Namespace, *, loop_factory: Callable[[], Any] | None = None) -> int:
    """Run the simulator from parsed flags; returns the exit code."""
    try:
        settings = settings_from(args)
        context = tls_from(args)
    except ValueError as exc:
        print(f"error: simulate: {exc}", file=sys.stderr)
        return 2
    import asyncio

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings, context))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harvester.sim.cli``: the simulator alone."""
    parser = argparse.ArgumentParser(prog="harvester simulate")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
