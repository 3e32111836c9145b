"""The in-process level: a bounded cachetools cache whose evictions are counted.

cachetools gives the eviction strategies (LRU, LFU, TTL); the subclasses below only count:
``popitem`` runs when the cache is full (reason ``size``), ``expire`` when TTL entries run
out (reason ``expired``). Deletions and clears are counted as ``invalidated``. Entries are
stored as ``(value, expires)`` pairs so any strategy also honours a per-entry TTL, checked
when the entry is read.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from enum import StrEnum
from typing import Any, Final, TypeAlias

from cachetools import Cache, LFUCache, LRUCache, TTLCache

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.telemetry import Counts, track
from ttbt5_otel._exceptions import CacheConfigError

_Slot: TypeAlias = tuple[Any, float | None]
_cache_len: Final = Cache.__len__  # the raw size, without TTLCache's expire() side effect


class EvictionStrategy(StrEnum):
    """Which entry a full ``MemoryCache`` drops first."""

    LRU = "lru"
    """Least recently used."""
    LFU = "lfu"
    """Least frequently used."""
    TTL = "ttl"
    """Expired entries first, then the least recently used; every entry lives at most ``ttl``."""


class _SizeEvictionsCounted:
    """Counts each ``popitem``: cachetools calls it only to make room for a new entry."""

    counts: Counts

    def __init__(
        self, maxsize: int, getsizeof: Callable[[_Slot], float] | None, counts: Counts
    ) -> None:
        super().__init__(maxsize, getsizeof)  # type: ignore[call-arg]
        self.counts = counts

    def popitem(self) -> tuple[str, _Slot]:
        item: tuple[str, _Slot] = super().popitem()  # type: ignore[misc]
        self.counts.size += 1
        return item


class _CountingLRU(_SizeEvictionsCounted, LRUCache[str, _Slot]):
    pass


class _CountingLFU(_SizeEvictionsCounted, LFUCache[str, _Slot]):
    pass


class _CountingTTL(TTLCache[str, _Slot]):
    def __init__(
        self,
        maxsize: int,
        ttl: float,
        timer: Callable[[], float],
        getsizeof: Callable[[_Slot], float] | None,
        counts: Counts,
    ) -> None:
        super().__init__(maxsize, ttl, timer, getsizeof)
        self.counts = counts

    def popitem(self) -> tuple[str, _Slot]:
        item = super().popitem()  # expire() inside counts what had already expired
        self.counts.size += 1
        return item

    def expire(self, time: float | None = None) -> list[tuple[str, _Slot]]:
        expired = list(super().expire(time))
        if expired:
            self.counts.expired += len(expired)
        return expired


def approximate_size(value: object, depth: int = 4) -> int:
    """A rough byte size of ``value``: ``sys.getsizeof`` summed over containers."""
    size = sys.getsizeof(value, 64)
    if depth <= 0:
        return size
    if isinstance(value, dict):
        return size + sum(
            approximate_size(k, depth - 1) + approximate_size(v, depth - 1)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return size + sum(approximate_size(item, depth - 1) for item in value)
    return size


class MemoryCache:
    """A bounded in-process cache level with counted hits, misses and evictions.

    Args:
        maxsize: most entries held.
        strategy: ``"lru"`` (default), ``"lfu"`` or ``"ttl"``.
        ttl: default time to live in seconds; required for the ``ttl`` strategy, optional
            otherwise. ``set(..., ttl=...)`` overrides it per entry (never beyond it for the
            ``ttl`` strategy).
        max_bytes: also bound the approximate size of the values, in bytes; a value larger
            than this on its own is not cached.
        getsizeof: how to size a value when ``max_bytes`` is set (default
            ``approximate_size``).
        timer: monotonic clock in seconds; inject one to test expiry without sleeping.
        name: the ``cache.name`` attribute; a ``HierarchicalCache`` names unnamed levels.
        thread_safe: take a lock around each operation (needed when threads share it; not
            needed under asyncio).
    """

    __slots__ = (
        "__weakref__",
        "_data",
        "_lock",
        "_max_entries",
        "_timer",
        "counts",
        "hierarchical",
        "strategy",
        "ttl",
    )
    level: Final = CacheLevel.L1

    def __init__(
        self,
        maxsize: int = 1024,
        *,
        strategy: EvictionStrategy | str = EvictionStrategy.LRU,
        ttl: float | None = None,
        max_bytes: int | None = None,
        getsizeof: Callable[[Any], float] | None = None,
        timer: Callable[[], float] = time.monotonic,
        name: str | None = None,
        thread_safe: bool = False,
    ) -> None:
        """Create an empty cache; see the class docstring for the options."""
        try:
            self.strategy = EvictionStrategy(strategy)
        except ValueError:
            raise CacheConfigError(
                f"strategy: expected lru, lfu or ttl, got {strategy!r}"
            ) from None
        if maxsize < 1:
            raise CacheConfigError(f"maxsize: must be at least 1, got {maxsize}")
        if ttl is not None and ttl <= 0:
            raise CacheConfigError(f"ttl: must be positive, got {ttl}")
        if self.strategy is EvictionStrategy.TTL and ttl is None:
            raise CacheConfigError("ttl: the ttl strategy needs a ttl")
        self.ttl = ttl
        self._timer = timer
        self._max_entries = maxsize
        self.counts = Counts(name or "default", self.level.value)
        sizer: Callable[[_Slot], float] | None = None
        bound = maxsize
        if max_bytes is not None:
            measure = getsizeof or approximate_size
            sizer = lambda slot: measure(slot[0])  # noqa: E731 - a one-line adapter
            bound = max_bytes
        self._data: LRUCache[str, _Slot] | LFUCache[str, _Slot] | TTLCache[str, _Slot]
        if self.strategy is EvictionStrategy.LFU:
            self._data = _CountingLFU(bound, sizer, self.counts)
        elif self.strategy is EvictionStrategy.TTL:
            assert ttl is not None
            self._data = _CountingTTL(bound, ttl, timer, sizer, self.counts)
        else:
            self._data = _CountingLRU(bound, sizer, self.counts)
        # Re-entrant: a HierarchicalCache reads, counts and drops under one acquisition.
        self._lock = threading.RLock() if thread_safe else None
        self.counts.entries = self.__len__
        self.hierarchical: Any = None
        """The memory-only ``HierarchicalCache`` that ``cached()`` built around this cache."""
        track(self, self.counts)

    @property
    def name(self) -> str:
        """The ``cache.name`` attribute."""
        return self.counts.name

    @name.setter
    def name(self, value: str) -> None:
        self.counts.name = value

    @property
    def timer(self) -> Callable[[], float]:
        """The clock entry expiry is measured with."""
        return self._timer

    def __len__(self) -> int:
        """Entries held, including expired ones not yet dropped."""
        return _cache_len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``; counts a hit or a miss."""
        if self._lock is not None:
            with self._lock:  # counts too: += on an attribute is not atomic across threads
                found = self.lookup(key)
                if found is None:
                    self.counts.misses += 1
                    return default
                self.counts.hits += 1
                return found[0]
        # The hot path, inlined: no method call, no context manager.
        try:
            value, expires = self._data[key]
        except KeyError:
            if isinstance(self._data, TTLCache):
                self._data.expire()
            self.counts.misses += 1
            return default
        if expires is not None and expires <= self._timer():
            self._drop(key, "expired")
            self.counts.misses += 1
            return default
        self.counts.hits += 1
        return value

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` holds an unexpired entry; not counted as a request."""
        with self.lock:
            return self.lookup(key) is not None

    def lookup(self, key: str) -> tuple[Any] | None:
        """``(value,)`` under ``key``, or ``None``; uncounted, drops the entry if expired.

        Not locked: callers that share the cache between threads hold ``lock``.
        """
        try:
            value, expires = self._data[key]
        except KeyError:
            if isinstance(self._data, TTLCache):
                self._data.expire()
            return None
        if expires is not None and expires <= self._timer():
            self._drop(key, "expired")
            return None
        return (value,)

    @property
    def thread_safe(self) -> bool:
        """Whether operations take a lock."""
        return self._lock is not None

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The lock of a ``thread_safe`` cache (a no-op context otherwise)."""
        return self._lock if self._lock is not None else nullcontext()

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: the cache's ``ttl``)."""
        if ttl is None:
            ttl = self.ttl
        expires = None if ttl is None else self._timer() + ttl
        with self.lock:
            try:
                self._data[key] = (value, expires)
            except ValueError:  # larger than max_bytes by itself: not cached
                self._data.pop(key, None)  # nor may an older value stay behind
                return
            # With max_bytes cachetools bounds the bytes; the entry bound is kept here.
            while _cache_len(self._data) > self._max_entries:
                self._data.popitem()

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it held an unexpired entry (counted as invalidated)."""
        with self.lock:
            return self._drop(key, "invalidated")

    def _drop(self, key: str, reason: str) -> bool:
        try:
            _, expires = self._data.pop(key)
        except KeyError:
            return False
        if reason == "expired" or (expires is not None and expires <= self._timer()):
            self.counts.expired += 1
            return False
        self.counts.invalidated += 1
        return True

    def clear(self) -> None:
        """Drop every entry (counted as invalidated)."""
        with self.lock:
            if isinstance(self._data, TTLCache):
                self._data.expire()
            self.counts.invalidated += _cache_len(self._data)
            self._data.clear()
