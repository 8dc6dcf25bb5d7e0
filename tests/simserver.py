"""The simulator served over real HTTP on loopback, for the service and e2e tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.app.config import Config, TenantConfig
from monitor.core.clock import VirtualClock
from monitor.simulator.app import base_urls, create_app, simulated_endpoints
from monitor.simulator.simulator import Simulator

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning, agents at work


@dataclass
class SimServer:
    sim: Simulator
    clock: VirtualClock
    root: str
    app: web.Application
    broken: set[str]  # path fragments answered 400, a failure (a route override)
    missing: set[str]  # path fragments answered 404: endpoints the tenant does not have

    def tenant(self, **overrides: Any) -> TenantConfig:
        return TenantConfig.model_validate(tenant_dict(self.sim, self.root, **overrides))


def tenant_dict(sim: Simulator, root: str, **overrides: Any) -> dict[str, Any]:
    """Tenant settings (as in the YAML file) for a simulator served at `root`."""
    creds = sim.credentials
    urls = base_urls(root)
    data: dict[str, Any] = {
        "id": creds.customer_key,
        "timezone": "Europe/Oslo",
        "credentials": {
            "method": "puzzel_id",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret.get_secret_value(),
            "user_id": creds.user_id,
        },
        "api_base_url": urls["api"],
        "auth_base_url": urls["auth"],
        "id_base_url": urls["id"],
        # a frozen virtual clock must never make the rate limiter wait
        "rate_limit": {"requests_per_second": 1000, "burst": 5000},
        "cadences": {"jitter": "off"},
        "endpoints": simulated_endpoints(sim),
    }
    data.update(overrides)
    return data


def config_for(server: SimServer, **overrides: Any) -> Config:
    return Config.model_validate(
        {
            "tenants": [tenant_dict(server.sim, server.root, **overrides)],
            "exporter": {"host": "127.0.0.1", "port": 0},
        }
    )


class SimServers:
    """Starts simulators on demand and closes them all at the end."""

    def __init__(self) -> None:
        self.servers: list[TestServer] = []

    async def start(
        self, agents: int = 60, groups: int = 3, queues: int = 4, profile: str = "full"
    ) -> SimServer:
        """A random-mode simulator on a VirtualClock at T0 (frozen until advanced)."""
        clock = VirtualClock(T0)
        sim = Simulator.random(
            agents=agents, groups=groups, queues=queues, clock=clock, seed=3, profile=profile
        )
        app = create_app(sim)
        broken: set[str] = set()
        missing: set[str] = set()

        @web.middleware
        async def override(request: web.Request, handler: Any) -> web.StreamResponse:
            path = request.path.lower()
            if any(fragment in path for fragment in broken):
                return web.json_response(
                    {"result": None, "code": 400, "id": "x", "message": "broken"}, status=400
                )
            if any(fragment in path for fragment in missing):
                return web.json_response(
                    {"result": None, "code": 404, "id": "x", "message": "not found"}, status=404
                )
            response: web.StreamResponse = await handler(request)
            return response

        app.middlewares.append(override)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.servers.append(server)
        root = str(server.make_url("")).rstrip("/")
        return SimServer(sim, clock, root, app, broken, missing)

    async def close(self) -> None:
        for server in self.servers:
            await server.close()
