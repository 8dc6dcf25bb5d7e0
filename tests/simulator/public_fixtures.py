"""Record tests/puzzel/fixtures/public/: one answer per endpoint the simulator's public profile
serves, taken over real HTTP from a small seeded centre on a virtual clock.

Regenerate with `.venv/bin/python -m tests.simulator.public_fixtures`. Tokens and session ids are
random per run, so they are replaced by fixed stand-ins; everything else is as served, and the
same centre and clock give the same bytes (tests/simulator/test_public_profile.py checks that the
checked-in files still match).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from monitor.core.clock import VirtualClock
from monitor.core.states import StateKind
from monitor.simulator import Simulator
from monitor.simulator.app import base_urls, create_app

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "puzzel" / "fixtures" / "public"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Oslo: some agents paused, some off
ACCESS_TOKEN = "recorded-access-token"
SESSION_ID = "recorded-session-id"
UNSERVED_SAMPLE = "agent_stats"  # the unevidenced endpoint whose 404 body is recorded


def fixture_simulator() -> Simulator:
    """24 agents with ids 158001..158024: 158004, 158011 and 158018 lack a first name,
    158004 and 158015 a last name."""
    clock = VirtualClock(START)
    return Simulator.random(agents=24, groups=3, queues=3, seed=1, clock=clock, profile="public")


def paused_agent_id(sim: Simulator) -> str:
    """The first paused agent (by id): the `user` fixture shows its pauseTypeId."""
    return min(a for a, (s, _) in sim.agent_states().items() if s.kind is StateKind.PAUSE)


async def _auth_answers(http: aiohttp.ClientSession, sim: Simulator, urls: dict[str, str]) -> Any:
    creds = sim.credentials
    login_body = {
        "customerKey": creds.customer_key,
        "userName": creds.user_name,
        "password": creds.password.get_secret_value(),
    }
    async with http.post(urls["auth"] + "/api/Authenticate/LogIn", json=login_body) as r:
        login = await r.json()
    session_id = login["refreshToken"]["sessionId"]
    refresh_body = {"customerKey": creds.customer_key, "sessionId": session_id}
    async with http.post(urls["auth"] + "/api/Authenticate/GetAccessToken", json=refresh_body) as r:
        refreshed = await r.json()
    form = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret.get_secret_value(),
        "scope": creds.scope,
    }
    async with http.post(urls["id"] + "/id/connect/token", data=form) as r:
        oidc = await r.json()
    token: str = login["accessToken"]
    login["accessToken"] = ACCESS_TOKEN
    login["refreshToken"]["sessionId"] = SESSION_ID
    oidc["access_token"] = ACCESS_TOKEN
    assert isinstance(refreshed, str)
    return token, {"login": login, "get_access_token": ACCESS_TOKEN, "oidc_token": oidc}


def _api_requests(sim: Simulator) -> dict[str, tuple[str, dict[str, str]]]:
    """fixture name -> (path under the API base, query)."""
    key, api_user = sim.customer_key, {"userId": str(sim.credentials.user_id)}
    return {
        "access_token_information": ("/accesstokeninformation", {}),
        "visual_queues": (f"/{key}/visualqueues", {}),
        "visual_queue_state_information": (f"/{key}/visualqueues/stateinformation/All", api_user),
        "user_group_state_information": (f"/{key}/users/stateinformation/Today", api_user),
        "user": (f"/{key}/users/{paused_agent_id(sim)}", {}),
        "users": (f"/{key}/users", {}),
        "user_groups": (f"/{key}/usergroups", {}),
        "queues": (f"/{key}/queues", {}),
        "not_found": (f"/{key}/users/agentstats/Today", api_user),
    }


async def record_answers(sim: Simulator) -> dict[str, Any]:
    """fixture name -> decoded JSON body, served by `sim` over loopback HTTP."""
    async with TestServer(create_app(sim)) as server, aiohttp.ClientSession() as http:
        urls = base_urls(str(server.make_url("")).rstrip("/"))
        token, answers = await _auth_answers(http, sim, urls)
        headers = {"Authorization": f"Bearer {token}"}
        for name, (path, query) in _api_requests(sim).items():
            async with http.get(urls["api"] + path, headers=headers, params=query) as r:
                answers[name] = await r.json()
        async with http.get(urls["api"] + "/accesstokeninformation") as r:
            answers["unauthorized"] = await r.json()
    return answers


def render(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, indent=1) + "\n"


def write(answers: dict[str, Any], directory: Path = FIXTURE_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in sorted(answers.items()):
        path = directory / f"{name}.json"
        path.write_text(render(body), encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    for path in write(asyncio.run(record_answers(fixture_simulator()))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
