"""``HierarchicalCache``: L1 memory → L2 Redis → disk, with tags that work across processes.

Reads go down the levels and back-fill the levels above the one that hit; writes go to
every level; ``delete`` and ``clear`` act on every level (other processes' L1 entries live
until their TTL: use tags to reach them). Each TTL is shortened by a random fraction of up
to ``ttl_jitter`` so entries written together do not all expire together.

Tag invalidation uses versioned tags. Each tag has a version counter in the shared store
(Redis when there is an L2, else the disk level, else this process). An entry records the
version of each of its tags when it was written (read *before* the loader ran, so a load
racing an invalidation is stored as already stale). A read compares those versions with
the current ones (one ``MGET`` for all tags of the entry) and treats a mismatch as a miss.
``invalidate_tags`` only increments counters (``INCR``). Why this scheme: a process that
invalidates needs no list of the keys carrying a tag; there is no pub/sub connection to
keep alive, so no message is lost while a process is disconnected and nothing needs
re-subscribing after a reconnect; the cost is O(tags of the entry) per read, and a process
never serves an L1 entry another process invalidated. Current versions are re-read on every
read of a tagged entry unless ``tag_version_ttl`` allows reusing them for a few
milliseconds (bounded staleness for speed). Each process also keeps a local epoch per tag,
so an invalidation made while the store is unreachable still applies in this process; it is
replayed to the store once the store is back.

When a shared level fails or times out the cache keeps serving from the other levels and
the loader, counts ``cache.result=error``, logs once per outage and probes the level again
every ``retry_interval`` seconds; exceptions reach the caller only with ``strict=True``.
Values that the serializer of a shared level cannot store always raise
``CacheSerializationError``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ttbt5_otel._cache.entry import CacheLevel, Envelope
from ttbt5_otel._cache.flight import Flights
from ttbt5_otel._cache.memory import MemoryCache
from ttbt5_otel._cache.outage import Outage
from ttbt5_otel._cache.redis_level import RedisCache
from ttbt5_otel._cache.shared_levels import SharedLevels
from ttbt5_otel._cache.store import RemoteLevel
from ttbt5_otel._cache.tags import TagVersions
from ttbt5_otel._cache.telemetry import Counts, track
from ttbt5_otel._exceptions import CacheConfigError


class HierarchicalCache:
    """A multi-level cache: optional L1 memory, L2 Redis and disk, in that order.

    Args:
        name: the ``cache.name`` attribute; levels created without a name take it.
        l1: the in-process level.
        l2: the shared Redis level.
        disk: the disk level.
        ttl: default time to live in seconds (``None``: entries do not expire).
        ttl_jitter: each TTL is shortened by a random fraction up to this (0 to 1).
        strict: raise level failures to the caller instead of falling back.
        retry_interval: seconds a failed shared level is skipped before it is probed again.
        tag_version_ttl: seconds current tag versions may be reused (0: read every time).
        clock: wall clock for freshness (shared with other processes through L2).
        rng: random source in [0, 1) for the jitter.
    """

    def __init__(
        self,
        name: str,
        *,
        l1: MemoryCache | None = None,
        l2: RemoteLevel | None = None,
        disk: RemoteLevel | None = None,
        ttl: float | None = None,
        ttl_jitter: float = 0.1,
        strict: bool = False,
        retry_interval: float = 5.0,
        tag_version_ttl: float = 0.0,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """Combine the given levels; see the class docstring for the options."""
        if l1 is None and l2 is None and disk is None:
            raise CacheConfigError("levels: a HierarchicalCache needs at least one level")
        if not 0 <= ttl_jitter < 1:
            raise CacheConfigError(f"ttl_jitter: must be in [0, 1), got {ttl_jitter}")
        if ttl is not None and ttl <= 0:
            raise CacheConfigError(f"ttl: must be positive, got {ttl}")
        self.name = name
        self.l1 = l1
        self.shared = SharedLevels(
            name, [lv for lv in (l2, disk) if lv is not None], retry_interval, strict, clock
        )
        for level_obj in (l1, l2, disk):
            if level_obj is not None and level_obj.name == "default":
                level_obj.name = name
        self.ttl = ttl
        self.ttl_jitter = ttl_jitter
        self.strict = strict
        self._clock = clock
        self._rng = rng
        self.counts = Counts(name, None)
        self.flights = Flights(self.counts)
        store = self.shared.items[0] if self.shared.items else None
        self.tags = TagVersions(store, tag_version_ttl, strict)
        track(self, self.counts)

    @classmethod
    def from_levels(
        cls,
        *,
        name: str,
        l1: MemoryCache | int | None = None,
        l2: RemoteLevel | str | None = None,
        disk: RemoteLevel | str | None = None,
        **options: Any,
    ) -> HierarchicalCache:
        """Build a cache from levels, or from shorthands for them.

        Args:
            name: the ``cache.name`` attribute of the cache and of its levels.
            l1: a ``MemoryCache``, or the number of entries of a new LRU one.
            l2: a ``RedisCache``, or a URL for a new one: ``redis://host:port/db``, or
                ``redis+cluster://host:port[,host:port...]/`` for a Redis Cluster.
            disk: a ``DiskCache``, or the directory of a new one.
            **options: the keyword options of the class (``ttl``, ``strict``, ...).

        Returns:
            The cache.
        """
        if isinstance(l1, int):
            l1 = MemoryCache(l1, name=name)
        if isinstance(l2, str):
            l2 = RedisCache.from_url(l2, name=name)
        if isinstance(disk, str):
            from ttbt5_otel._cache.disk_level import DiskCache  # noqa: PLC0415 - optional extra

            disk = DiskCache(disk, name=name)
        return cls(name, l1=l1, l2=l2, disk=disk, **options)

    @property
    def levels(self) -> tuple[CacheLevel, ...]:
        """The levels present, from the top."""
        found = [CacheLevel.L1] if self.l1 is not None else []
        return (*found, *(level.level for level, _ in self.shared.items))

    @property
    def remote(self) -> list[tuple[RemoteLevel, Outage]]:
        """The shared levels, from the top, with their outage state."""
        return self.shared.items

    # -- public API ------------------------------------------------------------------------
    async def get(self, key: str, default: Any = None) -> Any:
        """The fresh value under ``key`` (``None`` is a value), or ``default``."""
        entry = await self.lookup(key)
        if entry is None or not self.is_fresh(entry):
            return default
        return entry.value

    async def set(
        self, key: str, value: Any, *, ttl: float | None = None, tags: Sequence[str] = ()
    ) -> None:
        """Store ``value`` in every level, for ``ttl`` seconds (default the cache's)."""
        await self.store(key, value, ttl, await self.tags.snapshot(tags), None, 0.0)

    async def delete(self, key: str) -> bool:
        """Remove ``key`` from every level; ``True`` if a level held it."""
        found = self.l1.delete(key) if self.l1 is not None else False
        return await self.shared.delete(key) or found

    async def clear(self) -> None:
        """Remove every entry from every level (tag versions are kept)."""
        if self.l1 is not None:
            self.l1.clear()
        await self.shared.clear()

    async def invalidate_tags(self, *tags: str) -> None:
        """Make every entry carrying one of ``tags`` a miss, in every level and process."""
        await self.tags.bump(tags)

    async def warm(
        self,
        items: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> int:
        """Pre-load ``key -> value`` pairs; returns how many were stored."""
        pairs = items.items() if isinstance(items, Mapping) else items
        stored = 0
        for key, value in pairs:
            await self.set(key, value, ttl=ttl, tags=tags)
            stored += 1
        return stored

    async def close(self) -> None:
        """Close the shared levels' connections."""
        await self.shared.close()

    # -- building blocks of get/set and of cached() ------------------------------------------
    def is_fresh(self, entry: Envelope) -> bool:
        """Whether ``entry`` is within its TTL (else it is only usable while revalidating)."""
        return entry.fresh_until is None or self._clock() < entry.fresh_until

    async def lookup(self, key: str) -> Envelope | None:
        """The unexpired, current entry under ``key`` from the first level that has it."""
        l1 = self.l1
        if l1 is not None:
            if l1.thread_safe:
                with l1.lock:
                    found = l1.lookup(key)
            else:
                found = l1.lookup(key)  # the hot path: no context manager
            if found is not None:
                entry: Envelope = found[0]
                if not (entry.tags or entry.local) or await self.tags.valid(entry):
                    l1.counts.hits += 1
                    return entry
                l1.delete(key)
            l1.counts.misses += 1
        if not self.shared.items:
            return None
        shared = await self.shared.lookup(key, self.tags)
        if shared is not None and l1 is not None:
            keep = self.shared.remaining(shared)
            if keep is None or keep > 0:
                l1.set(key, shared, keep)
        return shared

    def lookup_sync(self, key: str) -> Envelope | None:
        """``lookup`` for memory-only caches, without an event loop."""
        l1 = self.l1
        assert l1 is not None
        with l1.lock:  # threads may share a sync cache: count under the lock too
            found = l1.lookup(key)
            if found is not None:
                entry: Envelope = found[0]
                if not entry.local or self.tags.valid_locally(entry):
                    l1.counts.hits += 1
                    return entry
                l1.delete(key)
            l1.counts.misses += 1
        return None

    def _lifetimes(self, ttl: float | None, stale: float) -> tuple[float | None, float | None]:
        ttl = self.ttl if ttl is None else ttl
        if ttl is None:
            return None, None
        jittered = ttl * (1 - self.ttl_jitter * self._rng())
        return jittered, jittered + stale

    def make_entry(
        self,
        value: Any,
        ttl: float | None,
        snapshot: tuple[dict[str, int], dict[str, int]],
        stale: float,
    ) -> tuple[Envelope, float | None]:
        """The envelope of ``value`` and how long levels keep it (fresh time + ``stale``)."""
        fresh, hard = self._lifetimes(ttl, stale)
        now = self._clock()
        entry = Envelope(
            value,
            snapshot[0],
            snapshot[1],
            None if fresh is None else now + fresh,
            None if hard is None else now + hard,
        )
        return entry, hard

    def store_sync(self, key: str, entry: Envelope, keep: float | None) -> None:
        """Write ``entry`` to L1 (memory-only caches)."""
        assert self.l1 is not None
        self.l1.set(key, entry, keep)

    async def store(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        snapshot: tuple[dict[str, int], dict[str, int]],
        owner: str | None,
        stale: float,
    ) -> None:
        """Write ``value`` to every level; serialization errors raise before any write."""
        entry, keep = self.make_entry(value, ttl, snapshot, stale)
        encoded = self.shared.encode(entry, owner)
        if self.l1 is not None:
            self.l1.set(key, entry, keep)
        await self.shared.write(key, encoded, keep)
