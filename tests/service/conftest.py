"""Fixtures for the service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.service.simserver import SimServers


@pytest.fixture
async def make_sim_server() -> AsyncIterator[Callable[..., Any]]:
    """Start simulators served on loopback (VirtualClock at T0); closed after the test."""
    servers = SimServers()
    yield servers.start
    await servers.close()
