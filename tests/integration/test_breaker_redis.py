"""A circuit breaker in front of a real Redis that goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ttbt5_otel._circuit_breaker import CircuitBreaker
from ttbt5_otel._circuit_telemetry import CALLS, TRANSITIONS, CircuitState
from ttbt5_otel._exceptions import CircuitOpenError
from ttbt5_otel.testing import TelemetryCapture

pytestmark = pytest.mark.integration
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
RECOVERY = 0.3
OPEN, CLOSED = CircuitState.OPEN, CircuitState.CLOSED


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """A throw-away redis-server on loopback that can be stopped and started again."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
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


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    server = RedisProcess(_free_port(), tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def test_breaker_opens_while_redis_is_down_and_closes_after_restart(
    redis_server: RedisProcess, capture_telemetry: TelemetryCapture
) -> None:
    """Stop Redis: failures open the breaker; restart it: a probe closes the breaker."""
    breaker = CircuitBreaker(
        "redis-it",
        failure_threshold=3,
        recovery_timeout=RECOVERY,
        failure_exceptions=(RedisConnectionError, RedisTimeoutError, OSError),
    )
    client = aioredis.Redis(
        host="127.0.0.1",
        port=redis_server.port,
        socket_timeout=1,
        socket_connect_timeout=1,
        # The breaker is under test, not the client's own retries.
        retry=Retry(NoBackoff(), 0),
    )
    try:
        assert await breaker.call_async(client.set, "greeting", "hello")
        assert await breaker.call_async(client.get, "greeting") == b"hello"

        redis_server.stop()
        for _ in range(3):
            with pytest.raises((RedisConnectionError, RedisTimeoutError, OSError)):
                await breaker.call_async(client.get, "greeting")
        assert breaker.state is OPEN
        for _ in range(5):
            with pytest.raises(CircuitOpenError) as caught:
                await breaker.call_async(client.get, "greeting")
            assert 0 < caught.value.retry_after <= RECOVERY

        redis_server.start()
        # Still open until the recovery timeout has passed, even though Redis is back.
        with contextlib.suppress(CircuitOpenError):
            await breaker.call_async(client.ping)
        await asyncio.sleep(RECOVERY + 0.05)
        assert await breaker.call_async(client.set, "greeting", "again")
        assert breaker.state is CLOSED
        assert await breaker.call_async(client.get, "greeting") == b"again"
    finally:
        await client.aclose()

    calls = breaker.calls
    assert calls["failure"] == 3
    assert calls["rejected"] >= 5
    assert (
        capture_telemetry.counter_value(
            CALLS, {"circuit_breaker.name": "redis-it", "result": "failure"}
        )
        == 3
    )
    assert (
        capture_telemetry.counter_value(
            CALLS, {"circuit_breaker.name": "redis-it", "result": "rejected"}
        )
        == calls["rejected"]
    )
    for source, target in (("closed", "open"), ("open", "half_open"), ("half_open", "closed")):
        attributes = {"circuit_breaker.name": "redis-it", "from": source, "to": target}
        assert capture_telemetry.counter_value(TRANSITIONS, attributes) == 1
    levels = [
        r.log_record.severity_text
        for r in capture_telemetry.logs
        if (r.log_record.attributes or {}).get("logger.name") == "ttbt5_otel.resilience"
    ]
    assert "WARNING" in levels
    assert "INFO" in levels
