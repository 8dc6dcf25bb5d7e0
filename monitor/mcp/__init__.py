"""The MCP server: the monitor's live state as tools for AI assistants, behind scoped tokens."""
