"""The `mcp:` section of the configuration (read by `monitor.app.config`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Serve MCP over streamable HTTP next to the monitor (`run`)."""
    host: str = "127.0.0.1"
    """Loopback by default: put a TLS proxy in front to reach it from elsewhere."""
    port: int = Field(default=8914, ge=0, le=65535)
    """Its own port: the SDK's HTTP transport is an ASGI app, the monitor's server aiohttp."""
    audit_maxlen: int = Field(default=100_000, ge=100)
    """The audit stream is trimmed to about this many entries."""
