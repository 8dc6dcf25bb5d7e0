"""The one strict YAML reader, used by the configuration, the rule files and scenario files.

YAML 1.1 (PyYAML) without its surprises: `off`, `yes`, `no` stay strings (an activity is called
`off`; a cadence says `off`) and only `true`/`false` are booleans; `10:00` and
`2026-03-02T07:30:00` stay strings (no base-60 numbers, no timestamps); a leading zero does not
make a number octal or decimal (`010` stays the string "010", so an id keeps its digits). `null`,
`42`, `0.5`, `1e3`, `0x1f` keep their usual meaning. Errors carry the line of the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader (no arbitrary objects) with the implicit types above."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    _INT,
    # no leading zeros: SafeLoader's int constructor would read them as octal
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
StrictLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+|0|[1-9][0-9]*)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True, slots=True)
class YamlProblem(Exception):
    """Text that is not valid YAML: the line (1-based) of the problem, and what it is."""

    line: int | None
    problem: str

    def __str__(self) -> str:
        return f"not valid YAML: {self.problem}"


def read_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree (for line numbers) of `text`. Raises YamlProblem."""
    try:
        node = yaml.compose(text, Loader=StrictLoader)
        data = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise _problem(e) from None
    return data, node


def read_value(text: str) -> Any:
    """One value written as YAML (an environment override), read like a file's values."""
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as e:
        raise _problem(e) from None


def _problem(e: yaml.YAMLError) -> YamlProblem:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    # str(e) repeats the position in PyYAML's own words (and may name the context's line rather
    # than the problem's); callers put the line in their own prefix, so keep only the problem
    return YamlProblem(line, getattr(e, "problem", None) or "cannot be parsed")
