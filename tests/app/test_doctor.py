"""`puzzel-monitor doctor` against the simulator over real HTTP, in both profiles."""

from __future__ import annotations

from pathlib import Path

from monitor.app.config import TenantConfig
from monitor.app.doctor import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    SPECS,
    check_tenants,
    judge,
    unknown_fields,
)
from monitor.puzzel.endpoints import CONFIGURABLE, ENDPOINTS
from tests.app.conftest import AGENTS, SiteFactory

UNVERIFIED = sorted(n for n, e in ENDPOINTS.items() if not e.verified)
VERIFIED_API = sorted(n for n in CONFIGURABLE if ENDPOINTS[n].verified)
# table columns after the endpoint name
PATH, HTTP, CODE, ROWS, MISSING, UNKNOWN, MS, VERDICT = range(8)


def test_doctor_knows_every_configurable_endpoint() -> None:
    assert set(SPECS) == set(CONFIGURABLE)
    assert len(UNVERIFIED) == 5


async def test_public_profile_unverified_unsupported_agent_state_ok(site: SiteFactory) -> None:
    s = await site("public")
    result = await s.doctor(s.config())
    table = result.table()
    assert result.code == EXIT_OK, result.out
    assert set(table) == {"oidc_token", *CONFIGURABLE}
    assert table["oidc_token"][VERDICT] == "ok"
    for name in UNVERIFIED:  # off for this tenant, and the tenant lacks them anyway
        assert table[name][VERDICT] == "unsupported (off)", name
        assert table[name][HTTP] == "404"
    for name in VERIFIED_API:
        assert table[name][VERDICT] == "ok", (name, table[name])
        assert (table[name][HTTP], table[name][CODE], table[name][MISSING]) == ("200", "0", "-")
    agent_state = table["user_group_state_information"]
    assert agent_state[PATH] == "/{customerKey}/users/stateinformation/{tickerPeriodWindow}"
    assert agent_state[ROWS] == str(AGENTS)
    assert "=> ok" in result.out


async def test_public_profile_null_names_are_not_a_problem(site: SiteFactory) -> None:
    s = await site("public")
    [report] = await check_tenants([TenantConfig.model_validate(s.tenant())])
    probe = next(p for p in report.probes if p.endpoint == "user_group_state_information")
    assert any(row["firstName"] is None for row in probe.answer)  # the profile's null names
    assert (probe.verdict, probe.rows, probe.missing) == ("ok", AGENTS, ())
    assert report.healthy


async def test_full_profile_everything_ok(site: SiteFactory) -> None:
    s = await site("full")
    result = await s.doctor(s.config())
    table = result.table()
    assert result.code == EXIT_OK, result.out
    assert {name: row[VERDICT] for name, row in table.items()} == dict.fromkeys(
        ["oidc_token", *CONFIGURABLE], "ok"
    )
    assert table["agent_stats"][ROWS] == str(AGENTS)
    assert table["user"][ROWS] == "1"


async def test_endpoints_turned_off_are_still_called_and_say_so(site: SiteFactory) -> None:
    s = await site("full")
    result = await s.doctor(s.config(s.tenant(endpoints={"queues": False})))
    table = result.table()
    assert result.code == EXIT_OK
    for name in [*UNVERIFIED, "queues"]:
        assert table[name][VERDICT] == "ok (off)", name
    assert "answered but turned off" in result.out
    assert "pause_types" in result.out.split("answered but turned off")[1]


async def test_the_tenants_path_overrides_are_used(site: SiteFactory) -> None:
    s = await site("full")
    wrong = "/{customerKey}/nowhere/{tickerPeriodWindow}"
    result = await s.doctor(s.config(s.tenant(endpoints={"agent_stats": wrong})))
    row = result.table()["agent_stats"]
    assert (row[PATH], row[HTTP], row[VERDICT]) == (wrong, "404", "unsupported")
    assert result.code == EXIT_OK  # the agent-state call still works


async def test_wrong_credentials_are_an_auth_problem(site: SiteFactory) -> None:
    s = await site("public")
    tenant = s.tenant()
    tenant["credentials"]["client_secret"] = "not-the-secret-4711"
    result = await s.doctor(s.config(tenant))
    table = result.table()
    assert result.code == EXIT_FAILED
    assert table["oidc_token"][VERDICT] == "auth problem"
    assert table["oidc_token"][HTTP] in {"400", "401"}
    assert set(table) == {"oidc_token"}  # nothing else is tried without a token
    assert "NOT ok" in result.out
    assert "not-the-secret-4711" not in result.out + result.err


async def test_password_login_with_a_wrong_password(site: SiteFactory) -> None:
    s = await site("full")
    creds = s.sim.credentials
    tenant = s.tenant(
        credentials={"method": "password", "user_name": creds.user_name, "password": "nope-0815"}
    )
    result = await s.doctor(s.config(tenant))
    assert result.code == EXIT_FAILED
    assert result.table()["login"][VERDICT] == "auth problem"
    assert "nope-0815" not in result.out + result.err


async def test_password_login_works_and_secrets_are_not_printed(site: SiteFactory) -> None:
    s = await site("full")
    creds = s.sim.credentials
    password = creds.password.get_secret_value()
    tenant = s.tenant(
        credentials={"method": "password", "user_name": creds.user_name, "password": password}
    )
    result = await s.doctor(s.config(tenant))
    assert result.code == EXIT_OK, result.out
    assert result.table()["login"][VERDICT] == "ok"
    assert password not in result.out + result.err
    assert creds.client_secret.get_secret_value() not in result.out + result.err


async def test_agent_state_failing_exits_1(site: SiteFactory) -> None:
    s = await site("full")
    result = await s.doctor(
        s.config(s.tenant(endpoints={"user_group_state_information": "/{customerKey}/gone"}))
    )
    assert result.table()["user_group_state_information"][VERDICT] == "unsupported"
    assert result.code == EXIT_FAILED


async def test_bad_configuration_exits_2(site: SiteFactory, tmp_path: Path) -> None:
    s = await site("public")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants:\n  - id: '1'\n    credentials: {method: telepathy}\n", "utf-8")
    result = await s.doctor(bad)
    assert result.code == EXIT_CONFIG
    assert result.err.startswith("puzzel-monitor: configuration error:")
    assert result.out == ""
    missing = await s.doctor(tmp_path / "no-such-file.yaml")
    assert missing.code == EXIT_CONFIG


async def test_tenant_selects_one_and_an_unknown_key_is_a_config_error(site: SiteFactory) -> None:
    s = await site("public")
    elsewhere = s.tenant(customer_key="99999", api_base_url="http://127.0.0.1:9/ContactCentre5")
    config = s.config(s.tenant(), elsewhere)
    key = s.sim.customer_key
    result = await s.doctor(config, tenant=key)
    assert result.code == EXIT_OK, result.out
    assert f"tenant {key} " in result.out
    assert "99999" not in result.out
    unknown = await s.doctor(config, tenant="424242")
    assert unknown.code == EXIT_CONFIG
    assert "424242" in unknown.err


def test_judge_names_missing_required_fields_and_unknown_ones() -> None:
    spec = SPECS["user_group_state_information"]
    rows = [
        {"userId": 1, "contactCentreStatus": "Pause", "name": "x", "stats": {}},
        {"contactCentreStatus": "LoggedOn"},
    ]
    verdict, count, missing, detail = judge(spec, rows, name="user_group_state_information")
    assert (verdict, count, missing) == ("shape problem", 2, ("userId",))
    assert detail == "user_group_state_information: 1 of 2 rows would be dropped"
    assert unknown_fields(spec.model, rows) == ("name", "stats")
    assert judge(SPECS["user"], {"firstName": "A"}, name="user")[:3] == (
        "shape problem",
        1,
        ("id",),
    )
    assert judge(SPECS["users"], {"not": "a list"}, name="users")[0] == "shape problem"
