"""The guide's cache backends and level slots, as the native cache levels themselves.

Each ``*CacheBackend`` *is* a native level (a subclass that only renames the constructor's
arguments), so a backend counts its hits, misses and evictions exactly as the native level
does, under ``ttbt5.cache.*`` with ``cache.level`` ``l1``, ``l2`` or ``disk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeAlias

from ttbt5_otel._cache.disk_level import DEFAULT_SIZE_LIMIT, DiskCache
from ttbt5_otel._cache.entry import CacheLevel as NativeLevel
from ttbt5_otel._cache.memory import EvictionStrategy, MemoryCache
from ttbt5_otel._cache.redis_level import RedisCache, url_options
from ttbt5_otel._cache.serialization import Serializer
from ttbt5_otel._cache.store import RemoteLevel
from ttbt5_otel._cache.telemetry import REASONS, Counts
from ttbt5_otel._exceptions import CacheConfigError

Backend: TypeAlias = MemoryCache | RemoteLevel
"""A cache level: a guide backend or any native level."""

_MB: Final = 1024 * 1024


class CacheLevel(StrEnum):
    """The guide's level slots of a ``HierarchicalCache`` (not the native ``CacheLevel``).

    The native cache always reads memory, then Redis, then disk, so each slot names the
    kind of backend it takes; a slot number may be used once. ``native`` is the
    ``cache.level`` attribute the level's metrics carry.
    """

    L1_MEMORY = "l1_memory"
    """In-process memory: a ``MemoryCacheBackend`` (``cache.level=l1``)."""
    L2_REDIS = "l2_redis"
    """Redis, shared by processes: a ``RedisCacheBackend`` (``cache.level=l2``)."""
    L2_DISK = "l2_disk"
    """Local disk right below memory: a ``DiskCacheBackend`` (``cache.level=disk``)."""
    L3_DISK = "l3_disk"
    """Local disk below Redis: a ``DiskCacheBackend`` (``cache.level=disk``)."""

    @property
    def native(self) -> NativeLevel:
        """The native level this slot is (``l1``, ``l2`` or ``disk``)."""
        return _NATIVE[self]

    @property
    def tier(self) -> int:
        """The slot's number: 1, 2 or 3."""
        return int(self.value[1])


_NATIVE: Final = {
    CacheLevel.L1_MEMORY: NativeLevel.L1,
    CacheLevel.L2_REDIS: NativeLevel.L2,
    CacheLevel.L2_DISK: NativeLevel.DISK,
    CacheLevel.L3_DISK: NativeLevel.DISK,
}


class MemoryCacheBackend(MemoryCache):
    """The guide's in-memory backend: the native ``MemoryCache`` (``cache.level=l1``).

    Args:
        max_size: most entries held.
        strategy: ``EvictionStrategy.LRU`` (default), ``LFU`` or ``TTL`` (``TTL`` needs
            ``ttl``); evictions are counted in ``ttbt5.cache.evictions``.
        ttl: default time to live of an entry in seconds.
        max_memory_mb: also bound the approximate size of the values (the guide's
            ``caching.max_memory_mb``).
        **options: the native ``MemoryCache`` options (``name``, ``thread_safe``, ...).
    """

    __slots__ = ()

    def __init__(
        self,
        max_size: int = 1000,
        strategy: EvictionStrategy | str = EvictionStrategy.LRU,
        ttl: float | None = None,
        *,
        max_memory_mb: float | None = None,
        **options: Any,
    ) -> None:
        """Create an empty backend; see the class docstring."""
        if max_memory_mb is not None:
            if max_memory_mb <= 0:
                raise CacheConfigError(f"max_memory_mb: must be positive, got {max_memory_mb}")
            options["max_bytes"] = int(max_memory_mb * _MB)
        super().__init__(max_size, strategy=strategy, ttl=ttl, **options)


class DiskCacheBackend(DiskCache):
    """The guide's disk backend: the native ``DiskCache`` (``cache.level=disk``).

    Values are stored as strict JSON (never pickled) unless ``serializer`` says otherwise;
    a value JSON cannot hold raises ``CacheSerializationError`` naming its type.

    Args:
        cache_dir: the directory (created if missing).
        size_limit: bytes on disk before old entries are culled.
        serializer: ``JsonSerializer()`` (default) or ``PickleSerializer()``.
        name: the ``cache.name`` attribute.
    """

    def __init__(
        self,
        cache_dir: str | Path = "./cache",
        *,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        serializer: Serializer | None = None,
        name: str | None = None,
    ) -> None:
        """Open (or create) the cache in ``cache_dir``."""
        super().__init__(cache_dir, size_limit=size_limit, serializer=serializer, name=name)


class RedisCacheBackend(RedisCache):
    """The guide's distributed backend: the native ``RedisCache`` (``cache.level=l2``).

    Args:
        url: ``redis://[:password@]host[:port][/db]``; nothing connects before first use.
        **options: the native ``RedisCache`` options (``namespace``, ``timeout``, ``name``,
            ...). When Redis is down the cache serves from the other levels and counts
            ``cache.result=error`` (unless ``strict``).
    """

    def __init__(self, url: str | None = None, **options: Any) -> None:
        """Configure the connection to ``url`` (default ``redis://127.0.0.1:6379/0``)."""
        # from_url (inherited) passes endpoint/port/... instead of a url: let them through.
        super().__init__(**{**url_options(url or "redis://127.0.0.1:6379/0"), **options})


@dataclass(frozen=True, slots=True)
class CacheStats:
    """One level's cumulative counts, as exported (a snapshot of this process).

    These are the very numbers behind ``ttbt5.cache.requests`` (``hits``, ``misses``,
    ``errors``: ``cache.result``), ``ttbt5.cache.evictions`` (``evictions`` by
    ``cache.eviction.reason``) and ``ttbt5.cache.entries``: dashboards and alerts read the
    metrics; this is the same view from inside the process.
    """

    name: str
    level: str
    hits: int
    misses: int
    errors: int
    evictions: Mapping[str, int]
    entries: int | None

    @property
    def hit_rate(self) -> float:
        """Hits over hits and misses (0.0 before the first request)."""
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0


def stats_of(backend: Backend) -> CacheStats:
    """The current counts of ``backend``."""
    counts: Counts = backend.counts
    return CacheStats(
        name=counts.name,
        level=str(counts.level),
        hits=counts.hits,
        misses=counts.misses,
        errors=counts.errors,
        evictions={reason: getattr(counts, reason) for reason in REASONS},
        entries=counts.entries() if counts.entries is not None else None,
    )
