"""``instrument_cache`` on aiocache's in-memory cache: None, defaults, errors, latency."""

from __future__ import annotations

import asyncio

import pytest
from aiocache import SimpleMemoryCache
from aiocache import cached as aiocache_cached

from tests.unit.cache.support import REQUESTS, unique
from ttbt5_otel._cache import instrument_cache

DURATION = "ttbt5.cache.operation.duration"


def results(capture, name: str) -> dict[str, float]:
    return {
        result: capture.counter_value(
            REQUESTS, {"cache.name": name, "cache.level": "l1", "cache.result": result}
        )
        for result in ("hit", "miss", "error")
    }


async def test_stored_none_is_a_hit_and_default_is_a_miss(capture_telemetry):
    """get() of a stored None is a hit; get(default=) of a missing key is a miss."""
    name = unique()
    cache = instrument_cache(SimpleMemoryCache(), name=name)
    await cache.set("none", None)
    await cache.set("one", 1)
    assert await cache.get("none", default="d") == "d"  # aiocache's own behaviour, unchanged
    assert await cache.get("one") == 1
    assert await cache.get("missing", default="d") == "d"
    assert await cache.get("missing") is None
    assert results(capture_telemetry, name) == {"hit": 2, "miss": 2, "error": 0}
    get = {"cache.name": name, "cache.operation": "get"}
    assert capture_telemetry.histogram_count(DURATION, get) == 4
    assert capture_telemetry.histogram_count(DURATION, {**get, "cache.operation": "set"}) == 2
    assert 0 < capture_telemetry.histogram_sum(DURATION, get) < 1, "seconds an operation took"


async def test_multi_get_counts_each_key(capture_telemetry):
    """multi_get counts one hit or miss per key."""
    name = unique()
    cache = instrument_cache(SimpleMemoryCache(), name=name)
    await cache.multi_set([("a", 1), ("n", None)])
    assert await cache.multi_get(["a", "n", "x"]) == [1, None, None]
    assert results(capture_telemetry, name) == {"hit": 2, "miss": 1, "error": 0}


async def test_backend_error_is_counted_and_reraised_unchanged(capture_telemetry):
    """An exception from the backend is an error and propagates as is."""
    name = unique()
    cache = instrument_cache(SimpleMemoryCache(), name=name)
    boom = RuntimeError("backend down")

    async def failing(*args, **kwargs):
        raise boom

    cache._get = failing  # below the instrumentation, like a broken backend
    cache._set = failing
    with pytest.raises(RuntimeError) as caught:
        await cache.get("a")
    assert caught.value is boom
    with pytest.raises(RuntimeError):
        await cache.set("a", 1)
    assert results(capture_telemetry, name) == {"hit": 0, "miss": 0, "error": 2}


async def test_timeout_is_an_error(capture_telemetry):
    """aiocache's own operation timeout counts as an error."""
    name = unique()
    cache = instrument_cache(SimpleMemoryCache(timeout=0.01), name=name)

    async def slow(*args, **kwargs):
        await asyncio.sleep(1)

    cache._get = slow
    with pytest.raises(asyncio.TimeoutError):
        await cache.get("a")
    assert results(capture_telemetry, name)["error"] == 1


async def test_exists_and_delete_are_timed_not_counted(capture_telemetry):
    """exists/delete record latency but are not lookups."""
    name = unique()
    cache = instrument_cache(SimpleMemoryCache(), name=name)
    await cache.set("a", 1)
    assert await cache.exists("a") is True
    assert await cache.delete("a") == 1
    assert results(capture_telemetry, name) == {"hit": 0, "miss": 0, "error": 0}
    for operation in ("exists", "delete"):
        attributes = {"cache.name": name, "cache.operation": operation}
        assert capture_telemetry.histogram_count(DURATION, attributes) == 1


async def test_instrumenting_twice_counts_once(capture_telemetry):
    """A second instrument_cache call on the same instance changes nothing."""
    name = unique()
    cache = SimpleMemoryCache()
    assert instrument_cache(cache, name=name) is cache
    instrument_cache(cache, name=name)
    await cache.get("a")
    assert results(capture_telemetry, name)["miss"] == 1


async def test_aiocache_cached_decorator_is_reported(capture_telemetry):
    """aiocache's own @cached goes through the instrumented get/set."""
    name = unique()

    @aiocache_cached()
    async def answer() -> int:
        return 42

    instrument_cache(answer.cache, name=name)
    assert await answer() == 42
    assert await answer() == 42
    assert results(capture_telemetry, name) == {"hit": 1, "miss": 1, "error": 0}
