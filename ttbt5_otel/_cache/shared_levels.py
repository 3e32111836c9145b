"""The shared levels (L2, disk) of one cache: ordered reads, writes and failure handling.

Every call goes through ``SharedLevels.call``: a level in an outage is skipped, a failure
starts or extends the outage (see ``outage``) and is swallowed unless the cache is
``strict``.

A level whose read of a key just failed is not written that key by the same caller (the
load it starts, or the back-fill from a lower level): the read already cost the caller up
to the level's timeout, and a write right after would most likely cost it as much again,
e.g. at the start of an outage before anything has marked the level down, or when the
read failed for want of a free connection. So a caller waits for a failing level once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Final

from ttbt5_otel._cache.entry import MISSING, Envelope
from ttbt5_otel._cache.outage import Outage
from ttbt5_otel._cache.serialization import Unstorable
from ttbt5_otel._cache.store import RemoteLevel
from ttbt5_otel._cache.tags import TagVersions
from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._exceptions import CacheSerializationError

_FAILED_READ: Final[ContextVar[tuple[str, tuple[Outage, ...], float] | None]] = ContextVar(
    "ttbt5_cache_failed_read", default=None
)
"""The last read that failed in this task: its key, the levels that failed, and when. A
context variable because the load that follows runs in a task created from the caller's
context (single-flight), and one entry per task keeps it bounded."""


class SharedLevels:
    """The shared levels of cache ``name``, from the top, each with its outage state."""

    __slots__ = ("_clock", "_retry_interval", "items", "name", "strict")

    def __init__(
        self,
        name: str,
        levels: Sequence[RemoteLevel],
        retry_interval: float,
        strict: bool,
        clock: Callable[[], float],
    ) -> None:
        """Track ``levels``; probe a failed one again after ``retry_interval`` seconds."""
        self.name = name
        self.strict = strict
        self._clock = clock
        self._retry_interval = retry_interval
        self.items = [(level, Outage(name, level.level.value, retry_interval)) for level in levels]

    async def call(self, outage: Outage, call: Any, fallback: Any = None) -> Any:
        """Await ``call`` unless its level is down; ``fallback`` when skipped or failed."""
        if not outage.available():
            call.close()  # never awaited: skipped while the level is down
            return fallback
        started = outage.now()
        try:
            result = await call
        except Exception as exc:
            outage.failed(exc)
            if self.strict:
                raise
            return fallback
        outage.succeeded(started)
        return result

    def encode(self, entry: Envelope, owner: str | None) -> list[bytes]:
        """``entry`` as each level stores it; ``CacheSerializationError`` if one cannot."""
        encoded = []
        for level, _ in self.items:
            try:
                level.serializer.check(entry.value)
            except Unstorable as exc:
                raise CacheSerializationError(
                    self.name, owner, exc.value_type, exc.path, exc.hint
                ) from None
            encoded.append(level.serializer.dumps(entry.to_wire()))
        return encoded

    async def write(self, key: str, encoded: Sequence[bytes], keep: float | None) -> None:
        """Store the encoded entry in every level for ``keep`` seconds.

        Levels whose read of ``key`` failed in this task within ``retry_interval`` are left
        out (see the module docstring).
        """
        failed = _FAILED_READ.get()
        skip: tuple[Outage, ...] = ()
        if failed is not None and failed[0] == key:
            _FAILED_READ.set(None)
            if time.monotonic() - failed[2] <= self._retry_interval:
                skip = failed[1]
        for (level, outage), data in zip(self.items, encoded, strict=True):
            if outage not in skip:
                await self.call(outage, level.set_raw(key, data, keep))

    async def lookup(self, key: str, tags: TagVersions) -> Envelope | None:
        """The entry from the first level that has it, copied into the shared levels above."""
        failed: list[Outage] = []
        try:
            for index, (level, outage) in enumerate(self.items):
                entry = await self._lookup(level, outage, key, tags, failed)
                if entry is not None:
                    await self._backfill(key, entry, index, failed)
                    return entry
            return None
        finally:
            if failed:
                _FAILED_READ.set((key, tuple(failed), time.monotonic()))
            elif _FAILED_READ.get() is not None:
                _FAILED_READ.set(None)  # the load's task cleared only its own copy

    async def _lookup(
        self,
        level: RemoteLevel,
        outage: Outage,
        key: str,
        tags: TagVersions,
        failed: list[Outage],
    ) -> Envelope | None:
        if not outage.available():
            level.counts.errors += 1
            return None
        await tags.replay()  # a recovered store first learns what it missed
        data = await self.call(outage, level.get_raw(key), MISSING)
        if data is MISSING:  # failed: the error is counted by the level
            failed.append(outage)
            return None
        entry = None if data is None else self._decode(level, data, tags)
        if entry is None or (entry.expires is not None and entry.expires <= self._clock()):
            if data is None or entry is not None:  # undecodable data counted as an error
                level.counts.misses += 1
            return None
        if entry.tags and not await tags.valid(entry):
            level.counts.misses += 1
            await self.call(outage, level.delete(key), fallback=False)
            return None
        level.counts.hits += 1
        return entry

    def _decode(self, level: RemoteLevel, data: bytes, tags: TagVersions) -> Envelope | None:
        try:
            wire = level.serializer.loads(data)
            names = wire.get("t") or {} if isinstance(wire, dict) else {}
            return Envelope.from_wire(wire, tags.local_snapshot(names))
        except Exception as exc:
            level.counts.errors += 1
            warn_once(
                f"cache-decode:{self.name}:{level.level}",
                "cache %r: an entry in level %s could not be decoded (%s); treated as a miss",
                self.name,
                level.level.value,
                exc,
            )
            return None

    def remaining(self, entry: Envelope) -> float | None:
        """Seconds ``entry`` has left (``None``: no expiry; 0 or less: expired)."""
        return None if entry.expires is None else entry.expires - self._clock()

    async def _backfill(
        self, key: str, entry: Envelope, found_at: int, failed: list[Outage]
    ) -> None:
        keep = self.remaining(entry)
        if keep is not None and keep <= 0:
            return
        for level, outage in self.items[:found_at]:
            if outage in failed:  # its read just failed: do not wait for it twice
                continue
            data = level.serializer.dumps(entry.to_wire())
            await self.call(outage, level.set_raw(key, data, keep))

    async def delete(self, key: str) -> bool:
        """Remove ``key`` from every level; ``True`` if one held it."""
        found = False
        for level, outage in self.items:
            found = bool(await self.call(outage, level.delete(key), fallback=False)) or found
        return found

    async def clear(self) -> None:
        """Remove every entry from every level."""
        for level, outage in self.items:
            await self.call(outage, level.clear())

    async def close(self) -> None:
        """Close every level."""
        for level, _ in self.items:
            await level.close()
