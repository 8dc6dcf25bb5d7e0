"""structlog set-up for the service: JSON lines when stdout is not a terminal, a readable console
otherwise. Standard-library loggers (aiohttp, asyncio) go through the same renderer.

A last processor drops any value that is a `SecretStr` and masks configured secret strings, so a
careless `log.info(..., token=config.api.token)` cannot leak one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from pydantic import SecretStr

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_REDACTED = "**********"


class _Redactor:
    """A structlog processor that masks secrets wherever they appear in an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, SecretStr):
                event[key] = _REDACTED
            elif isinstance(value, str) and self.secrets:
                text = value
                for secret in self.secrets:
                    text = text.replace(secret, _REDACTED)
                event[key] = text
        return event


class _OurHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second configure replaces it."""


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once."""
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if sys.stdout.isatty() else "json"
    numeric = LEVELS.get(level.lower(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _Redactor(secrets),
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _OurHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _OurHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # aiohttp's access log is one line per scrape: noise at info level
    logging.getLogger("aiohttp.access").setLevel(max(numeric, logging.WARNING))
