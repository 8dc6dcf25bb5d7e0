"""Rows unchanged since the previous answer are not validated again, and nothing else changes:
the cached parse equals the uncached one (rows, rejections, their order) through any answers."""

from __future__ import annotations

import math
import random
from typing import Any

from monitor.puzzel.models import RowCache, UserGroupAgentState, parse_rows

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
