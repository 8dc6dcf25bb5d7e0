"""What can be wrong with a schedule, said precisely enough to find and fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One problem: where it is (`source` = file name or "request body", `where` = line, field
    path or event) and what is wrong."""

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.source}: {self.where}: {self.message}"
            if self.where
            else (f"{self.source}: {self.message}")
        )

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "where": self.where, "message": self.message}


class ScheduleImportError(ValueError):
    """A schedule was rejected; `issues` lists every problem found (nothing was written)."""

    def __init__(self, issues: Sequence[ImportIssue]) -> None:
        self.issues: list[ImportIssue] = list(issues)
        shown = "\n".join(f"  {i}" for i in self.issues[:20])
        more = f"\n  ... and {len(self.issues) - 20} more" if len(self.issues) > 20 else ""
        super().__init__(f"schedule rejected, {len(self.issues)} issue(s):\n{shown}{more}")
