"""Rows unchanged since the previous answer are not validated again, and nothing else changes:
the cached parse equals the uncached one (rows, rejections, their order) through any answers."""

from __future__ import annotations

import math
import random
from typing import Any

from monitor.puzzel.models import RawRows, RowCache, UserGroupAgentState, parse_rows

EP = "user_group_state_information"

# values that are equal in Python but validate differently, blanks, junk, nested values
AWKWARD: list[Any] = [
    1, 1.0, True, False, 0, 0.0, -0.0, "1", "1.0", "", " ", None, "x", 7, 7.5, "7",
    math.nan, math.inf, [1], {"a": 1}, -3, "Pause", 10**20,
]  # fmt: skip
FIELDS = [
    "userId", "contactCentreStatus", "firstName", "lastName", "callsOffered", "callsAnswered",
    "pauseTypeId", "pauseTypeName", "statusDurationSeconds", "somethingNew",
]  # fmt: skip


def _row(agent: int) -> dict[str, Any]:
    return {"userId": agent, "contactCentreStatus": "Available", "firstName": f"A{agent}"}


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


def _rows_equal(a: list[UserGroupAgentState], b: list[UserGroupAgentState]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for name in UserGroupAgentState.model_fields:
            u, v = getattr(x, name), getattr(y, name)
            assert type(u) is type(v), (name, u, v)
            assert _same(u, v), (name, u, v)
            if isinstance(u, float) and u == 0:
                assert math.copysign(1, u) == math.copysign(1, v), (name, u, v)


def test_unchanged_rows_come_back_as_the_same_objects() -> None:
    cache = RowCache()
    first = parse_rows(UserGroupAgentState, [_row(i) for i in range(5)], endpoint=EP, cache=cache)
    answer = [_row(i) for i in range(5)]
    answer[2]["firstName"] = "Renamed"
    second = parse_rows(UserGroupAgentState, answer, endpoint=EP, cache=cache)
    same = [a is b for a, b in zip(first.rows, second.rows, strict=True)]
    assert same == [True, True, False, True, True]
    assert second.rows[2].first_name == "Renamed"
    assert len(cache) == 6  # the renamed row and its former content: recent answers are kept


def test_equal_values_of_other_types_are_not_confused() -> None:
    cache = RowCache()
    names = []
    for value in (1, 1.0, "1", 0.0, -0.0, 1):
        row = {"userId": 5, "contactCentreStatus": "Available", "firstName": value}
        row["statusDurationSeconds"] = value
        (parsed,) = parse_rows(UserGroupAgentState, [row], endpoint=EP, cache=cache).rows
        names.append((parsed.first_name, repr(parsed.status_duration_seconds)))
    assert names == [
        ("1", "1.0"), ("1.0", "1.0"), ("1", "1.0"), ("0.0", "0.0"), ("-0.0", "-0.0"), ("1", "1.0"),
    ]  # fmt: skip


def test_bad_rows_are_rejected_in_every_answer() -> None:
    cache = RowCache()
    answer = [_row(1), {"userId": 2}, "junk", _row(3), {"userId": [1], "contactCentreStatus": "x"}]
    for _ in range(3):
        parsed = parse_rows(UserGroupAgentState, answer, endpoint=EP, cache=cache)
        assert [r.user_id for r in parsed.rows] == [1, 3]
        assert [r.field for r in parsed.rejected] == ["contactCentreStatus", "row", "userId.int"]


def test_cached_parse_equals_uncached_through_random_answers() -> None:
    rng = random.Random(16)
    cache = RowCache()
    pool = [_row(i) for i in range(40)]
    for _ in range(60):
        for row in rng.sample(pool, 8):  # some rows change, most stay
            row[rng.choice(FIELDS)] = rng.choice(AWKWARD)
        answer = [dict(r) for r in rng.sample(pool, rng.randint(0, len(pool)))]
        if rng.random() < 0.2:
            answer.insert(rng.randint(0, len(answer)), rng.choice(AWKWARD))
        plain = parse_rows(UserGroupAgentState, answer, endpoint=EP)
        cached = parse_rows(UserGroupAgentState, answer, endpoint=EP, cache=cache)
        _rows_equal(cached.rows, plain.rows)
        assert cached.rejected == plain.rejected
        assert len(cache) <= 2 * len(pool) + 64


# --- raw answers: the rows split from the body and compared as bytes -------------------------

STATE = "user_group_state_information"
# JSON texts of awkward row values: a 30-digit integer (orjson reads a float), escapes, values
# equal only once decoded ("\u0041da" and "Ada", 1E2 and 100.0)
RAW_VALUES = [
    "1", "1.0", "true", "false", "0", "0.0", "-0.0", '"1"', '"1.0"', '""', '" "', "null",
    '"x"', "7", "7.5", '"7"', "[1]", '{"a": 1}', "-3", '"Pause"', "123456789012345678901234567890",
    '"\\u0041da"', '"Ada"', "1E2", "100.0", "[]", "{}",
]  # fmt: skip
NOT_JSON = ["1e400", "NaN", '"\\ud800"', "01"]  # orjson refuses these: the body is malformed


def _raw_row(rng: random.Random, agent: int) -> str:
    fields = {"userId": str(agent), "contactCentreStatus": '"Available"'}
    fields["firstName"] = f'"A{agent}"'
    for _ in range(rng.randint(0, 3)):
        fields[rng.choice(FIELDS)] = rng.choice(RAW_VALUES)
    sep = rng.choice([",", ", ", " ,\n"])
    return "{" + sep.join(f'"{k}":{v}' for k, v in fields.items()) + "}"


def _envelope(rng: random.Random, rows: list[str]) -> str:
    """Rows in one of the shapes the client accepts (or refuses), with awkward envelopes."""
    array = "[" + rng.choice([",", " , "]).join(rows) + "]"
    shapes = [
        ('{"result":%s,"code":0,"id":"sim-1","message":""}', 8),
        ('{"code":0,"result":%s}', 2),
        ("%s", 2),  # a bare array
        ('{"result":%s}', 1),  # a 200 without a code
        ('{"result":%s,"code":"0","id":12,"message":null}', 1),
        ('{"result":%s,"code":0,"total":3}', 1),  # a key the envelope does not know
        ('{"result":[],"code":0,"result":%s}', 1),  # a duplicate key: the last one counts
        ('{"result":%s,"code":3,"message":"Invalid customerKey"}', 1),
        ('{"result":%s,"code":404}', 1),
        ('{"result":%s,"code":"x"}', 1),
        ('{"result":%s,"code":0,"message":{"a":1}}', 1),
        ('{"result":null,"code":0,"x":%s}', 1),
        ('{"result":{"a":%s},"code":0}', 1),
        ('{"result":%s,"code":0} junk', 1),
        ('  {"result" : %s , "code" : 0 }\n', 1),
    ]
    shape = rng.choices([s for s, _ in shapes], weights=[w for _, w in shapes])[0]
    return shape % array


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:  # the error itself is the outcome to compare
        return ("error", type(exc).__name__, str(exc), getattr(exc, "field", None))


def _client() -> Any:
    from types import SimpleNamespace

    from monitor.puzzel.client import PuzzelClient

    return PuzzelClient(SimpleNamespace(customer_key="k", user_id=1))  # type: ignore[arg-type]


def test_raw_parse_equals_plain_parse_through_random_answers() -> None:
    """The raw path (envelope split, rows compared as bytes with the previous answer's, only
    the others decoded and validated) gives what the plain path gives for every answer: rows
    (types and signs included), rejections in order, and the same error for a body it
    refuses, whatever the envelope's shape; its rows also come back as the very same objects
    when their bytes are unchanged."""
    rng = random.Random(1616)
    client, plain_client = _client(), _client()
    ep = client.endpoints[STATE]
    cache = RowCache()
    pool = [_raw_row(rng, i) for i in range(40)]
    raw_answers = previous = 0
    for _ in range(150):
        for i in rng.sample(range(len(pool)), 4):  # a few rows change, most stay
            pool[i] = _raw_row(rng, i)
        rows = list(pool)
        if rng.random() < 0.2:  # an agent leaves or comes: the rest shift
            del rows[rng.randrange(len(rows))]
        if rng.random() < 0.1:
            rows.insert(rng.randint(0, len(rows)), rng.choice(RAW_VALUES))  # not an object
        if rng.random() < 0.05:
            bad = '{"userId":1,"contactCentreStatus":' + rng.choice(NOT_JSON) + "}"
            rows.insert(rng.randint(0, len(rows)), bad)
        body = _envelope(rng, rows).encode()

        def raw(body: bytes = body) -> Any:
            result = client._unwrap_rows(ep, 200, body)
            return client._parse_rows(ep, UserGroupAgentState, result, cache=cache)

        def plain(body: bytes = body) -> Any:
            result = plain_client._unwrap(ep, 200, body)
            return plain_client._parse_rows(ep, UserGroupAgentState, result)

        got, want = _outcome(raw), _outcome(plain)
        if want[0] == "error":
            assert got == want
            continue
        assert got[0] == "ok", got
        _rows_equal(got[1].rows, want[1].rows)
        assert got[1].rejected == want[1].rejected
        if isinstance(client._unwrap_rows(ep, 200, body), RawRows):
            raw_answers += 1
            by_id = {r.user_id: r for r in previous or []}
            kept = sum(by_id.get(r.user_id) is r for r in got[1].rows)
            assert previous == 0 or kept > 0
            previous = got[1].rows
    assert raw_answers > 60  # most answers took the raw path


def test_raw_rows_unchanged_are_the_same_objects_even_when_shifted() -> None:
    from monitor.puzzel.models import parse_raw_rows, split_rows

    rows = [f'{{"userId":{i},"contactCentreStatus":"Available"}}' for i in range(12)]
    cache = RowCache()

    def parse(rows: list[str]) -> list[UserGroupAgentState]:
        split = split_rows(('{"result":[' + ",".join(rows) + '],"code":0}').encode())
        assert split is not None
        done = parse_raw_rows(UserGroupAgentState, split[1], cache=cache)
        assert done is not None
        return done.rows

    first = parse(rows)
    rows[3] = '{"userId":3,"contactCentreStatus":"Pause"}'
    second = parse(rows)
    assert [a is b for a, b in zip(first, second, strict=True)] == [i != 3 for i in range(12)]
    assert second[3].contact_centre_status == "Pause"
    third = parse(rows[1:])  # the first agent left: every other row moved up one place
    assert all(a is b for a, b in zip(second[1:], third, strict=True))


def test_a_row_orjson_refuses_makes_the_body_malformed_as_before() -> None:
    """msgspec leaves 1e400 inside a raw row alone; orjson (the plain parse) refuses it: the
    answer is refused as not JSON, as it was, also when the row was fine the time before."""
    client = _client()
    ep = client.endpoints[STATE]
    cache = RowCache()
    good = '{"userId":1,"contactCentreStatus":"Available"}'
    for row in (good, '{"userId":1,"contactCentreStatus":"Available","callsOffered":1e400}'):
        body = ('{"result":[' + row + '],"code":0,"id":"a","message":""}').encode()
        result = client._unwrap_rows(ep, 200, body)
        assert isinstance(result, RawRows)
        outcome = _outcome(lambda r=result: client._parse_rows(ep, UserGroupAgentState, r, cache))
        if row == good:
            assert outcome[0] == "ok"
        else:
            assert outcome[0] == "error"
            assert outcome == _outcome(lambda b=body: client._unwrap(ep, 200, b))
            assert outcome[1:2] == ("PuzzelMalformedResponse",)
            assert outcome[3] == "body"
