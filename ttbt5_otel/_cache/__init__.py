"""Instrumented multi-level caching (private; the public names are re-exported by the package).

Levels: ``MemoryCache`` (L1, cachetools), ``RedisCache`` (L2, aiocache's Redis backend),
``DiskCache`` (diskcache, extra ``disk``), combined by ``HierarchicalCache``; ``cached``
decorates functions; ``instrument_cache`` reports on an existing aiocache cache.
"""

from ttbt5_otel._cache.decorator import CachedAsyncFunction, CachedSyncFunction, cached
from ttbt5_otel._cache.disk_level import DiskCache
from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.hierarchical import HierarchicalCache
from ttbt5_otel._cache.instrument import instrument_cache
from ttbt5_otel._cache.keys import KeyBuilder
from ttbt5_otel._cache.memory import EvictionStrategy, MemoryCache
from ttbt5_otel._cache.redis_level import RedisCache
from ttbt5_otel._cache.serialization import JsonSerializer, PickleSerializer, Serializer
from ttbt5_otel._exceptions import CacheConfigError, CacheError, CacheSerializationError

__all__ = [
    "CacheConfigError",
    "CacheError",
    "CacheLevel",
    "CacheSerializationError",
    "CachedAsyncFunction",
    "CachedSyncFunction",
    "DiskCache",
    "EvictionStrategy",
    "HierarchicalCache",
    "JsonSerializer",
    "KeyBuilder",
    "MemoryCache",
    "PickleSerializer",
    "RedisCache",
    "Serializer",
    "cached",
    "instrument_cache",
]
