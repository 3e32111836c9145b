"""``cached``: async and sync functions, single-flight, None results, SWR, warm, tags."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

from tests.unit.cache.support import COALESCED, REQUESTS, Clock, FakeRemote, unique
from ttbt5_otel._cache import CacheConfigError, HierarchicalCache, MemoryCache, cached


async def test_single_flight_runs_loader_once_for_100_callers(capture_telemetry):
    """100 concurrent misses of one key: one load, 99 callers coalesced."""
    name = unique()
    cache = MemoryCache(100, name=name)
    runs = 0
    release = asyncio.Event()

    @cached(cache, ttl=60)
    async def load(item: int) -> dict[str, int]:
        nonlocal runs
        runs += 1
        await release.wait()
        return {"item": item}

    callers = [asyncio.create_task(load(7)) for _ in range(100)]
    deadline = time.monotonic() + 10
    while cache.hierarchical.counts.coalesced < 99 and time.monotonic() < deadline:
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers)
    assert runs == 1
    assert all(result == {"item": 7} for result in results)
    assert capture_telemetry.counter_value(COALESCED, {"cache.name": name}) == 99
    miss = {"cache.name": name, "cache.level": "l1", "cache.result": "miss"}
    assert capture_telemetry.counter_value(REQUESTS, miss) == 100
    assert await load(7) == {"item": 7}
    assert runs == 1


async def test_different_keys_load_in_parallel():
    """Single-flight is per key."""
    runs: list[int] = []

    @cached(MemoryCache(10, name=unique()))
    async def load(item: int) -> int:
        runs.append(item)
        await asyncio.sleep(0)
        return item

    assert await asyncio.gather(load(1), load(2), load(1)) == [1, 2, 1]
    assert sorted(runs) == [1, 2]


async def test_loader_error_reaches_every_waiter_and_is_not_cached():
    """A failed load raises in all joined callers; the next call loads again."""
    attempts = 0

    @cached(MemoryCache(10, name=unique()))
    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise ValueError("first time")
        return "ok"

    results = await asyncio.gather(flaky(), flaky(), flaky(), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert await flaky() == "ok"
    assert attempts == 2


async def test_cancelled_caller_does_not_cancel_the_shared_load():
    """The first caller's cancellation leaves the load running for the others."""
    release = asyncio.Event()

    @cached(MemoryCache(10, name=unique()))
    async def slow() -> str:
        await release.wait()
        return "done"

    first = asyncio.create_task(slow())
    await asyncio.sleep(0)
    second = asyncio.create_task(slow())
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "done"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_none_result_is_cached():
    """A function returning None is not called again."""
    runs = 0

    @cached(MemoryCache(10, name=unique()))
    async def nothing() -> None:
        nonlocal runs
        runs += 1

    assert await nothing() is None
    assert await nothing() is None
    assert runs == 1


async def test_wrapper_stays_a_coroutine_function():
    """The async wrapper is an async def with the wrapped function's name."""

    @cached(MemoryCache(10, name=unique()))
    async def named() -> int:
        return 1

    assert inspect.iscoroutinefunction(named)
    assert named.__name__ == "named"


async def test_ttl_and_tags_from_arguments():
    """Results expire after ttl; tags computed from the arguments invalidate them."""
    clock = Clock()
    cache = HierarchicalCache(unique(), l1=MemoryCache(10, timer=clock), clock=clock, ttl_jitter=0)
    runs: list[int] = []

    @cached(cache, ttl=10, tags=lambda user_id: [f"user:{user_id}"])
    async def profile(user_id: int) -> int:
        runs.append(user_id)
        return user_id * 10

    await profile(1)
    await profile(2)
    await profile(1)
    assert runs == [1, 2]
    await cache.invalidate_tags("user:1")
    await profile(1)
    await profile(2)
    assert runs == [1, 2, 1]
    clock.advance(10)
    await profile(2)
    assert runs == [1, 2, 1, 2]


async def test_custom_key_and_invalidate():
    """key= replaces the key builder; invalidate(args) drops one entry."""
    runs = 0

    @cached(MemoryCache(10, name=unique()), key=lambda user, *, verbose=False: f"user:{user}")
    async def fetch(user: str, *, verbose: bool = False) -> str:
        nonlocal runs
        runs += 1
        return user

    await fetch("a")
    await fetch("a", verbose=True)
    assert runs == 1
    assert fetch.cache_key("a") == "user:a"
    assert await fetch.invalidate("a") is True
    await fetch("a")
    assert runs == 2


async def test_stale_while_revalidate_serves_stale_and_refreshes_once():
    """Past the TTL, within the window: the old value at once, one refresh behind it."""
    clock = Clock()
    cache = HierarchicalCache(unique(), l1=MemoryCache(10, timer=clock), clock=clock, ttl_jitter=0)
    version = 0
    release = asyncio.Event()

    @cached(cache, ttl=10, stale_while_revalidate=30)
    async def config() -> int:
        nonlocal version
        version += 1
        if version > 1:
            await release.wait()
        return version

    assert await config() == 1
    clock.advance(15)
    assert await config() == 1  # stale, refresh started
    assert await config() == 1  # stale, refresh already running
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert await config() == 2
    assert version == 2
    clock.advance(10 + 30)
    assert await config() == 3  # beyond the window: a plain miss


async def test_failed_background_refresh_is_logged_and_keeps_the_stale_value(caplog):
    """A refresh that raises is logged; callers keep getting the stale value."""
    clock = Clock()
    name = unique()
    cache = HierarchicalCache(name, l1=MemoryCache(10, timer=clock), clock=clock, ttl_jitter=0)
    calls = 0

    @cached(cache, ttl=10, stale_while_revalidate=30)
    async def config() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("source down")
        return 1

    assert await config() == 1
    clock.advance(15)
    assert await config() == 1
    for _ in range(5):
        await asyncio.sleep(0)
    assert await config() == 1
    assert any("background refresh failed" in r.getMessage() for r in caplog.records)


async def test_warm_with_argument_tuples_and_mapping():
    """warm() loads argument tuples (or keyword mappings), or stores key -> value pairs."""
    runs: list[int] = []
    cache = MemoryCache(10, name=unique())

    @cached(cache)
    async def square(n: int) -> int:
        runs.append(n)
        return n * n

    assert await square.warm([(2,), {"n": 3}]) == 2
    assert runs == [2, 3]
    assert await square(2) == 4
    assert await square(3) == 9
    assert await square.warm({square.cache_key(4): 99}) == 1
    assert await square(4) == 99
    assert runs == [2, 3]


def test_sync_function_with_memory_cache():
    """Sync functions are cached in memory-only caches, with tags and warm."""
    cache = MemoryCache(10, name=unique())
    runs: list[int] = []

    @cached(cache, tags=["all"])
    def double(n: int) -> int:
        runs.append(n)
        return 2 * n

    assert not inspect.iscoroutinefunction(double)
    assert double(2) == 4
    assert double(n=2) == 4
    assert runs == [2]
    assert double.warm([(5,)]) == 1
    assert double.warm({double.cache_key(6): 0}) == 1
    assert double(6) == 0
    assert double.invalidate(2) is True
    double(2)
    assert runs == [2, 5, 2]
    asyncio.run(cache.hierarchical.invalidate_tags("all"))
    double(5)
    assert runs == [2, 5, 2, 5]


def test_sync_single_flight_across_threads(capture_telemetry):
    """Threads missing one key wait for one load."""
    name = unique()
    cache = MemoryCache(10, name=name, thread_safe=True)
    release = threading.Event()
    runs = 0

    @cached(cache)
    def load() -> str:
        nonlocal runs
        runs += 1
        release.wait(10)
        return "v"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(load())) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while cache.hierarchical.counts.coalesced < 7 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == ["v"] * 8
    assert runs == 1
    assert capture_telemetry.counter_value(COALESCED, {"cache.name": name}) == 7


def test_sync_function_with_shared_level_is_refused():
    """A sync function cannot use a cache with a Redis or disk level."""
    cache = HierarchicalCache(unique(), l1=MemoryCache(10), l2=FakeRemote())
    with pytest.raises(CacheConfigError, match=r"sync function.*memory-only.*async"):

        @cached(cache)
        def blocking() -> int:
            return 1


def test_refused_combinations():
    """Generators and sync stale-while-revalidate are configuration errors."""
    cache = MemoryCache(10, name=unique())
    with pytest.raises(CacheConfigError, match="generator"):

        @cached(cache)
        def numbers():
            yield 1

    with pytest.raises(CacheConfigError, match="stale_while_revalidate"):

        @cached(cache, stale_while_revalidate=5)
        def value() -> int:
            return 1

    with pytest.raises(CacheConfigError, match="stale_while_revalidate"):
        cached(cache, stale_while_revalidate=-1)


async def test_shared_level_failure_falls_back_to_the_loader(capture_telemetry):
    """With the only level down, every call runs the function and nothing raises."""
    name = unique()
    remote = FakeRemote()
    remote.down = True
    cache = HierarchicalCache(name, l2=remote, retry_interval=0)
    runs = 0

    @cached(cache, tags=["t"])
    async def compute() -> int:
        nonlocal runs
        runs += 1
        return runs

    assert await compute() == 1
    assert await compute() == 2
    error = {"cache.name": name, "cache.level": "l2", "cache.result": "error"}
    assert capture_telemetry.counter_value(REQUESTS, error) >= 4
