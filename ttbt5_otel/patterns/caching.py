"""The guide's "Advanced Caching System", as thin adapters over the native cache.

Guide code runs unchanged with ``src.patterns.caching`` replaced by
``ttbt5_otel.patterns.caching``::

    memory_cache = CacheManager(MemoryCacheBackend(max_size=1000))
    disk_cache = CacheManager(DiskCacheBackend(cache_dir="./cache"))
    hierarchical = HierarchicalCache()
    hierarchical.add_level(CacheLevel.L1_MEMORY, memory_cache)
    hierarchical.add_level(CacheLevel.L2_DISK, disk_cache)

    @cached(ttl=300, tags={'ai_response'})
    async def expensive_ai_operation(prompt: str) -> str: ...

Every name delegates to the native API (``ttbt5_otel.HierarchicalCache``, ``MemoryCache``,
``RedisCache``, ``DiskCache``, ``cached``): a ``CacheManager`` is a native cache of one
level, a ``HierarchicalCache`` a native cache of the levels added to it, the backends *are*
the native levels. So the metrics are the native ones: ``ttbt5.cache.requests``
(``cache.name``, ``cache.level`` = ``l1``/``l2``/``disk``, ``cache.result``),
``ttbt5.cache.evictions``, ``ttbt5.cache.entries``, ``ttbt5.cache.operation.duration``.
``cache.name`` is the ``name=`` given to a manager or cache, ``"default"`` otherwise; a level
keeps the first name it was given.

Where the guide's behaviour differs:

* ``@cached(...)`` without a cache binds, at the function's first call, to the cache set by
  ``set_default_cache``, else the most recently built ``HierarchicalCache``, else the most
  recently built ``CacheManager``; with none it raises ``CacheConfigError``.
* ``invalidate_by_tags`` returns ``None``, not a count: tags are versioned (see the native
  ``HierarchicalCache``), so entries become misses when next read, in every level and every
  process sharing the Redis or disk level, and are counted then as
  ``ttbt5.cache.evictions{cache.eviction.reason=invalidated}``. Tag versions live in the
  first shared level; a memory-only cache's tags are this cache's alone.
* Levels are fixed once a ``HierarchicalCache`` is used: ``add_level`` afterwards raises.
* Statistics (``get_stats``) are the counts behind the exported metrics; the guide's
  dashboards and hit-rate alert read the metrics.
* Shared levels store strict JSON by default (never pickle): other values raise
  ``CacheSerializationError`` naming the type.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ttbt5_otel._cache.entry import CacheLevel as NativeLevel
from ttbt5_otel._cache.hierarchical import HierarchicalCache as NativeHierarchicalCache
from ttbt5_otel._cache.memory import EvictionStrategy, MemoryCache
from ttbt5_otel._cache.store import RemoteLevel
from ttbt5_otel._exceptions import CacheConfigError
from ttbt5_otel.patterns._cache_backends import (
    Backend,
    CacheLevel,
    CacheStats,
    DiskCacheBackend,
    MemoryCacheBackend,
    RedisCacheBackend,
    stats_of,
)
from ttbt5_otel.patterns._cache_registry import as_tags, built, lazy_cached, set_default_cache

__all__ = [
    "CacheLevel",
    "CacheManager",
    "CacheStats",
    "DiskCacheBackend",
    "EvictionStrategy",
    "HierarchicalCache",
    "MemoryCacheBackend",
    "RedisCacheBackend",
    "cached",
    "set_default_cache",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _native(
    name: str, backends: Iterable[Backend], options: dict[str, Any]
) -> NativeHierarchicalCache:
    """The native cache of ``backends`` (at most one of each kind, checked by the callers)."""
    backends = list(backends)  # read twice below
    l1 = next((b for b in backends if isinstance(b, MemoryCache)), None)
    remote = {b.level: b for b in backends if isinstance(b, RemoteLevel)}
    return NativeHierarchicalCache(
        name, l1=l1, l2=remote.get(NativeLevel.L2), disk=remote.get(NativeLevel.DISK), **options
    )


class _Operations:
    """The guide's cache operations, each one call of the native cache."""

    @property
    def native(self) -> NativeHierarchicalCache:
        """The native cache doing the work."""
        raise NotImplementedError

    async def get(self, key: str, default: Any = None) -> Any:
        """The fresh value under ``key`` (``None`` can be a value), or ``default``."""
        return await self.native.get(key, default)

    async def set(
        self,
        key: str,
        value: Any,
        ttl: float | None = None,
        tags: str | Iterable[str] | None = None,
    ) -> None:
        """Store ``value`` in every level for ``ttl`` seconds (default: the cache's)."""
        await self.native.set(key, value, ttl=ttl, tags=as_tags(tags))

    async def delete(self, key: str) -> bool:
        """Remove ``key`` from every level; ``True`` if a level held it."""
        return await self.native.delete(key)

    async def clear(self) -> None:
        """Remove every entry from every level."""
        await self.native.clear()

    async def invalidate_by_tags(self, tags: str | Iterable[str]) -> None:
        """Make every entry carrying one of ``tags`` a miss, in every level and process.

        Returns ``None``, not a count: see the module docstring.
        """
        await self.native.invalidate_tags(*as_tags(tags))

    async def warm(
        self,
        items: Mapping[str, Any] | Iterable[tuple[str, Any]],
        ttl: float | None = None,
        tags: str | Iterable[str] | None = None,
    ) -> int:
        """Pre-load ``key -> value`` pairs (cache warming); returns how many were stored."""
        return await self.native.warm(items, ttl=ttl, tags=as_tags(tags))

    async def close(self) -> None:
        """Close the connections of the Redis and disk levels."""
        await self.native.close()


class CacheManager(_Operations):
    """The guide's cache over one backend: a native ``HierarchicalCache`` of one level.

    Args:
        backend: a ``MemoryCacheBackend``, ``RedisCacheBackend`` or ``DiskCacheBackend`` (or
            a native level).
        name: the ``cache.name`` attribute (default: the backend's name, else ``"default"``).
        default_ttl: seconds an entry lives when ``set`` gives no ``ttl``.
        **options: options of the native ``HierarchicalCache`` (``strict``, ``ttl_jitter``,
            ...).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        name: str | None = None,
        default_ttl: float | None = None,
        **options: Any,
    ) -> None:
        """Wrap ``backend``; see the class docstring."""
        if not isinstance(backend, MemoryCache | RemoteLevel):
            raise CacheConfigError(
                f"backend: expected MemoryCacheBackend, RedisCacheBackend or DiskCacheBackend, "
                f"got {type(backend).__qualname__}"
            )
        self.backend = backend
        if isinstance(backend, MemoryCache):
            # As the native cached(MemoryCache): one process, so no fleet to de-synchronise.
            options.setdefault("ttl_jitter", 0.0)
        self._native = _native(name or backend.name, [backend], {"ttl": default_ttl, **options})
        self.name = self._native.name
        built(self, "manager")

    @property
    def native(self) -> NativeHierarchicalCache:
        """The native cache doing the work."""
        return self._native

    def get_stats(self) -> CacheStats:
        """The backend's counts: the numbers behind the ``ttbt5.cache.*`` metrics."""
        return stats_of(self.backend)


class HierarchicalCache(_Operations):
    """The guide's multi-level cache: levels added by slot, read top-down with back-fill.

    The native ``HierarchicalCache`` is built from the added levels at first use (a read,
    a write, or the first call of a ``@cached`` function bound to it); ``add_level`` after
    that raises ``CacheConfigError``.

    Args:
        name: the ``cache.name`` attribute of the cache and of unnamed levels.
        default_ttl: seconds an entry lives unless a call says otherwise.
        **options: options of the native ``HierarchicalCache`` (``strict``, ``ttl_jitter``,
            ``retry_interval``, ...).
    """

    def __init__(
        self, name: str = "default", *, default_ttl: float | None = None, **options: Any
    ) -> None:
        """An empty cache: add levels with ``add_level``."""
        self.name = name
        self._options = {"ttl": default_ttl, **options}
        self._levels: dict[CacheLevel, Backend] = {}
        self._native: NativeHierarchicalCache | None = None
        self._lock = threading.Lock()
        built(self, "hierarchical")

    def add_level(self, level: CacheLevel, cache: CacheManager | Backend) -> None:
        """Put ``cache`` (a ``CacheManager`` or a backend) in slot ``level``.

        The slot must match the backend (``L1_MEMORY``: memory, ``L2_REDIS``: Redis,
        ``L2_DISK``/``L3_DISK``: disk); a slot number and a backend kind are used once.
        A ``CacheManager`` contributes its backend (its ``default_ttl`` is not carried over).
        """
        backend = cache.backend if isinstance(cache, CacheManager) else cache
        slot = CacheLevel(level)
        kind = getattr(backend, "level", None)
        if kind != slot.native:
            raise CacheConfigError(
                f"add_level({slot.name}): takes a {slot.native.value} level, "
                f"got {type(backend).__qualname__}"
            )
        with self._lock:
            if self._native is not None:
                raise CacheConfigError(
                    f"add_level({slot.name}): cache {self.name!r} is in use; its levels are "
                    "fixed at the first get/set or cached call"
                )
            for taken in self._levels:
                if taken.tier == slot.tier or taken.native == slot.native:
                    raise CacheConfigError(
                        f"add_level({slot.name}): cache {self.name!r} already has {taken.name}"
                    )
            self._levels[slot] = backend

    @property
    def levels(self) -> tuple[CacheLevel, ...]:
        """The slots filled, from the top."""
        return tuple(sorted(self._levels, key=lambda slot: slot.tier))

    @property
    def native(self) -> NativeHierarchicalCache:
        """The native cache of the added levels (built on first use)."""
        native = self._native
        if native is None:
            with self._lock:
                if self._native is None:
                    if not self._levels:
                        raise CacheConfigError(
                            f"HierarchicalCache {self.name!r} has no levels: call "
                            "add_level(CacheLevel..., cache) before using it"
                        )
                    self._native = _native(self.name, self._levels.values(), self._options)
                native = self._native
        return native

    def get_stats(self) -> dict[CacheLevel, CacheStats]:
        """Each level's counts, from the top: the numbers behind the ``ttbt5.cache.*`` metrics."""
        return {slot: stats_of(self._levels[slot]) for slot in self.levels}


def cached(
    ttl: float | None = None,
    tags: str | Iterable[str] | Callable[..., Iterable[str]] | None = None,
    *,
    cache: CacheManager | HierarchicalCache | None = None,
    key: Callable[..., str] | None = None,
    stale_while_revalidate: float = 0.0,
) -> Callable[[_F], _F]:
    """The guide's decorator: the native ``cached`` on a cache chosen at the first call.

    Args:
        ttl: seconds a result stays fresh (default: the cache's).
        tags: tags of every result (a set, as in the guide), or a callable receiving the
            call's arguments and returning them; ``invalidate_by_tags`` drops them.
        cache: the cache to use; by default the one chosen at the first call (the module
            docstring says which), ``CacheConfigError`` if there is none.
        key: custom key builder receiving the call's arguments.
        stale_while_revalidate: seconds a stale result is served while one task refreshes
            it (async functions).

    Returns:
        A decorator; the function keeps its kind, loads each key once for concurrent
        callers, and gains ``cache_key``, ``invalidate`` and ``warm`` (as the native one).
        A sync function needs a memory-only cache (``CacheConfigError`` at its first call).
    """
    native_tags: Any = tags if callable(tags) else as_tags(tags)
    options = {
        "ttl": ttl,
        "tags": native_tags,
        "key": key,
        "stale_while_revalidate": stale_while_revalidate,
    }
    return lazy_cached(cache, options)
