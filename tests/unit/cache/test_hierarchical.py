"""``HierarchicalCache``: read-through, back-fill, write-through, TTL jitter, tags, outages."""

from __future__ import annotations

import logging

import pytest

from tests.unit.cache.support import EVICTIONS, REQUESTS, Clock, FakeRemote, unique
from ttbt5_otel._cache import CacheConfigError, CacheLevel, HierarchicalCache, MemoryCache


def requests(capture, name: str, level: str, result: str) -> float:
    return capture.counter_value(
        REQUESTS, {"cache.name": name, "cache.level": level, "cache.result": result}
    )


def make(name: str, clock: Clock, **options) -> tuple[HierarchicalCache, FakeRemote]:
    remote = FakeRemote()
    cache = HierarchicalCache(
        name, l1=MemoryCache(2, timer=clock), l2=remote, clock=clock, ttl_jitter=0, **options
    )
    return cache, remote


async def test_read_through_and_back_fill(capture_telemetry):
    """An L1 miss is answered by L2 and copied into L1; the next read is an L1 hit."""
    name, clock = unique(), Clock()
    cache, _ = make(name, clock)
    await cache.set("a", {"v": 1}, ttl=60)
    cache.l1.clear()
    assert await cache.get("a") == {"v": 1}
    assert await cache.get("a") == {"v": 1}
    assert requests(capture_telemetry, name, "l1", "miss") == 1
    assert requests(capture_telemetry, name, "l1", "hit") == 1
    assert requests(capture_telemetry, name, "l2", "hit") == 1
    assert requests(capture_telemetry, name, "l2", "miss") == 0
    assert (
        capture_telemetry.histogram_count(
            "ttbt5.cache.operation.duration",
            {"cache.name": name, "cache.level": "l2", "cache.operation": "get"},
        )
        == 1
    )
    assert cache.levels == (CacheLevel.L1, CacheLevel.L2)


async def test_l2_hit_after_l1_eviction(capture_telemetry):
    """Entries pushed out of a small L1 are still served from L2."""
    name, clock = unique(), Clock()
    cache, _ = make(name, clock)
    for key in "abc":
        await cache.set(key, key)
    assert (
        capture_telemetry.counter_value(
            EVICTIONS, {"cache.name": name, "cache.level": "l1", "cache.eviction.reason": "size"}
        )
        == 1
    )
    assert await cache.get("a") == "a"
    assert requests(capture_telemetry, name, "l2", "hit") == 1


async def test_disk_level_back_fills_l2_and_l1():
    """A hit on the third level is copied into both levels above it, with the remaining TTL."""
    clock = Clock()
    l2, disk = FakeRemote(), FakeRemote(level=CacheLevel.DISK)
    cache = HierarchicalCache(
        unique(), l1=MemoryCache(10, timer=clock), l2=l2, disk=disk, clock=clock, ttl_jitter=0
    )
    await cache.set("k", [1, 2], ttl=100)
    cache.l1.clear()
    l2.data.clear()
    clock.advance(40)
    assert await cache.get("k") == [1, 2]
    assert l2.ttls["k"] == pytest.approx(60)
    assert "k" in cache.l1


async def test_none_is_a_value():
    """A stored None is returned as None, not as the default."""
    cache, _ = make(unique(), Clock())
    await cache.set("nothing", None)
    assert await cache.get("nothing", "default") is None
    cache.l1.clear()
    assert await cache.get("nothing", "default") is None
    assert await cache.get("other", "default") == "default"


async def test_ttl_expires_in_every_level():
    """After the TTL neither level serves the entry."""
    clock = Clock()
    cache, remote = make(unique(), clock)
    await cache.set("a", 1, ttl=10)
    assert remote.ttls["a"] == 10
    clock.advance(10)
    assert await cache.get("a") is None
    cache.l1.clear()
    assert await cache.get("a") is None


async def test_ttl_jitter_shortens_ttls():
    """Each TTL is shortened by rng() * ttl_jitter."""
    clock = Clock()
    remote = FakeRemote()
    cache = HierarchicalCache(
        unique(), l2=remote, clock=clock, ttl=100, ttl_jitter=0.2, rng=lambda: 0.5
    )
    await cache.set("a", 1)
    assert remote.ttls["a"] == pytest.approx(90)


async def test_delete_and_clear_act_on_every_level():
    """delete and clear leave nothing behind in any level."""
    cache, remote = make(unique(), Clock())
    await cache.set("a", 1)
    await cache.set("b", 2)
    assert await cache.delete("a") is True
    assert await cache.delete("a") is False
    assert "a" not in remote.data
    await cache.clear()
    assert remote.data == {}
    assert len(cache.l1) == 0


async def test_warm_stores_pairs():
    """warm accepts a mapping or pairs."""
    cache, _ = make(unique(), Clock())
    assert await cache.warm({"a": 1, "b": 2}) == 2
    assert await cache.warm([("c", 3)], tags=["t"]) == 1
    assert [await cache.get(k) for k in "abc"] == [1, 2, 3]


async def test_tag_invalidation_across_levels(capture_telemetry):
    """invalidate_tags makes tagged entries misses in L1 and L2; others stay."""
    name, clock = unique(), Clock()
    cache, remote = make(name, clock)
    await cache.set("u1", "alice", tags=["user:1"])
    await cache.set("u2", "bob", tags=["user:2"])
    await cache.invalidate_tags("user:1")
    assert remote.versions == {"user:1": 1}
    assert await cache.get("u1") is None
    assert await cache.get("u2") == "bob"
    assert "u1" not in remote.data  # the stale L2 copy was removed on the way
    assert (
        capture_telemetry.counter_value(
            EVICTIONS,
            {"cache.name": name, "cache.level": "l1", "cache.eviction.reason": "invalidated"},
        )
        == 1
    )


async def test_tag_invalidation_by_another_process_sharing_the_store():
    """Two caches sharing one store: B's invalidation hides A's L1 entry."""
    shared = FakeRemote()
    clock = Clock()
    a = HierarchicalCache(unique(), l1=MemoryCache(10), l2=shared, clock=clock)
    b = HierarchicalCache(unique(), l1=MemoryCache(10), l2=shared, clock=clock)
    await a.set("profile", "v1", tags=["user:1"])
    assert await a.get("profile") == "v1"
    await b.invalidate_tags("user:1")
    assert await a.get("profile") is None


async def test_a_single_string_is_one_tag():
    """tags="user:1" means one tag, not six one-letter tags."""
    cache, _ = make(unique(), Clock())
    await cache.set("a", 1, tags="user:1")  # type: ignore[arg-type]
    [entry] = [cache.l1.lookup("a")[0]]
    assert list(entry.tags) == ["user:1"]


async def test_tag_versions_can_be_reused_briefly():
    """With tag_version_ttl, versions read a moment ago are reused (bounded staleness)."""
    shared = FakeRemote()
    a = HierarchicalCache(unique(), l1=MemoryCache(10), l2=shared, tag_version_ttl=60)
    await a.set("k", 1, tags=["t"])
    calls = shared.calls
    assert await a.get("k") == 1
    assert await a.get("k") == 1
    assert shared.calls == calls


async def test_memory_only_tags_live_in_process():
    """Without shared levels, tag versions are in-process epochs."""
    cache = HierarchicalCache(unique(), l1=MemoryCache(10))
    await cache.set("a", 1, tags=["t"])
    await cache.set("b", 2, tags=["u"])
    await cache.invalidate_tags("t")
    assert await cache.get("a") is None
    assert await cache.get("b") == 2


async def test_outage_serves_l1_counts_errors_logs_once_and_recovers(capture_telemetry, caplog):
    """Remote down: L1 still serves, each failed read is an error, one warning, then recovery."""
    name, clock = unique(), Clock()
    cache, remote = make(name, clock, retry_interval=0)
    await cache.set("a", 1)
    remote.down = True
    caplog.set_level(logging.INFO, "ttbt5_otel.cache")
    assert await cache.get("a") == 1  # L1 hit: no remote call needed
    for _ in range(3):
        assert await cache.get("missing", "d") == "d"
    await cache.set("b", 2)
    assert await cache.get("b") == 2
    assert requests(capture_telemetry, name, "l2", "error") == 4  # 3 reads + 1 write
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()
    remote.down = False
    assert await cache.get("missing", "d") == "d"
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("recovered" in m for m in infos)
    remote.down = True
    await cache.get("missing")
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


async def test_outage_skips_the_level_until_the_retry_interval(capture_telemetry):
    """While down, the level is not called again before retry_interval; skipped reads count."""
    name, clock = unique(), Clock()
    cache, remote = make(name, clock, retry_interval=3600)
    remote.down = True
    await cache.get("a")
    calls = remote.calls
    for _ in range(5):
        await cache.get("a")
    assert remote.calls == calls
    assert requests(capture_telemetry, name, "l2", "error") == 6


async def test_invalidation_during_outage_applies_locally_and_is_replayed():
    """An invalidation the store missed still hides local entries and reaches it later."""
    cache, remote = make(unique(), Clock(), retry_interval=0)
    await cache.set("a", 1, tags=["t"])
    remote.down = True
    await cache.invalidate_tags("t")
    assert await cache.get("a") is None
    assert cache.tags.pending == {"t": 1}
    remote.down = False
    await cache.get("other")
    assert remote.versions == {"t": 1}
    assert cache.tags.pending == {}


async def test_entry_written_while_versions_unreadable_is_dropped_after_recovery():
    """Tags recorded as unverified make the entry a miss once versions can be read."""
    cache, remote = make(unique(), Clock(), retry_interval=0)
    remote.down = True
    await cache.set("a", 1, tags=["t"])
    assert await cache.get("a") == 1  # still down: served from L1
    remote.down = False
    assert await cache.get("a") is None


async def test_strict_raises_level_failures():
    """strict=True lets the level's exception reach the caller."""
    cache, remote = make(unique(), Clock(), strict=True, retry_interval=0)
    remote.down = True
    with pytest.raises(ConnectionError):
        await cache.get("a")
    with pytest.raises(ConnectionError):
        await cache.set("a", 1)


async def test_undecodable_entry_is_an_error_and_a_miss(capture_telemetry):
    """Garbage in the shared level is counted as an error and treated as a miss."""
    name = unique()
    cache, remote = make(name, Clock())
    remote.data["a"] = b"\xff not json"
    assert await cache.get("a", "d") == "d"
    assert requests(capture_telemetry, name, "l2", "error") == 1


def test_from_levels_shorthands(tmp_path):
    """from_levels builds levels from an entry count and a directory, named after the cache."""
    name = unique()
    cache = HierarchicalCache.from_levels(name=name, l1=100, disk=str(tmp_path / "d"))
    assert cache.levels == (CacheLevel.L1, CacheLevel.DISK)
    assert cache.l1 is not None
    assert cache.l1.name == name
    assert cache.remote[0][0].name == name


def test_needs_a_level():
    """A cache without levels is a configuration error."""
    with pytest.raises(CacheConfigError, match="level"):
        HierarchicalCache("x")
    with pytest.raises(CacheConfigError, match="ttl_jitter"):
        HierarchicalCache("x", l1=MemoryCache(), ttl_jitter=1.5)
