"""The private redis-server for tests (see monitor.testing)."""

from monitor.testing import RedisServer, free_port

__all__ = ["RedisServer", "free_port"]
