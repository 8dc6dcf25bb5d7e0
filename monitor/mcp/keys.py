"""Every Redis key the MCP server uses, in one place."""

from __future__ import annotations


class McpKeys:
    def __init__(self, key_prefix: str = "pzm") -> None:
        self._p = f"{key_prefix}:mcp"

    def token(self, digest: str) -> str:
        """A token's grant (JSON), by the SHA-256 of the token: the token itself is never stored."""
        return f"{self._p}:token:{digest}"

    @property
    def names(self) -> str:
        """Hash: token name -> digest, so that a token can be listed and revoked by name."""
        return f"{self._p}:names"

    @property
    def audit(self) -> str:
        """Stream: one entry per tool call."""
        return f"{self._p}:audit"
