"""Disposable redis-servers on loopback for integration tests: one server, or a cluster.

A missing redis-server fails the test instead of skipping it: CI installs the package, and
a silently skipped Redis test would hide a broken L2 cache or breaker integration.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from tests.loopback import free_port
from ttbt5_otel._cli.processes import log_tail, redis_ready

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server on 127.0.0.1:``port`` that can be stopped and started again."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not answers_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def running_redis(workdir: Path) -> Iterator[RedisServer]:
    """Start a server for one test and always stop it."""
    if not Path(REDIS_SERVER).exists():
        pytest.fail("redis-server not found: install the Debian package redis-server")
    server = RedisServer(free_port(), workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- Redis Cluster ---------------------------------------------------------------------------
CLUSTER_PASSWORD_PREFIX = 'pw:/@ "q" '  # URL and redis.conf special characters on purpose


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (a cluster node needs two: client and bus)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class RedisCluster:
    """A Redis Cluster of redis-server processes on 127.0.0.1, formed by the stack's code.

    Every node has a password (with URL and redis.conf special characters) that is only in
    its 0600 ``redis.conf``; ``url`` is the ``redis+cluster://`` URL with it, ``nodes`` the
    node specs, ``shards`` the masters, their slots and replicas as formed. ``stop()`` stops
    every process this object started, whatever state it is in.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        masters: int = 3,
        replicas: int = 1,
        extra: dict[str, str] | None = None,
    ) -> None:
        from ttbt5_otel._cli import redis_cluster  # noqa: PLC0415

        self.module = redis_cluster
        self.password = CLUSTER_PASSWORD_PREFIX + secrets.token_urlsafe(12)
        count = masters * (1 + replicas)
        ports = free_ports(2 * count)
        self.nodes = redis_cluster.node_specs(
            workdir, list(zip(ports[:count], ports[count:], strict=True))
        )
        self.replicas = replicas
        self.extra = extra
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.shards: tuple[Any, ...] = ()
        self.url = redis_cluster.cluster_url(self.nodes, self.password)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [node.address for node in self.nodes]

    def start(self, timeout: float = 30.0) -> None:
        self.module.write_configs(self.nodes, self.password, extra=self.extra)
        for node in self.nodes:
            log = (node.directory / "redis.log").open("ab")
            try:
                self.procs[node.port] = subprocess.Popen(
                    self.module.node_command(node, REDIS_SERVER),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            finally:
                log.close()
        deadline = time.monotonic() + 10
        for node in self.nodes:
            while not redis_ready(node.host, node.port, self.password):
                proc = self.procs[node.port]
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"redis-server did not start on {node.name}: {self.log(node.port)}")
                time.sleep(0.02)
        self.shards = self.module.form_cluster(
            self.nodes, self.password, replicas=self.replicas, timeout=timeout
        )

    def log(self, port: int) -> str:
        node = next(node for node in self.nodes if node.port == port)
        return log_tail(node.directory / "redis.log", 15)

    def client(self, port: int, **options: Any) -> redis.Redis:
        """A plain client of one node (close it)."""
        options.setdefault("socket_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=port, password=self.password, **options)

    def command(self, port: int, *args: Any) -> Any:
        """One command to one node, decoded."""
        client = self.client(port, decode_responses=True)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def alive(self) -> list[int]:
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def roles(self, via: int | None = None) -> dict[int, tuple[str, str]]:
        """``port -> (flags, master id or "-")`` as one living node sees the cluster."""
        port = via if via is not None else self.alive()[0]
        lines = str(self.command(port, "CLUSTER", "NODES")).splitlines()
        found = {}
        for line in lines:
            parts = line.split()
            address = parts[1].split("@", 1)[0]
            found[int(address.rsplit(":", 1)[1])] = (parts[2], parts[3])
        return found

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key`` now."""
        slot = key_slot(key.encode())
        for shard in self.slot_owners():
            if shard[0] <= slot <= shard[1]:
                return shard[2]
        raise AssertionError(f"slot {slot} is not served")

    def slot_owners(self) -> list[tuple[int, int, int]]:
        """``(first, last, master port)`` of each slot range, from a living node."""
        ranges = self.command(self.alive()[0], "CLUSTER", "SLOTS")
        return [(int(r[0]), int(r[1]), int(r[2][1])) for r in ranges]

    def replica_of(self, master: int) -> int:
        for shard in self.shards:
            if shard.master[1] == master:
                return int(shard.replicas[0][1])
        raise AssertionError(f"{master} was not formed as a master")

    def kill(self, port: int) -> None:
        """SIGKILL one node (it stays down until the cluster is stopped)."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)

    def stall(self, port: int, seconds: float) -> None:
        """Make one node stop answering anyone (``DEBUG SLEEP``) without waiting for it."""
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(resp("AUTH", self.password))
            assert sock.recv(64) == b"+OK\r\n"
            # Redis answers a pipeline after running all of it: send the sleep on its own,
            # let the server read it, and leave without its answer.
            sock.sendall(resp("DEBUG", "SLEEP", str(seconds)))
            time.sleep(0.05)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Wait until every living node is in a healthy cluster again."""
        alive = [node for node in self.nodes if node.port in self.alive()]
        self.module.form_cluster(alive, self.password, replicas=self.replicas, timeout=timeout)

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL those still running after 3 s (a cache keeps nothing)."""
        procs, self.procs = list(self.procs.values()), {}
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def resp(*words: str) -> bytes:
    """One command in the Redis protocol."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def running_redis_cluster(workdir: Path, **options: Any) -> Iterator[RedisCluster]:
    """Start a 3-master/3-replica cluster (by default) and always stop every node."""
    if not Path(REDIS_SERVER).exists():
        pytest.fail("redis-server not found: install the Debian package redis-server")
    cluster = RedisCluster(workdir, **options)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
