"""Per-endpoint request counters, kept as plain data for the exporter to read.

Counted per HTTP attempt: `requests` (attempts sent), `failures` (attempts that ended in an
error: transport error, timeout, HTTP error status, malformed body, `code != 0`), `retries`
(attempts that were retries), `rate_limited` (429 answers). Per logical call: `calls` and
`call_failures` (calls that raised after all retries). Per row of a list answer: `rejected`
(rows dropped because a field failed validation, by that field).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(slots=True)
class EndpointStats:
    requests: int = 0
    failures: int = 0
    retries: int = 0
    rate_limited: int = 0
    calls: int = 0
    call_failures: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # field -> rows dropped for it


@dataclass(slots=True)
class ClientStats:
    """Counters by endpoint name (the names of `monitor.puzzel.endpoints.ENDPOINTS`)."""

    endpoints: dict[str, EndpointStats] = field(default_factory=dict)

    def of(self, endpoint: str) -> EndpointStats:
        """The live counters for `endpoint`, created at zero on first use."""
        stats = self.endpoints.get(endpoint)
        if stats is None:
            stats = self.endpoints[endpoint] = EndpointStats()
        return stats

    def snapshot(self) -> dict[str, EndpointStats]:
        """A copy that later requests do not change."""
        return {
            name: replace(stats, rejected=dict(stats.rejected))
            for name, stats in self.endpoints.items()
        }

    def total(self) -> EndpointStats:
        """All endpoints summed."""
        out = EndpointStats()
        for s in self.endpoints.values():
            out.requests += s.requests
            out.failures += s.failures
            out.retries += s.retries
            out.rate_limited += s.rate_limited
            out.calls += s.calls
            out.call_failures += s.call_failures
        return out
