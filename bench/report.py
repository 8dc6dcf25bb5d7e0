"""The printed table."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import BenchResult, Figure


def _value(f: Figure) -> str:
    if f.value is None:
        return "-"
    v = f.value
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}"
    if f.unit in ("agents", "tenants"):
        text = f"{v:,.0f}"
    return f"{text} {f.unit}"


def _ratio(f: Figure) -> str:
    if f.ratio is None:
        return ""
    return f"{f.ratio:g}x {f.ratio_of}"


def _goal(f: Figure) -> str:
    if not f.goal:
        return ""
    mark = {True: "met", False: "MISSED", None: ""}[f.met]
    return f"{f.goal} {mark}".strip()


def table(results: Sequence[BenchResult]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []
    for r in results:
        rows.append((f"== {r.title} ({r.seconds:.0f} s)", "", "", "", ""))
        if r.skipped:
            rows.append((f"  skipped: {r.skipped}", "", "", "", ""))
        for f in r.figures:
            rows.append((f.name, _value(f), _ratio(f), _goal(f), f.note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        if row[0].startswith("=="):
            lines.append(row[0])
            continue
        cells = [row[i].ljust(widths[i]) if i != 1 else row[i].rjust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    notes = [f"- {r.name}: {n}" for r in results for n in r.notes]
    return "\n".join([*lines, "", "Notes:", *notes])
