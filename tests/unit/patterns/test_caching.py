"""The guide's caching names: thin adapters whose metrics are the native cache's own."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from tests.unit.cache.support import EVICTIONS, REQUESTS, unique
from ttbt5_otel._cache import CacheConfigError, DiskCache, MemoryCache, RedisCache, cached
from ttbt5_otel._cache import CacheLevel as NativeLevel
from ttbt5_otel._cache import HierarchicalCache as NativeHierarchicalCache
from ttbt5_otel._cache.redis_level import url_options
from ttbt5_otel.patterns import _cache_registry
from ttbt5_otel.patterns import caching as guide


@pytest.fixture(autouse=True)
def no_default_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no cache built and no default set."""
    monkeypatch.setattr(_cache_registry, "_latest", {})
    monkeypatch.setattr(_cache_registry, "_explicit", None)


def profile(capture, name: str) -> dict[tuple[str, str, str], float]:
    """Every non-zero request and eviction count of cache ``name``, by level and outcome."""
    found: dict[tuple[str, str, str], float] = {}
    for metric, outcome in ((REQUESTS, "cache.result"), (EVICTIONS, "cache.eviction.reason")):
        for point in capture.points(metric, {"cache.name": name}):
            key = (metric, point.attributes["cache.level"], point.attributes[outcome])
            found[key] = found.get(key, 0) + (point.value or 0)
    return {key: value for key, value in found.items() if value}


async def test_manager_counts_like_the_native_cache(capture_telemetry):
    """A CacheManager over a memory backend reports what a native one-level cache reports."""
    ours, theirs = unique("guide"), unique("native")
    manager = guide.CacheManager(guide.MemoryCacheBackend(max_size=2), name=ours)
    native = NativeHierarchicalCache(theirs, l1=MemoryCache(2), ttl_jitter=0)
    for cache in (manager, native):
        for key in ("a", "b", "c"):  # the third pushes "a" out: an eviction for size
            await cache.set(key, {"key": key}, ttl=3600)
        assert await cache.get("a") is None
        assert await cache.get("c") == {"key": "c"}
        assert await cache.delete("b") is True
    expected = {
        (REQUESTS, "l1", "hit"): 1,
        (REQUESTS, "l1", "miss"): 1,
        (EVICTIONS, "l1", "size"): 1,
        (EVICTIONS, "l1", "invalidated"): 1,
    }
    assert profile(capture_telemetry, ours) == profile(capture_telemetry, theirs) == expected
    stats = manager.get_stats()
    assert (stats.name, stats.level, stats.hits, stats.misses) == (ours, "l1", 1, 1)
    assert stats.evictions == {"size": 1, "expired": 0, "invalidated": 1}
    assert stats.entries == 1
    assert stats.hit_rate == 0.5


@pytest.mark.parametrize("strategy", list(guide.EvictionStrategy))
async def test_eviction_strategies_are_the_native_ones(capture_telemetry, strategy):
    """LRU, LFU and TTL backends evict and count exactly as the native MemoryCache does."""
    ours, theirs = unique("guide"), unique("native")
    ttl = 60 if strategy is guide.EvictionStrategy.TTL else None
    manager = guide.CacheManager(guide.MemoryCacheBackend(2, strategy, ttl), name=ours)
    native = NativeHierarchicalCache(
        theirs, l1=MemoryCache(2, strategy=strategy, ttl=ttl), ttl_jitter=0
    )
    for cache in (manager, native):
        await cache.set("a", 1)
        await cache.set("b", 2)
        await cache.get("a")
        await cache.get("a")
        await cache.set("c", 3)
        assert sorted([await cache.get(k, "-") for k in "abc"], key=str) != [1, 2, 3]
    assert profile(capture_telemetry, ours) == profile(capture_telemetry, theirs)
    assert profile(capture_telemetry, ours)[(EVICTIONS, "l1", "size")] == 1


def test_backend_options_map_to_native_ones(tmp_path: Path):
    """Each backend is the native level, with the guide's argument names."""
    memory = guide.MemoryCacheBackend(max_size=10, max_memory_mb=1)
    assert isinstance(memory, MemoryCache)
    assert memory.strategy is guide.EvictionStrategy.LRU
    with pytest.raises(CacheConfigError, match="ttl strategy needs a ttl"):
        guide.MemoryCacheBackend(strategy="ttl")
    with pytest.raises(CacheConfigError, match="max_memory_mb"):
        guide.MemoryCacheBackend(max_memory_mb=0)
    memory.set("big", "x" * 2_000_000)  # larger than 1 MB on its own: not cached
    assert "big" not in memory
    disk = guide.DiskCacheBackend(cache_dir=tmp_path / "cache")
    assert isinstance(disk, DiskCache)
    assert disk.level is NativeLevel.DISK
    assert (tmp_path / "cache").is_dir()


def test_redis_backend_takes_a_url():
    """The distributed backend is a native RedisCache configured from a URL (no connection)."""
    redis = guide.RedisCacheBackend(url="redis://:s%40cret@10.0.0.5:6380/2", namespace="app")
    assert isinstance(redis, RedisCache)
    assert (redis.backend.endpoint, redis.backend.port, redis.backend.db) == ("10.0.0.5", 6380, 2)
    assert redis.backend.password == "s@cret"
    assert redis.namespace == "app"
    assert url_options("redis://cache") == {
        "endpoint": "cache",
        "port": 6379,
        "db": 0,
        "password": None,
    }
    assert isinstance(guide.RedisCacheBackend.from_url("redis://h:1/3"), guide.RedisCacheBackend)
    assert RedisCache.from_url("redis://h:1/3").backend.db == 3
    with pytest.raises(CacheConfigError, match="expected redis://"):
        guide.RedisCacheBackend("http://h")


def _guide_levels(tmp_path: Path, name: str) -> guide.HierarchicalCache:
    memory_cache = guide.CacheManager(guide.MemoryCacheBackend(max_size=1000))
    disk_cache = guide.CacheManager(guide.DiskCacheBackend(cache_dir=tmp_path / "cache"))
    hierarchical = guide.HierarchicalCache(name)
    hierarchical.add_level(guide.CacheLevel.L1_MEMORY, memory_cache)
    hierarchical.add_level(guide.CacheLevel.L2_DISK, disk_cache)
    return hierarchical


async def test_cached_without_a_cache_matches_native_cached(capture_telemetry, tmp_path: Path):
    """The guide's ``@cached`` on its memory+disk cache counts per level like native ``cached``."""
    ours, theirs = unique("guide"), unique("native")
    loads: list[str] = []

    @guide.cached(ttl=300, tags={"ai_response"})
    async def guide_op(prompt: str) -> str:  # decorated before any cache exists
        loads.append(prompt)
        return prompt.upper()

    hierarchical = _guide_levels(tmp_path / "g", ours)
    assert hierarchical.levels == (guide.CacheLevel.L1_MEMORY, guide.CacheLevel.L2_DISK)
    native = NativeHierarchicalCache(
        theirs, l1=MemoryCache(1000), disk=DiskCache(tmp_path / "n" / "cache")
    )

    @cached(native, ttl=300, tags=["ai_response"])
    async def native_op(prompt: str) -> str:
        loads.append(prompt)
        return prompt.upper()

    for op in (guide_op, native_op):
        assert await op("hi") == "HI"
        assert await op("hi") == "HI"
    assert loads == ["hi", "hi"]
    expected = {
        (REQUESTS, "l1", "miss"): 1,
        (REQUESTS, "disk", "miss"): 1,
        (REQUESTS, "l1", "hit"): 1,
    }
    assert profile(capture_telemetry, ours) == profile(capture_telemetry, theirs) == expected
    stats = hierarchical.get_stats()
    assert [s.level for s in stats.values()] == ["l1", "disk"]
    assert stats[guide.CacheLevel.L1_MEMORY].hits == 1
    assert guide_op.cache_key("hi") == native_op.cache_key("hi").replace("native_op", "guide_op")
    await hierarchical.close()
    await native.close()


async def test_tag_invalidation_reaches_every_level(capture_telemetry, tmp_path: Path):
    """``invalidate_by_tags`` makes tagged entries misses in memory and on disk, as natively."""
    ours, theirs = unique("guide"), unique("native")
    hierarchical = _guide_levels(tmp_path / "g", ours)
    native = NativeHierarchicalCache(
        theirs, l1=MemoryCache(1000), disk=DiskCache(tmp_path / "n" / "cache")
    )
    await hierarchical.set("answer", "42", ttl=300, tags={"ai_response"})
    await hierarchical.set("user:1", {"id": 1}, ttl=300)
    await native.set("answer", "42", ttl=300, tags=["ai_response"])
    await native.set("user:1", {"id": 1}, ttl=300)
    await hierarchical.invalidate_by_tags({"ai_response"})
    await native.invalidate_tags("ai_response")
    for cache in (hierarchical, native):
        assert await cache.get("answer") is None
        assert await cache.get("user:1") == {"id": 1}
    expected = {
        (REQUESTS, "l1", "miss"): 1,
        (REQUESTS, "disk", "miss"): 1,
        (REQUESTS, "l1", "hit"): 1,
        (EVICTIONS, "l1", "invalidated"): 1,
        (EVICTIONS, "disk", "invalidated"): 1,
    }
    assert profile(capture_telemetry, ours) == profile(capture_telemetry, theirs) == expected
    await hierarchical.close()
    await native.close()


async def test_invalidation_by_another_manager_sharing_the_disk(capture_telemetry, tmp_path):
    """Tag versions live in the shared level: a manager on the same directory invalidates too."""
    name = unique("guide")
    hierarchical = _guide_levels(tmp_path, name)
    loads: list[str] = []

    @guide.cached(ttl=300, tags={"ai_response"})
    async def op(prompt: str) -> str:
        loads.append(prompt)
        return prompt

    cache_manager = guide.CacheManager(guide.DiskCacheBackend(cache_dir=tmp_path / "cache"))
    await op("p")
    await op("p")
    await cache_manager.invalidate_by_tags("ai_response")
    await op("p")
    assert loads == ["p", "p"]
    found = profile(capture_telemetry, name)
    assert found[(REQUESTS, "l1", "hit")] == 1
    assert found[(REQUESTS, "l1", "miss")] == 2
    assert found[(EVICTIONS, "l1", "invalidated")] == 1
    await hierarchical.close()
    await cache_manager.close()


async def test_which_cache_cached_uses():
    """Explicit default, else latest HierarchicalCache, else latest CacheManager, else an error."""

    @guide.cached()
    async def nothing_built() -> int:
        return 1

    with pytest.raises(CacheConfigError, match="no cache to use"):
        await nothing_built()

    @guide.cached(ttl=10)
    def by_manager() -> int:
        return 1

    @guide.cached(ttl=10)
    def by_hierarchy() -> int:
        return 2

    @guide.cached(ttl=10)
    def by_default() -> int:
        return 3

    manager = guide.CacheManager(guide.MemoryCacheBackend(10), name=unique())
    assert by_manager() == 1
    hierarchical = guide.HierarchicalCache(unique())
    hierarchical.add_level(guide.CacheLevel.L1_MEMORY, guide.MemoryCacheBackend(10))
    guide.CacheManager(guide.MemoryCacheBackend(10))  # a later manager: the hierarchy still wins
    assert by_hierarchy() == 2
    chosen = guide.CacheManager(guide.MemoryCacheBackend(10), name=unique())
    guide.set_default_cache(chosen)
    assert by_default() == 3
    assert await manager.get(by_manager.cache_key()) == 1
    assert await hierarchical.get(by_hierarchy.cache_key()) == 2
    assert await chosen.get(by_default.cache_key()) == 3
    guide.set_default_cache(None)
    del hierarchical
    gc.collect()  # a dropped cache is no longer a candidate
    assert _cache_registry.default_cache() is not None
    assert isinstance(_cache_registry.default_cache(), guide.CacheManager)


async def test_explicit_cache_and_function_kinds(tmp_path: Path):
    """``cache=`` names the cache; sync needs memory only; generators are refused at once."""
    disk = guide.CacheManager(guide.DiskCacheBackend(cache_dir=tmp_path), name=unique())
    memory = guide.CacheManager(guide.MemoryCacheBackend(), name=unique())
    calls: list[int] = []

    @guide.cached(cache=memory, tags="t")
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @guide.cached(cache=disk)
    def on_disk(x: int) -> int:
        return x

    assert square(3) == square(3) == 9
    assert calls == [3]
    await memory.invalidate_by_tags("t")
    assert square(3) == 9
    assert calls == [3, 3]
    assert square.invalidate(3) is True
    with pytest.raises(CacheConfigError, match="sync function can only use a memory-only"):
        on_disk(1)
    with pytest.raises(CacheConfigError, match="generator functions"):

        @guide.cached()
        def numbers():  # pragma: no cover - never called
            yield 1

    await disk.close()


def test_levels_are_checked(tmp_path: Path):
    """A slot takes its kind of backend, once; levels are fixed once the cache is used."""
    memory = guide.MemoryCacheBackend()
    disk = guide.DiskCacheBackend(cache_dir=tmp_path)
    redis = guide.RedisCacheBackend()
    cache = guide.HierarchicalCache(unique())
    with pytest.raises(CacheConfigError, match="no levels"):
        _ = cache.native
    with pytest.raises(CacheConfigError, match=r"L1_MEMORY\): takes a l1 level, got Disk"):
        cache.add_level(guide.CacheLevel.L1_MEMORY, disk)
    cache.add_level(guide.CacheLevel.L2_REDIS, redis)
    with pytest.raises(CacheConfigError, match="already has L2_REDIS"):
        cache.add_level(guide.CacheLevel.L2_DISK, disk)
    cache.add_level(guide.CacheLevel.L3_DISK, disk)
    cache.add_level(guide.CacheLevel.L1_MEMORY, guide.CacheManager(memory))
    assert cache.levels == (
        guide.CacheLevel.L1_MEMORY,
        guide.CacheLevel.L2_REDIS,
        guide.CacheLevel.L3_DISK,
    )
    assert cache.native.levels == (NativeLevel.L1, NativeLevel.L2, NativeLevel.DISK)
    with pytest.raises(CacheConfigError, match="is in use"):
        cache.add_level(guide.CacheLevel.L2_DISK, disk)
    with pytest.raises(CacheConfigError, match="expected MemoryCacheBackend"):
        guide.CacheManager({})  # type: ignore[arg-type]
    assert [s.native.value for s in guide.CacheLevel] == ["l1", "l2", "disk", "disk"]


async def test_warm_clear_and_default_ttl():
    """Warming, clearing and a manager's default TTL delegate to the native cache."""
    manager = guide.CacheManager(guide.MemoryCacheBackend(), name=unique(), default_ttl=60)
    assert manager.native.ttl == 60
    assert await manager.warm({"a": 1, "b": 2}, tags={"w"}) == 2
    assert await manager.get("a") == 1
    await manager.clear()
    assert await manager.get("b", "gone") == "gone"
