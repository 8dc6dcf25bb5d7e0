"""Errors raised by the Puzzel client. Every one is a `PuzzelError` and names the endpoint.

Messages never include tokens, passwords, client secrets or request URLs.
"""

from __future__ import annotations


class PuzzelError(Exception):
    """Base class: anything the Puzzel client raises on purpose."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class PuzzelApiError(PuzzelError):
    """Puzzel answered with an error: an envelope with `code != 0` or an HTTP error status."""

    def __init__(self, code: int, message: str, endpoint: str, http_status: int) -> None:
        text = message or "(no message)"
        super().__init__(
            f"{endpoint}: Puzzel error code {code} (HTTP {http_status}): {text}", endpoint=endpoint
        )
        self.code = code
        self.message = message
        self.http_status = http_status


class PuzzelNotFound(PuzzelApiError):
    """HTTP 404/405 (or an envelope saying 404): this tenant does not have the endpoint, or its
    path in the endpoint table is wrong for this tenant."""


class PuzzelAuthError(PuzzelError):
    """Authentication failed: credentials rejected, or a fresh token was still refused."""

    def __init__(self, message: str, *, endpoint: str, http_status: int | None = None) -> None:
        status = f" (HTTP {http_status})" if http_status is not None else ""
        super().__init__(f"{endpoint}: authentication failed{status}: {message}", endpoint=endpoint)
        self.http_status = http_status


class PuzzelRateLimited(PuzzelError):
    """Puzzel answered 429 and waiting `retry_after` seconds would overrun the call's deadline."""

    def __init__(self, retry_after: float, *, endpoint: str) -> None:
        super().__init__(
            f"{endpoint}: rate limited by Puzzel (retry after {retry_after:g} s)", endpoint=endpoint
        )
        self.retry_after = retry_after


class PuzzelTransportError(PuzzelError):
    """The request did not get an HTTP answer (connection refused, reset, DNS, ...)."""


class PuzzelTimeout(PuzzelTransportError):
    """No complete answer within the per-request timeout."""


class PuzzelMalformedResponse(PuzzelError):
    """The answer broke the API's promise: bad JSON, no envelope, or a field failing validation."""

    def __init__(self, endpoint: str, detail: str, *, field: str | None = None) -> None:
        where = f" field {field!r}" if field else ""
        super().__init__(f"{endpoint}: malformed response{where}: {detail}", endpoint=endpoint)
        self.field = field
        self.detail = detail


class PuzzelDeadlineExceeded(PuzzelError):
    """Retries ran out of time: the call's overall deadline passed. `last_error` says why."""

    def __init__(self, endpoint: str, deadline: float, last_error: PuzzelError | None) -> None:
        why = f"; last error: {last_error}" if last_error is not None else ""
        super().__init__(
            f"{endpoint}: gave up after the {deadline:g} s deadline{why}", endpoint=endpoint
        )
        self.deadline = deadline
        self.last_error = last_error
