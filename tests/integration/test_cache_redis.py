"""Caching against a real redis-server: L2, cross-process tags, outage and recovery."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiocache import RedisCache as AiocacheRedisCache
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.paths import REPO as ROOT
from tests.redis_support import RedisServer
from ttbt5_otel._cache import HierarchicalCache, MemoryCache, RedisCache, cached, instrument_cache
from ttbt5_otel.testing import TelemetryCapture

EVICTIONS = "ttbt5.cache.evictions"
REQUESTS = "ttbt5.cache.requests"

pytestmark = pytest.mark.integration


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        yield client
    finally:
        await client.aclose()


def requests(capture: TelemetryCapture, name: str, level: str, result: str) -> float:
    attributes = {"cache.name": name, "cache.level": level, "cache.result": result}
    return capture.counter_value(REQUESTS, attributes)


async def test_l2_hit_after_l1_eviction(
    redis_server: RedisServer, raw: aioredis.Redis, capture_telemetry: TelemetryCapture
) -> None:
    """An entry pushed out of L1 comes back from Redis and is copied into L1 again."""
    l2 = RedisCache(port=redis_server.port, namespace="it")
    cache = HierarchicalCache("it-evict", l1=MemoryCache(2), l2=l2, ttl=60)
    try:
        for key in ("a", "b", "c"):
            await cache.set(key, {"key": key, "none": None})
        assert "a" not in cache.l1
        assert await raw.exists("it:e:a") == 1
        assert 0 < await raw.ttl("it:e:a") <= 60
        assert await cache.get("a") == {"key": "a", "none": None}
        assert "a" in cache.l1
        assert await cache.get("a") == {"key": "a", "none": None}
    finally:
        await cache.close()
    assert requests(capture_telemetry, "it-evict", "l2", "hit") == 1
    assert requests(capture_telemetry, "it-evict", "l1", "hit") == 1
    evicted = {"cache.name": "it-evict", "cache.level": "l1", "cache.eviction.reason": "size"}
    assert capture_telemetry.counter_value(EVICTIONS, evicted) == 2
    assert (
        capture_telemetry.histogram_count(
            "ttbt5.cache.operation.duration", {"cache.name": "it-evict", "cache.level": "l2"}
        )
        == 4  # three writes, one read
    )


def _run_other_process(port: int, code: str) -> str:
    script = textwrap.dedent(
        f"""
        import asyncio
        from ttbt5_otel._cache import HierarchicalCache, MemoryCache, RedisCache

        async def main():
            cache = HierarchicalCache(
                "other", l1=MemoryCache(10), l2=RedisCache(port={port}, namespace="it")
            )
            try:
        {textwrap.indent(textwrap.dedent(code), " " * 16)}
            finally:
                await cache.close()

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def test_tag_invalidation_from_another_process(redis_server: RedisServer) -> None:
    """Process B invalidates a tag: process A does not serve its L1 copy any more."""
    cache = HierarchicalCache(
        "it-tags", l1=MemoryCache(10), l2=RedisCache(port=redis_server.port, namespace="it")
    )
    loads = 0

    @cached(cache, ttl=300, tags=lambda user_id: [f"user:{user_id}"])
    async def profile(user_id: int) -> dict[str, int]:
        nonlocal loads
        loads += 1
        return {"user": user_id, "version": loads}

    try:
        assert await profile(1) == {"user": 1, "version": 1}
        assert await profile(1) == {"user": 1, "version": 1}  # L1 hit
        key = profile.cache_key(1)
        # B sees A's entry through Redis, then invalidates the tag.
        seen = _run_other_process(redis_server.port, f"print(await cache.get({key!r}))")
        assert seen == "{'user': 1, 'version': 1}"
        _run_other_process(redis_server.port, "await cache.invalidate_tags('user:1')")
        assert key in cache.l1  # still in A's L1 ...
        assert await profile(1) == {"user": 1, "version": 2}  # ... but never served
        assert loads == 2
        seen = _run_other_process(redis_server.port, f"print(await cache.get({key!r}))")
        assert seen == "{'user': 1, 'version': 2}"
    finally:
        await cache.close()


async def test_redis_stopped_and_restarted(
    redis_server: RedisServer,
    raw: aioredis.Redis,
    capture_telemetry: TelemetryCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis goes away: calls keep working from L1 and the loader, errors are counted, one
    warning is logged; Redis comes back: the cache uses it again on its own."""
    caplog.set_level(logging.INFO, "ttbt5_otel.cache")
    l2 = RedisCache(port=redis_server.port, namespace="it", timeout=0.5)
    cache = HierarchicalCache("it-outage", l1=MemoryCache(100), l2=l2, retry_interval=0.2)
    loads: list[int] = []

    @cached(cache, ttl=300, tags=["all"])
    async def square(n: int) -> int:
        loads.append(n)
        return n * n

    try:
        assert await square(2) == 4
        redis_server.stop()
        for _ in range(5):
            assert await square(2) == 4  # from L1
        for n in range(3, 8):
            assert await square(n) == n * n  # from the loader
        await asyncio.sleep(0.25)
        assert await square(8) == 64  # a probe: still down
        assert loads == [2, 3, 4, 5, 6, 7, 8]
        errors = requests(capture_telemetry, "it-outage", "l2", "error")
        assert errors >= 6
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "unavailable" in warnings[0].getMessage()

        redis_server.start()
        await asyncio.sleep(0.25)
        assert await square(9) == 81
        assert await raw.exists("it:e:" + square.cache_key(9)) == 1
        assert any("recovered" in r.getMessage() for r in caplog.records)
        cache.l1.clear()
        assert await square(9) == 81  # from Redis
        assert loads == [2, 3, 4, 5, 6, 7, 8, 9]
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    finally:
        await cache.close()


async def test_slow_redis_times_out_and_falls_back(
    redis_server: RedisServer, raw: aioredis.Redis, capture_telemetry: TelemetryCapture
) -> None:
    """A Redis slower than the timeout counts an error; the loader answers in time."""
    l2 = RedisCache(port=redis_server.port, namespace="it", timeout=0.1)
    cache = HierarchicalCache("it-slow", l2=l2, retry_interval=0)

    @cached(cache)
    async def value() -> str:
        return "fresh"

    try:
        await l2.tag_versions(["warm-up"])  # open a connection before pausing
        await raw.execute_command("CLIENT", "PAUSE", "1000", "ALL")
        started = time.monotonic()
        assert await value() == "fresh"
        # Answered long before Redis would have (each operation gives up after 0.1 s).
        assert time.monotonic() - started < 0.8
    finally:
        await raw.execute_command("CLIENT", "UNPAUSE")
        await cache.close()
    assert requests(capture_telemetry, "it-slow", "l2", "error") >= 1


async def test_strict_cache_raises_when_redis_is_down(redis_server: RedisServer) -> None:
    """strict=True hands the connection error to the caller."""
    cache = HierarchicalCache(
        "it-strict", l2=RedisCache(port=redis_server.port, namespace="it"), strict=True
    )
    redis_server.stop()
    try:
        with pytest.raises(RedisConnectionError):
            await cache.get("a")
    finally:
        await cache.close()


async def test_instrument_aiocache_redis_cache(
    redis_server: RedisServer, capture_telemetry: TelemetryCapture
) -> None:
    """instrument_cache on aiocache's RedisCache: None is a hit, default a miss, outage an error."""
    cache = instrument_cache(
        AiocacheRedisCache(port=redis_server.port, namespace="legacy", timeout=0.5),
        name="it-legacy",
    )
    try:
        await cache.set("nothing", None)
        await cache.set("one", 1)
        assert await cache.get("nothing", default="d") == "d"
        assert await cache.get("one") == 1
        assert await cache.get("missing", default="d") == "d"
        assert await cache.multi_get(["one", "nothing", "missing"]) == [1, None, None]
        redis_server.stop()
        with pytest.raises(RedisConnectionError):
            await cache.get("one")
    finally:
        await cache.client.aclose()
    assert requests(capture_telemetry, "it-legacy", "l2", "hit") == 4
    assert requests(capture_telemetry, "it-legacy", "l2", "miss") == 2
    assert requests(capture_telemetry, "it-legacy", "l2", "error") == 1
