"""The shared levels (L2, disk) of one cache: ordered reads, writes and failure handling.

Every call goes through ``SharedLevels.call``: a level in an outage is skipped, a failure
starts or extends the outage (see ``_health``) and is swallowed unless the cache is
``strict``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ttbt5_otel._cache.entry import MISSING, Envelope
from ttbt5_otel._cache.outage import Outage
from ttbt5_otel._cache.serialization import Unstorable
from ttbt5_otel._cache.store import RemoteLevel
from ttbt5_otel._cache.tags import TagVersions
from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._exceptions import CacheSerializationError


class SharedLevels:
    """The shared levels of cache ``name``, from the top, each with its outage state."""

    __slots__ = ("_clock", "items", "name", "strict")

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
        self.items = [(level, Outage(name, level.level.value, retry_interval)) for level in levels]

    async def call(self, outage: Outage, call: Any, fallback: Any = None) -> Any:
        """Await ``call`` unless its level is down; ``fallback`` when skipped or failed."""
        if not outage.available():
            call.close()  # never awaited: skipped while the level is down
            return fallback
        try:
            result = await call
        except Exception as exc:
            outage.failed(exc)
            if self.strict:
                raise
            return fallback
        outage.succeeded()
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
        """Store the encoded entry in every level for ``keep`` seconds."""
        for (level, outage), data in zip(self.items, encoded, strict=True):
            await self.call(outage, level.set_raw(key, data, keep))

    async def lookup(self, key: str, tags: TagVersions) -> Envelope | None:
        """The entry from the first level that has it, copied into the shared levels above."""
        for index, (level, outage) in enumerate(self.items):
            entry = await self._lookup(level, outage, key, tags)
            if entry is not None:
                await self._backfill(key, entry, index)
                return entry
        return None

    async def _lookup(
        self, level: RemoteLevel, outage: Outage, key: str, tags: TagVersions
    ) -> Envelope | None:
        if not outage.available():
            level.counts.errors += 1
            return None
        await tags.replay()  # a recovered store first learns what it missed
        data = await self.call(outage, level.get_raw(key), MISSING)
        if data is MISSING:  # failed: the error is counted by the level
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

    async def _backfill(self, key: str, entry: Envelope, found_at: int) -> None:
        keep = self.remaining(entry)
        if keep is not None and keep <= 0:
            return
        for level, outage in self.items[:found_at]:
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
