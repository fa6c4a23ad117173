"""Shared pieces for the simulator's tests: a settable wall clock, auth headers, a client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest

from harvester.sim.settings import SimSettings

NOBB = "/api/v2/items"
DBK_AUTH = "/dwapi/users/authenticate"
DBK_REFRESH = "/dwapi/users/authenticate/refresh"
DBK_EXPORT = "/onix/document/export/v3.1"
ONIX_NS = "http://ns.editeur.org/onix/3.1/reference"
#: A start instant 3.5 s into a 10 s rate window (1_790_000_000 is a multiple of 10).
T0 = 1_790_000_003.5


class FakeWall:
    """A wall clock (UNIX seconds) the test moves by hand; the simulator calls it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def basic_auth(settings: SimSettings, password: str | None = None) -> dict[str, str]:
    """An HTTP Basic Authorization header for the settings' account (or another password)."""
    secret = settings.password if password is None else password
    raw = f"{settings.username}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def bearer(token: str) -> dict[str, str]:
    """A Bearer Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def wall() -> FakeWall:
    """A fresh settable wall clock at ``T0``."""
    return FakeWall()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session
