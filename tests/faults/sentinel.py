"""A Redis that survives a machine, on loopback: a primary redis-server, one replica
(`--replicaof`) and three Redis Sentinels (quorum 2) watching them, each on a free port, all in
one temporary directory. Short timings: the primary is declared down after `down_after_ms`, and a
failover is retried after `failover_timeout_ms`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.redis_server import free_port

SERVICE = "pzm-primary"


def sentinel_command(conf: Path) -> list[str] | None:
    """How to start a Sentinel on `conf` here: the Debian package's `redis-sentinel`, else the
    same program as `redis-server conf --sentinel`; None when neither is installed."""
    if binary := shutil.which("redis-sentinel"):
        return [binary, str(conf)]
    if binary := shutil.which("redis-server"):
        return [binary, str(conf), "--sentinel"]
    return None


def ask(port: int, *command: str, timeout: float = 1.0) -> bytes:
    """One command in RESP over a plain socket (no client library, no pooling); the raw reply."""
    parts = [f"*{len(command)}\r\n".encode()]
    for word in command:
        parts.append(f"${len(word.encode())}\r\n{word}\r\n".encode())
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(b"".join(parts))
        time.sleep(0.02)
        return c.recv(65536)


class SentinelCluster:
    def __init__(self, *, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        server = shutil.which("redis-server")
        if server is None or sentinel_command(Path("x")) is None:
            raise RuntimeError("redis-server / redis-sentinel are not installed")
        self.server = server
        self.dir = Path(tempfile.mkdtemp(prefix="pzm-sentinel-"))
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.sentinel_ports]

    def _server(self, name: str, port: int, *extra: str) -> None:
        workdir = self.dir / name
        workdir.mkdir()
        self.procs[name] = subprocess.Popen(
            [self.server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
             "--loglevel", "warning", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(f"{name} answers", lambda: ask(port, "PING").startswith(b"+PONG"))

    def _sentinel(self, i: int, port: int) -> None:
        conf = self.dir / f"sentinel-{i}.conf"  # a Sentinel rewrites its file: one each
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\nloglevel warning\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        log = (self.dir / f"sentinel-{i}.log").open("wb")
        command = sentinel_command(conf)
        assert command is not None
        self.procs[f"sentinel-{i}"] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(f"sentinel {i} answers", lambda: ask(port, "PING").startswith(b"+PONG"))

    def start(self) -> None:
        self._server("primary", self.primary_port)
        self._server("replica", self.replica_port, "--replicaof", "127.0.0.1",
                     str(self.primary_port))  # fmt: skip
        wait_until("the replica in sync", self._replica_synced)
        for i, port in enumerate(self.sentinel_ports):
            self._sentinel(i, port)
        # a failover needs the Sentinels to know each other (a majority elects the leader)
        # and the replica: they learn both from the primary within a few seconds
        wait_until("the Sentinels to know each other and the replica", self._ready, 30)

    def _replica_synced(self) -> bool:
        return b"master_link_status:up" in ask(self.replica_port, "INFO", "replication")

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            reply = ask(port, "SENTINEL", "MASTER", SERVICE)
            fields = _fields(reply)
            if fields.get("num-other-sentinels") != "2" or fields.get("num-slaves") != "1":
                return False
        return True

    def primary(self) -> int:
        """The port of the primary the first Sentinel names now."""
        reply = ask(self.sentinel_ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(reply.split(b"\r\n")[-2])

    def kill_primary(self) -> None:
        proc = self.procs.pop("primary")
        proc.kill()  # SIGKILL: the machine is gone, nothing is flushed or handed over
        proc.wait(timeout=10)

    def demote_primary(self) -> None:
        """A failover with the primary still running (`SENTINEL FAILOVER`): it is turned into a
        replica of the promoted one, and its clients' writes are answered with READONLY."""
        reply = ask(self.sentinel_ports[0], "SENTINEL", "FAILOVER", SERVICE)
        assert reply.startswith(b"+OK"), reply

    def sentinel_log(self) -> str:
        return "".join(
            (self.dir / f"sentinel-{i}.log").read_text(errors="replace") for i in range(3)
        )

    def cleanup(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(timeout=10)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def _fields(reply: bytes) -> dict[str, str]:
    """SENTINEL MASTER's flat list of names and values, as a dict."""
    items = [line.decode() for line in reply.split(b"\r\n") if line and line[:1] not in b"*$"]
    return dict(zip(items[::2], items[1::2], strict=False))


def wait_until(what: str, cond: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")
