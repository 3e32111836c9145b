"""``MemoryCache``: strategies, eviction reasons, TTL with an injected clock, and its metrics."""

from __future__ import annotations

import gc
import threading

import pytest

from tests.unit.cache.support import ENTRIES, EVICTIONS, REQUESTS, Clock, unique
from ttbt5_otel._cache import CacheConfigError, MemoryCache


def evictions(capture, name: str, reason: str) -> float:
    return capture.counter_value(
        EVICTIONS, {"cache.name": name, "cache.level": "l1", "cache.eviction.reason": reason}
    )


def requests(capture, name: str, result: str) -> float:
    return capture.counter_value(
        REQUESTS, {"cache.name": name, "cache.level": "l1", "cache.result": result}
    )


def test_hits_and_misses_are_counted_and_reported(capture_telemetry):
    """Each get is one request; a stored None is a hit."""
    name = unique()
    cache = MemoryCache(10, name=name)
    cache.set("a", 1)
    cache.set("n", None)
    assert cache.get("a") == 1
    assert cache.get("n", "default") is None
    assert cache.get("zz", "default") == "default"
    assert requests(capture_telemetry, name, "hit") == 2
    assert requests(capture_telemetry, name, "miss") == 1
    assert requests(capture_telemetry, name, "error") == 0
    # Counting continues across collections as deltas.
    cache.get("a")
    assert requests(capture_telemetry, name, "hit") == 3


def test_lru_evicts_least_recently_used_with_reason_size(capture_telemetry):
    """A full LRU cache drops the entry read longest ago."""
    name = unique()
    cache = MemoryCache(2, name=name)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.get("a")
    cache.set("c", 3)
    assert "b" not in cache
    assert "a" in cache
    assert "c" in cache
    assert evictions(capture_telemetry, name, "size") == 1
    assert evictions(capture_telemetry, name, "expired") == 0


def test_lfu_evicts_least_frequently_used(capture_telemetry):
    """LFU keeps the entries read most often."""
    name = unique()
    cache = MemoryCache(3, strategy="lfu", name=name)
    for key in "abc":
        cache.set(key, key)
    for _ in range(3):
        cache.get("a")
    cache.get("c")
    cache.get("c")
    cache.get("b")
    cache.set("d", "d")  # b was read least often
    assert sorted(k for k in "abcd" if k in cache) == ["a", "c", "d"]
    cache.set("e", "e")  # d has never been read
    assert sorted(k for k in "abcde" if k in cache) == ["a", "c", "e"]
    assert evictions(capture_telemetry, name, "size") == 2


def test_ttl_strategy_expires_entries_with_injected_clock(capture_telemetry):
    """Entries of the ttl strategy vanish after ttl seconds of the injected clock."""
    name = unique()
    clock = Clock()
    cache = MemoryCache(10, strategy="ttl", ttl=5, timer=clock, name=name)
    cache.set("a", 1)
    cache.set("b", 2)
    clock.advance(4.9)
    assert cache.get("a") == 1
    clock.advance(0.2)
    assert cache.get("a") is None
    assert len(cache) == 0
    assert evictions(capture_telemetry, name, "expired") == 2
    assert evictions(capture_telemetry, name, "size") == 0
    assert requests(capture_telemetry, name, "miss") == 1


def test_ttl_strategy_evicts_by_size_when_full(capture_telemetry):
    """A full ttl cache drops the least recently used unexpired entry (reason size)."""
    name = unique()
    clock = Clock()
    cache = MemoryCache(2, strategy="ttl", ttl=60, timer=clock, name=name)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)
    assert "a" not in cache
    assert evictions(capture_telemetry, name, "size") == 1


def test_per_entry_ttl_on_lru(capture_telemetry):
    """set(ttl=) expires one entry; the others live on."""
    name = unique()
    clock = Clock()
    cache = MemoryCache(10, timer=clock, name=name)
    cache.set("short", 1, ttl=1)
    cache.set("long", 2)
    clock.advance(1)
    assert cache.get("short", "gone") == "gone"
    assert cache.get("long") == 2
    assert evictions(capture_telemetry, name, "expired") == 1
    assert len(cache) == 1


def test_per_entry_ttl_shorter_than_cache_ttl():
    """On the ttl strategy a per-entry ttl may shorten the cache's."""
    clock = Clock()
    cache = MemoryCache(10, strategy="ttl", ttl=10, timer=clock, name=unique())
    cache.set("a", 1, ttl=2)
    clock.advance(2)
    assert "a" not in cache


def test_delete_and_clear_count_invalidations(capture_telemetry):
    """delete and clear are evictions with reason invalidated; deleting nothing is not."""
    name = unique()
    cache = MemoryCache(10, name=name)
    for key in "abc":
        cache.set(key, key)
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    cache.clear()
    assert len(cache) == 0
    assert evictions(capture_telemetry, name, "invalidated") == 3


def test_max_bytes_bounds_approximate_size(capture_telemetry):
    """With max_bytes, large values push older ones out."""
    name = unique()
    cache = MemoryCache(100, max_bytes=3_000, name=name)
    for index in range(5):
        cache.set(str(index), "x" * 1_000)
    assert len(cache) < 5
    assert evictions(capture_telemetry, name, "size") == 5 - len(cache)


def test_value_larger_than_max_bytes_is_not_cached():
    """A value too large by itself is skipped, and replaces no older value."""
    cache = MemoryCache(10, max_bytes=1_000, name=unique())
    cache.set("k", "small")
    cache.set("k", "x" * 5_000)
    assert "k" not in cache


def test_max_bytes_still_bounds_entries():
    """max_bytes does not lift the entry bound."""
    cache = MemoryCache(2, max_bytes=1_000_000, name=unique())
    for index in range(5):
        cache.set(str(index), index)
    assert len(cache) == 2


def test_entries_are_observed(capture_telemetry):
    """ttbt5.cache.entries reports the current size."""
    name = unique()
    cache = MemoryCache(10, name=name)
    cache.set("a", 1)
    cache.set("b", 1)
    assert capture_telemetry.points(ENTRIES, {"cache.name": name})[-1].value == 2


def test_counts_survive_garbage_collection(capture_telemetry):
    """A collected cache's totals are kept: the counter does not go backwards."""
    name = unique()
    cache = MemoryCache(10, name=name)
    cache.set("a", 1)
    cache.get("a")
    del cache
    gc.collect()
    assert requests(capture_telemetry, name, "hit") == 1
    again = MemoryCache(10, name=name)
    again.get("a")
    assert requests(capture_telemetry, name, "hit") == 1
    assert requests(capture_telemetry, name, "miss") == 1


def test_thread_safe_cache_under_threads():
    """With thread_safe=True many threads can share one cache; every get is counted."""
    cache = MemoryCache(50, thread_safe=True, name=unique())

    def work(offset: int) -> None:
        for index in range(500):
            key = str((index + offset) % 80)
            if cache.get(key) is None:
                cache.set(key, index)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50
    assert cache.counts.hits + cache.counts.misses == 2_000


def test_thread_safe_cache_counts_hits_and_misses_apart(capture_telemetry):
    """The locked path reports each hit as a hit and each miss as a miss, not just their sum."""
    name = unique()
    cache = MemoryCache(10, thread_safe=True, name=name)
    cache.set("a", 1)
    assert [cache.get("a"), cache.get("a"), cache.get("b")] == [1, 1, None]
    assert requests(capture_telemetry, name, "hit") == 2
    assert requests(capture_telemetry, name, "miss") == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strategy": "fifo"}, "strategy"),
        ({"maxsize": 0}, "maxsize"),
        ({"ttl": 0}, "ttl"),
        ({"strategy": "ttl"}, "ttl"),
    ],
)
def test_bad_options_name_the_field(options, field):
    """Invalid options raise CacheConfigError naming the option."""
    with pytest.raises(CacheConfigError, match=field):
        MemoryCache(**options)
