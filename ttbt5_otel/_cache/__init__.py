"""Instrumented multi-level caching (private; the public names are re-exported by the package).

Levels: ``MemoryCache`` (L1, cachetools), ``RedisCache`` (L2, aiocache's Redis backend),
``DiskCache`` (diskcache, extra ``disk``), combined by ``HierarchicalCache``; ``cached``
decorates functions; ``instrument_cache`` reports on an existing aiocache cache.
"""

from ttbt5_otel._cache._decorator import CachedAsyncFunction, CachedSyncFunction, cached
from ttbt5_otel._cache._disk import DiskCache
from ttbt5_otel._cache._entry import CacheLevel
from ttbt5_otel._cache._errors import CacheConfigError, CacheError, CacheSerializationError
from ttbt5_otel._cache._hierarchical import HierarchicalCache
from ttbt5_otel._cache._instrument import instrument_cache
from ttbt5_otel._cache._keys import KeyBuilder
from ttbt5_otel._cache._memory import EvictionStrategy, MemoryCache
from ttbt5_otel._cache._redis import RedisCache
from ttbt5_otel._cache._serialization import JsonSerializer, PickleSerializer, Serializer

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
