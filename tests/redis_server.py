"""The private redis-server for tests (see monitor.app.testing)."""

from monitor.app.testing import RedisServer, free_port

__all__ = ["RedisServer", "free_port"]
