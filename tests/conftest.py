"""The fixtures every test module may ask for; the helpers they call are in ``tests/harness.py``
(runs, configs, the CLI, auth headers), ``tests/expected.py`` (what a run must write) and
``tests/clocks.py`` (every clock)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.clocks import Wall
from tests.tlstools import TlsFiles


@pytest.fixture(autouse=True)
def _seeded_random(request: pytest.FixtureRequest) -> None:
    """Seed the global RNG (backoff and limiter jitter) from the test's id: a run draws the same
    jitter each time, so a test that counts refusals is not at the mercy of a lucky draw."""
    random.seed(request.node.nodeid)


@pytest.fixture
def wall() -> Wall:
    """A fresh settable wall clock for the simulator, at ``clocks.T0``."""
    return Wall()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A trustme CA and a server certificate for 127.0.0.1, as PEM files (one per module)."""
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))
