"""Commands behind the CLI.

``demo`` starts the simulator in-process on a free loopback port and reports what it serves.
The harvest engine (``dump``/``sync``) is not built yet: those commands validate their config and
then say plainly that they cannot harvest, with exit 1, rather than pretend.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

import aiohttp

from harvester.config import load_config
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings

__all__ = ["run_command", "run_demo"]

NOT_YET = (
    "cannot harvest yet: the harvest engine (HTTP seam, rate limiter, token walks, time windows, "
    "durable sink) is not built in this version; `harvester simulate` serves both APIs meanwhile"
)


async def run_demo(*, out_dir: Path, nobb_items: int, dbk_products: int) -> int:
    """Start the simulator, show that both APIs answer, and say what cannot be harvested yet."""
    settings = SimSettings(nobb_items=nobb_items, dbk_products=dbk_products, rate_limit=0)
    async with Simulator(settings) as sim:
        print(
            f"simulator listening on {sim.url} (NOBB: {nobb_items:,} items, "
            f"DBK: {dbk_products:,} products)"
        )
        basic = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
        auth = {"Authorization": f"Basic {basic}"}
        async with aiohttp.ClientSession(base_url=sim.url) as http:
            async with http.get("/api/v2/items", params={"pageSize": "1"}, headers=auth) as resp:
                total = resp.headers.get("x-totalHits")
                print(f"  NOBB  GET /api/v2/items -> {resp.status}, x-totalHits {total}")
            body = {"username": settings.username, "password": settings.password}
            async with http.post("/dwapi/users/authenticate", json=body) as resp:
                token = (await resp.json())["token"]
                print(f"  DBK   POST /dwapi/users/authenticate -> {resp.status}")
            headers = {"Authorization": f"Bearer {token}"}
            params = {"updatedFrom": "20260101T000000Z", "updatedTo": "20260201T000000Z"}
            async with http.get("/onix/document/export/v3.1", params=params, headers=headers) as r:
                size = len(await r.read())
                print(
                    f"  DBK   GET /onix/document/export/v3.1 (2026) -> {r.status}, {size:,} bytes"
                )
    print(f"demo: {NOT_YET}; nothing was written to {out_dir}", file=sys.stderr)
    return 0


async def run_command(args: argparse.Namespace) -> int:
    """Dispatch one parsed command line; returns the exit code."""
    if args.command == "demo":
        return await run_demo(
            out_dir=args.out, nobb_items=args.nobb_items, dbk_products=args.dbk_products
        )
    load_config(args.config)  # a bad config is still exit 2, before anything else
    print(f"harvester {args.command} {args.source}: {NOT_YET}", file=sys.stderr)
    return 1
