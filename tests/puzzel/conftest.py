"""Shared helpers for the Puzzel client tests: recorded JSON fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> Any:
    """The decoded JSON of tests/puzzel/fixtures/<name>.json."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def fixture_json() -> Any:
    """`load_fixture`, as a fixture."""
    return load_fixture
