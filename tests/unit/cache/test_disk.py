"""``DiskCache``: JSON bytes on disk (no pickle), size bound, TTL, tags, off the event loop."""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import threading

import diskcache
import pytest

from tests.unit.cache.support import REQUESTS, unique
from ttbt5_otel._cache import CacheError, CacheLevel, DiskCache, HierarchicalCache, MemoryCache
from ttbt5_otel._exceptions import CacheConfigError


@pytest.fixture
def disk(tmp_path):
    level = DiskCache(tmp_path / "cache", size_limit=1_000_000)
    yield level
    level.store.close()


async def test_values_are_stored_as_json_bytes(disk):
    """What lands in the database is the JSON text of the envelope, not a pickle."""
    cache = HierarchicalCache(unique(), disk=disk)
    await cache.set("k", {"a": [1, None]})
    raw = disk.store.get("e:k")
    assert isinstance(raw, bytes)
    assert raw.startswith(b'{"v":{"a":[1,null]}')
    assert await cache.get("k") == {"a": [1, None]}


async def test_pickled_rows_are_refused(disk, capture_telemetry):
    """A row planted as a pickle is never unpickled: it reads as an error, not code."""
    name = unique()
    cache = HierarchicalCache(name, disk=disk)
    await cache.set("k", 1)
    with sqlite3.connect(disk.store.directory + "/cache.db") as db:
        db.execute(
            "UPDATE Cache SET value = ?, mode = ? WHERE key = ?",
            (pickle.dumps({"v": 2}), diskcache.core.MODE_PICKLE, "e:k"),
        )
    assert await cache.get("k", "fallback") == "fallback"
    error = {"cache.name": name, "cache.level": "disk", "cache.result": "error"}
    assert capture_telemetry.counter_value(REQUESTS, error) == 1
    with pytest.raises(CacheError, match="bytes only"):
        disk.store.set("other", object())


async def test_reads_and_writes_run_off_the_event_loop(disk, monkeypatch):
    """diskcache calls happen in worker threads."""
    threads: list[str] = []
    real_get = disk.store.get

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_get(*args, **kwargs)

    monkeypatch.setattr(disk.store, "get", spy)
    cache = HierarchicalCache(unique(), disk=disk)
    await cache.get("k")
    assert threads
    assert threading.main_thread().name not in threads


async def test_ttl_tags_and_back_fill(disk, capture_telemetry):
    """Disk entries expire, honour tag versions kept on disk, and back-fill L1."""
    name = unique()
    cache = HierarchicalCache(name, l1=MemoryCache(10), disk=disk, ttl_jitter=0)
    await cache.set("k", "v", ttl=60, tags=["t"])
    cache.l1.clear()
    assert await cache.get("k") == "v"
    assert "k" in cache.l1
    await cache.invalidate_tags("t")
    assert disk.store.get("t:t") == 1
    assert await cache.get("k") is None
    hits = {"cache.name": name, "cache.level": "disk", "cache.result": "hit"}
    assert capture_telemetry.counter_value(REQUESTS, hits) == 1
    duration = capture_telemetry.histogram_count(
        "ttbt5.cache.operation.duration", {"cache.name": name, "cache.level": "disk"}
    )
    assert duration >= 4


async def test_tag_versions_on_disk_are_shared_by_two_caches(tmp_path):
    """Two caches on one directory (two processes on one host) see each other's invalidations."""
    first = DiskCache(tmp_path / "shared")
    second = DiskCache(tmp_path / "shared")
    a = HierarchicalCache(unique(), l1=MemoryCache(10), disk=first)
    b = HierarchicalCache(unique(), l1=MemoryCache(10), disk=second)
    try:
        await a.set("k", 1, tags=["t"])
        assert await b.get("k") == 1
        await b.invalidate_tags("t")
        assert await a.get("k") is None
    finally:
        await a.close()
        await b.close()


async def test_size_limit_bounds_the_directory(tmp_path):
    """diskcache culls entries beyond size_limit."""
    level = DiskCache(tmp_path / "small", size_limit=200_000)
    cache = HierarchicalCache(unique(), disk=level)
    try:
        for index in range(60):
            await cache.set(str(index), "x" * 10_000)
        assert level.store.volume() < 400_000
        assert level.entry_count() < 60
    finally:
        await cache.close()


async def test_clear_keeps_tag_versions(disk):
    """clear drops entries but not tag versions."""
    cache = HierarchicalCache(unique(), disk=disk)
    await cache.set("k", 1, tags=["t"])
    await cache.invalidate_tags("t")
    await cache.clear()
    assert disk.store.get("e:k") is None
    assert disk.store.get("t:t") == 1
    assert cache.levels == (CacheLevel.DISK,)
    await asyncio.sleep(0)


def test_a_damaged_cache_directory_is_named(tmp_path):
    (tmp_path / "cache.db").write_bytes(b"not a database, just garbage" * 100)
    with pytest.raises(CacheConfigError, match=r"disk cache 'orders' at .* cannot be opened"):
        DiskCache(tmp_path, name="orders")
