"""Redis key names live in one module: no other module builds a key from the prefix."""

from __future__ import annotations

import ast
from pathlib import Path

from monitor.core.keys import RedisKeys

PACKAGE = Path(__file__).resolve().parents[2] / "monitor"


def _prefix_fstrings(path: Path) -> list[int]:
    """Lines of f-strings that start with a `...prefix...` placeholder followed by `:`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr) and len(node.values) >= 2:
            first, second = node.values[0], node.values[1]
            if (
                isinstance(first, ast.FormattedValue)
                and "prefix" in ast.unparse(first.value)
                and isinstance(second, ast.Constant)
                and str(second.value).startswith(":")
            ):
                lines.append(node.lineno)
    return lines


def test_no_module_but_keys_builds_a_key() -> None:
    offenders = {
        str(p.relative_to(PACKAGE)): found
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "keys.py" and (found := _prefix_fstrings(p))
    }
    assert offenders == {}


def test_the_check_finds_a_key_built_elsewhere(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def k(key_prefix: str) -> str:\n    return f"{key_prefix}:x"\n')
    assert _prefix_fstrings(bad) == [2]


def test_key_names() -> None:
    """The names the README documents."""
    keys = RedisKeys()
    assert keys.engine_state("12345") == "pzm:12345:engine"
    assert keys.engine_fields("12345") == "pzm:12345:engine:fields"
    assert keys.schedules("12345") == "pzm:12345:sched"
    assert keys.outbox() == "pzm:outbox"
    assert keys.alerts() == "pzm:alerts"
    assert keys.heartbeat() == "pzm:heartbeat"
    assert keys.lease("12345") == "pzm:12345:lease"
    assert keys.fencing_token("12345") == "pzm:12345:lease:token"
    assert keys.delivery_lease() == "pzm:outbox:lease"
    assert keys.replicas() == "pzm:replicas"
    assert RedisKeys("pzm-replay").outbox() == "pzm-replay:outbox"
