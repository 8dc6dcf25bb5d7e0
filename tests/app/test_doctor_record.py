"""`doctor --record`: fixtures with personal data replaced, ids and shape kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.app.config import TenantConfig
from monitor.app.doctor import SPECS, Redactor, check_tenants
from monitor.puzzel.models import parse_as, parse_rows
from tests.app.conftest import SiteFactory

PERSONAL = {"firstName", "lastName", "userName", "eMail", "mobilePhone", "phoneNumber"}


def personal_values(data: Any) -> set[str]:
    """Every non-empty string under a personal key, anywhere in `data`."""
    found: set[str] = set()
    if isinstance(data, list):
        for item in data:
            found |= personal_values(item)
    elif isinstance(data, dict):
        for key, value in data.items():
            if key in PERSONAL and isinstance(value, str) and value:
                found.add(value)
            else:
                found |= personal_values(value)
    return found


def skeleton(data: Any) -> Any:
    """The shape of `data`: keys, list lengths, nulls and value types."""
    if isinstance(data, list):
        return [skeleton(item) for item in data]
    if isinstance(data, dict):
        return {key: skeleton(value) for key, value in data.items()}
    return None if data is None else type(data).__name__


def ids(data: Any) -> list[Any]:
    rows = data if isinstance(data, list) else [data]
    return [row.get("id", row.get("userId")) for row in rows if isinstance(row, dict)]


@pytest.mark.parametrize("profile", ["public", "full"])
async def test_record_replaces_personal_data_and_keeps_ids_and_shape(
    site: SiteFactory, tmp_path: Path, profile: str
) -> None:
    s = await site(profile)
    # the answers as the simulator gave them (doctor itself, without --record)
    [report] = await check_tenants([TenantConfig.model_validate(s.tenant())])
    originals = {p.endpoint: p.answer for p in report.probes if p.answered}
    secrets = set().union(*(personal_values(a) for a in originals.values()))
    # first and last names, user names, and the e-mail of `users/{userId}`
    assert len(secrets) > 40
    assert any("@" in v for v in secrets)

    out = tmp_path / "fixtures"
    result = await s.doctor(s.config(), record=out)
    assert result.code == 0, result.out
    folder = out / s.sim.customer_key
    files = {f.stem: f for f in folder.glob("*.json")}
    assert set(files) == set(originals) - {"oidc_token"}
    text = "\n".join(f.read_text("utf-8") for f in files.values())
    leaked = sorted(v for v in secrets if v in text)
    assert leaked == []
    for name, path in files.items():
        envelope = json.loads(path.read_text("utf-8"))
        assert set(envelope) == {"result", "code"}
        assert envelope["code"] == 0
        recorded, original = envelope["result"], originals[name]
        assert skeleton(recorded) == skeleton(original), name
        assert ids(recorded) == ids(original), name
        spec = SPECS[name]  # ready to serve as a fixture: the models take it as they took it
        if spec.many:
            assert parse_rows(spec.model, recorded, endpoint=name).rejected == []
        else:
            parse_as(spec.model, recorded, endpoint=name)


async def test_record_keeps_statuses_and_numbers(site: SiteFactory, tmp_path: Path) -> None:
    s = await site("full")
    [report] = await check_tenants([TenantConfig.model_validate(s.tenant())])
    original = next(p.answer for p in report.probes if p.endpoint == "user_group_state_information")
    await s.doctor(s.config(), record=tmp_path)
    path = tmp_path / s.sim.customer_key / "user_group_state_information.json"
    recorded = json.loads(path.read_text("utf-8"))["result"]
    keep = ("userId", "contactCentreStatus", "userStatus", "userGroupName", "callsOffered")
    assert [[r.get(k) for k in keep] for r in recorded] == [
        [r.get(k) for k in keep] for r in original
    ]


def test_redactor_is_consistent_and_covers_nested_phone_numbers_and_addresses() -> None:
    answer = {
        "id": 158888,
        "firstName": "Ada",
        "lastName": "Nilsen",
        "userName": "ada",
        "eMail": "ada@example.no",
        "mobilePhone": "+4790000000",
        "description": "escalate to ada@example.no",
        "profiles": [{"id": 771, "name": "Phone NO", "phoneNumber": "+4721000000"}],
        "requests": [{"requestRemoteAddress": "+4798765432", "timeInQueue": 12}],
    }
    rows = [{"userId": 158888, "name": "Ada Nilsen", "status": "Pause"}, {"userName": "ada"}]
    redactor = Redactor()
    one, two = redactor.redact(answer), redactor.redact(rows)
    text = json.dumps([one, two])
    for value in ("Ada", "Nilsen", "ada@", "+4790000000", "+4721000000", "+4798765432"):
        assert value not in text, value
    assert one["userName"] == two[1]["userName"]  # the same user, the same pseudonym
    assert one["profiles"][0]["name"] == "Phone NO"  # a profile's name is not a person's
    assert two[0]["name"] != "Ada Nilsen"
    assert two[0]["status"] == "Pause"
    assert (one["id"], one["requests"][0]["timeInQueue"]) == (158888, 12)
    assert answer["firstName"] == "Ada"  # the input is left alone


def test_redactor_keeps_nulls_and_empty_strings() -> None:
    redacted = Redactor().redact([{"userId": 1, "firstName": None, "mobilePhone": ""}])
    assert redacted == [{"userId": 1, "firstName": None, "mobilePhone": ""}]
