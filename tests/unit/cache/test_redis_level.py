"""RedisCache without a server: the bounded pool, the shared timeout budget, Busy vs outage."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool

from tests.unit.cache.support import FakeRemote, unique
from ttbt5_otel._cache import HierarchicalCache, RedisCache, cached
from ttbt5_otel._cache.outage import Busy, Outage
from ttbt5_otel._exceptions import CacheConfigError


class SlowBackend:
    """Stands in for aiocache's RedisCache: each call takes ``delay`` s; tracks concurrency."""

    def __init__(self, delay: float = 0.0, value: bytes | None = b"value") -> None:
        self.delay = delay
        self.value = value
        self.running = 0
        self.most = 0
        self.timeouts: list[object] = []

    async def get(self, key: str, timeout: object = None) -> bytes | None:
        self.timeouts.append(timeout)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        return self.value

    async def multi_get(self, keys: list[str], timeout: object = None) -> list[Any]:
        await self.get(keys[0], timeout)
        return [None] * len(keys)


def level(backend: SlowBackend, **options: Any) -> RedisCache:
    return RedisCache(backend=backend, **options)


@pytest.mark.parametrize("size", [0, -1, 2.5, None])
def test_pool_max_size_must_be_a_positive_int(size: Any) -> None:
    with pytest.raises(CacheConfigError, match="pool_max_size"):
        RedisCache(pool_max_size=size)


async def test_default_pool_is_bounded_and_blocking() -> None:
    """The pool waits for a connection (no MaxConnectionsError) and has 50 at most."""
    cache = RedisCache(timeout=0.3)
    try:
        pool = cache.backend.client.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert (pool.max_connections, pool.timeout) == (50, 0.3)
        assert cache.pool_max_size == 50
        custom = RedisCache(pool_max_size=7).backend.client.connection_pool
        assert custom.max_connections == 7
    finally:
        await cache.close()


async def test_callers_beyond_the_pool_wait_for_a_connection() -> None:
    """Twenty callers through two connections: all answered, never more than two at once."""
    backend = SlowBackend(delay=0.01)
    redis = level(backend, pool_max_size=2, timeout=1.0)
    results = await asyncio.gather(*(redis.get_raw(f"k{n}") for n in range(20)))
    assert results == [b"value"] * 20
    assert backend.most == 2
    assert redis.counts.errors == 0
    assert set(backend.timeouts) == {0}  # aiocache's own wait_for is off: one budget


async def test_no_connection_within_the_timeout_is_busy_and_bounded() -> None:
    """A caller that never gets a connection gives up after ``timeout``, as Busy."""
    redis = level(SlowBackend(), pool_max_size=1, timeout=0.1)
    async with redis._slots:  # the only connection stays in use throughout
        started = time.monotonic()
        with pytest.raises(Busy, match="no free connection"):
            await redis.get_raw("waiting")
        assert 0.09 < time.monotonic() - started < 0.3
    assert redis.counts.errors == 1
    assert await redis.get_raw("after") == b"value"  # the waiter left no slot taken


async def test_a_command_cut_short_by_the_wait_is_busy() -> None:
    """A connection freed late leaves the command under half the budget: Busy, not Redis."""
    backend = SlowBackend(delay=0.07)
    redis = level(backend, pool_max_size=1, timeout=0.1)
    holder = asyncio.create_task(redis.get_raw("held"))  # frees the slot at 0.07 s
    await asyncio.sleep(0)
    with pytest.raises(Busy, match="left after waiting"):
        await redis.get_raw("late")  # 0.03 s left, the command needs 0.07 s
    assert await holder == b"value"


async def test_a_command_with_its_fair_share_that_times_out_is_a_timeout() -> None:
    """Redis not answering a command that had the whole budget is Redis failing."""
    redis = level(SlowBackend(delay=1.0), timeout=0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no answer from Redis within"):
        await redis.get_raw("slow")
    assert time.monotonic() - started < 0.3


def test_busy_neither_starts_nor_extends_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    """Busy is not logged and does not postpone the next probe of a level that is down."""
    caplog.set_level(logging.INFO, "ttbt5_otel.cache")
    now = [100.0]
    outage = Outage("c", "l2", retry_interval=5, clock=lambda: now[0])
    outage.failed(Busy("all connections in use"))
    assert outage.available()
    assert caplog.records == []
    outage.failed(ConnectionError("refused"))
    assert not outage.available()
    now[0] = 104.0
    outage.failed(Busy("all connections in use"))  # does not push the probe further out
    now[0] = 105.0
    assert outage.available()
    assert len(caplog.records) == 1


async def test_pool_exhaustion_under_a_burst_keeps_the_level_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Callers that time out waiting fall through, are counted, and log nothing."""
    caplog.set_level(logging.INFO, "ttbt5_otel")
    backend = SlowBackend(delay=0.06, value=None)
    redis = level(backend, pool_max_size=1, timeout=0.1)
    cache = HierarchicalCache("unit-busy", l2=redis, retry_interval=60)
    await asyncio.gather(*(cache.get(f"k{n}") for n in range(4)))
    # The first caller got the connection; the others waited and fell through.
    assert (redis.counts.misses, redis.counts.errors) == (1, 3)
    ((_, outage),) = cache.remote
    assert outage.down_since is None
    assert caplog.records == []
    await cache.get("again")
    assert (redis.counts.misses, redis.counts.errors) == (2, 3)  # not skipped: still up


async def test_a_caller_whose_read_failed_does_not_write_back() -> None:
    """The load after a failed read skips that level: the caller waits for it only once."""

    class BusyOnce(FakeRemote):
        async def _get(self, key: str) -> bytes | None:
            if self.calls == 0:
                self.calls += 1
                raise Busy("every connection in use")  # the level stays up
            return await super()._get(key)

    remote = BusyOnce()
    cache = HierarchicalCache(unique("skip-write"), l2=remote, retry_interval=60)
    loads = 0

    async def value() -> int:
        nonlocal loads
        loads += 1
        return loads

    fn = cached(cache)(value)
    assert await fn() == 1
    assert remote.calls == 1  # the failed read, and no write
    assert await fn() == 2  # a miss this time: the load is written
    assert remote.calls == 3
    assert await fn() == 2  # from the remote level


def test_an_answer_sent_before_the_outage_began_does_not_end_it(caplog):
    caplog.set_level(logging.INFO, logger="ttbt5_otel.cache")
    now = [10.0]
    outage = Outage("orders", "l2", retry_interval=0.3, clock=lambda: now[0])
    in_flight = outage.now()  # an operation started while the level was still up
    now[0] = 11.0
    outage.failed(ConnectionError("Connection closed by server."))
    outage.succeeded(in_flight)  # its answer arrives after the failure
    assert outage.down_since == 11.0
    now[0] = 12.0
    outage.succeeded(outage.now())  # a call made after the failure: the level is back
    assert outage.down_since is None
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "cache 'orders': level l2 unavailable",
        "cache 'orders': level l2 recovered after 1s",
    ]
