"""Shared pieces of the cache tests: a manual clock, unique names, an in-memory remote level."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

from ttbt5_otel._cache import CacheLevel
from ttbt5_otel._cache.store import RemoteLevel

# The metric names are the contract (docs/metrics.md), written out rather than imported.
COALESCED = "ttbt5.cache.coalesced"
ENTRIES = "ttbt5.cache.entries"
EVICTIONS = "ttbt5.cache.evictions"
REQUESTS = "ttbt5.cache.requests"

__all__ = ["COALESCED", "ENTRIES", "EVICTIONS", "REQUESTS", "Clock", "FakeRemote", "unique"]

_names = itertools.count()


def unique(prefix: str = "cache") -> str:
    """A cache name no other test uses (counts are cumulative per name)."""
    return f"{prefix}-{next(_names)}"


class Clock:
    """A manual clock, usable as both the monotonic timer and the wall clock."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeRemote(RemoteLevel):
    """A shared level kept in a dict, that can be switched off to simulate an outage."""

    level: ClassVar[CacheLevel] = CacheLevel.L2

    def __init__(self, name: str | None = None, *, level: CacheLevel = CacheLevel.L2) -> None:
        self.level = level  # type: ignore[misc]
        super().__init__(name, None)
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, float | None] = {}
        self.versions: dict[str, int] = {}
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("remote is down")

    async def _get(self, key: str) -> bytes | None:
        self._check()
        return self.data.get(key)

    async def _set(self, key: str, data: bytes, ttl: float | None) -> None:
        self._check()
        self.data[key] = data
        self.ttls[key] = ttl

    async def _delete(self, key: str) -> bool:
        self._check()
        return self.data.pop(key, None) is not None

    async def _clear(self) -> None:
        self._check()
        self.data.clear()

    async def _versions(self, tags: Sequence[str]) -> dict[str, int]:
        self._check()
        return {tag: self.versions.get(tag, 0) for tag in tags}

    async def _bump(self, tags: Sequence[str]) -> None:
        self._check()
        for tag in tags:
            self.versions[tag] = self.versions.get(tag, 0) + 1
