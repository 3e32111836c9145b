"""What the shared levels (Redis, disk) have in common: timed, counted raw operations.

A remote level stores serialized envelopes (bytes) and the version counter of each tag.
Every operation is recorded in ``ttbt5.cache.operation.duration`` and every failure counted
as ``cache.result=error``; the hierarchical cache decides what a failure means for the
caller (serve from elsewhere, or raise when ``strict``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import Any, ClassVar, TypeVar

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.serialization import JsonSerializer, Serializer
from ttbt5_otel._cache.telemetry import Counts, record_duration, track

_T = TypeVar("_T")


class RemoteLevel:
    """Base of ``RedisCache`` and ``DiskCache``; not used directly."""

    level: ClassVar[CacheLevel]

    def __init__(self, name: str | None, serializer: Serializer | None) -> None:
        """Count under ``name`` and encode with ``serializer`` (default strict JSON)."""
        self.serializer: Serializer = serializer or JsonSerializer()
        self.counts = Counts(name or "default", self.level.value)
        self.counts.entries = self.entry_count
        track(self, self.counts)

    @property
    def name(self) -> str:
        """The ``cache.name`` attribute."""
        return self.counts.name

    @name.setter
    def name(self, value: str) -> None:
        self.counts.name = value

    def entry_count(self) -> int | None:
        """Entries held, when the level can tell cheaply (``None`` otherwise)."""
        return None

    async def _timed(self, operation: str, call: Awaitable[_T]) -> _T:
        started = time.perf_counter()
        try:
            return await call
        except Exception:
            self.counts.errors += 1
            raise
        finally:
            record_duration(self.counts, operation, started)

    async def get_raw(self, key: str) -> bytes | None:
        """The bytes under ``key`` or ``None``; not counted as a hit or miss here."""
        return await self._timed("get", self._get(key))

    async def set_raw(self, key: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        await self._timed("set", self._set(key, data, ttl))

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed (counted as invalidated)."""
        existed = await self._timed("delete", self._delete(key))
        if existed:
            self.counts.invalidated += 1
        return existed

    async def clear(self) -> None:
        """Remove every entry of this level (tag versions are kept, see the cache docs)."""
        await self._timed("clear", self._clear())

    async def tag_versions(self, tags: Sequence[str]) -> dict[str, int]:
        """The current version of each tag (0 for a tag never invalidated)."""
        return await self._timed("tag_versions", self._versions(tags))

    async def bump_tags(self, tags: Sequence[str]) -> None:
        """Increment the version of each tag."""
        await self._timed("tag_bump", self._bump(tags))

    async def close(self) -> None:
        """Release connections or files."""

    # -- implemented by the levels ---------------------------------------------------------
    async def _get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def _set(self, key: str, data: bytes, ttl: float | None) -> None:
        raise NotImplementedError

    async def _delete(self, key: str) -> bool:
        raise NotImplementedError

    async def _clear(self) -> None:
        raise NotImplementedError

    async def _versions(self, tags: Sequence[str]) -> dict[str, int]:
        raise NotImplementedError

    async def _bump(self, tags: Sequence[str]) -> None:
        raise NotImplementedError


def as_int(value: Any) -> int:
    """A stored counter (bytes, str or int; missing is 0)."""
    if value is None:
        return 0
    return int(value)
