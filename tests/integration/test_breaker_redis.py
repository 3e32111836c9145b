"""A circuit breaker in front of a real Redis that goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.redis_support import RedisServer
from ttbt5_otel._exceptions import CircuitOpenError
from ttbt5_otel._resilience.breaker import CircuitBreaker
from ttbt5_otel._resilience.breaker_telemetry import CircuitState
from ttbt5_otel.testing import TelemetryCapture

CALLS = "ttbt5.circuit_breaker.calls"
TRANSITIONS = "ttbt5.circuit_breaker.transitions"

pytestmark = pytest.mark.integration
RECOVERY = 0.3
OPEN, CLOSED = CircuitState.OPEN, CircuitState.CLOSED


async def test_breaker_opens_while_redis_is_down_and_closes_after_restart(
    redis_server: RedisServer, capture_telemetry: TelemetryCapture
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
