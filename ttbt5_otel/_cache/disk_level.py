"""The disk level (extra ``disk``): diskcache, without pickle, off the event loop.

diskcache pickles any value that is not ``bytes``, ``str``, ``int`` or ``float``, and
unpickles whatever rows say they are pickled. This level stores only the serializer's bytes,
through a ``Disk`` that refuses to pickle or unpickle, so a tampered cache directory cannot
run code. diskcache calls block, so each one runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.serialization import Serializer
from ttbt5_otel._cache.store import RemoteLevel, as_int
from ttbt5_otel._exceptions import CacheConfigError, CacheError

try:
    import diskcache
except ImportError:  # pragma: no cover - depends on the installed extras
    diskcache = None

DEFAULT_SIZE_LIMIT = 256 * 1024 * 1024


def _no_pickle_disk() -> type[Any]:
    assert diskcache is not None

    class NoPickleDisk(diskcache.Disk):  # type: ignore[misc]
        """A diskcache ``Disk`` that never pickles or unpickles values."""

        def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
            if not read and not isinstance(value, bytes | str | int | float):
                raise CacheError(f"disk level stores bytes only, got {type(value).__qualname__}")
            return super().store(value, read, key=key)

        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode == diskcache.core.MODE_PICKLE:
                raise CacheError("disk level refuses to unpickle a stored value")
            return super().fetch(mode, filename, value, read)

    return NoPickleDisk


class DiskCache(RemoteLevel):
    """A size-bounded disk cache level on diskcache (needs the ``disk`` extra).

    Args:
        directory: where the cache lives (created if missing).
        size_limit: bytes on disk before diskcache culls old entries.
        serializer: ``JsonSerializer()`` (default) or ``PickleSerializer()`` (see its
            warning).
        name: the ``cache.name`` attribute; a ``HierarchicalCache`` names unnamed levels.
    """

    level: ClassVar[CacheLevel] = CacheLevel.DISK

    def __init__(
        self,
        directory: str | Path,
        *,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        serializer: Serializer | None = None,
        name: str | None = None,
    ) -> None:
        """Open (or create) the cache in ``directory``."""
        if diskcache is None:  # pragma: no cover - depends on the installed extras
            raise CacheConfigError("DiskCache needs diskcache: pip install 'ttbt5-otel[disk]'")
        if size_limit <= 0:
            raise CacheConfigError(f"size_limit: must be positive, got {size_limit}")
        super().__init__(name, serializer)
        try:
            self.store = diskcache.Cache(
                str(directory), size_limit=size_limit, disk=_no_pickle_disk()
            )
        except (sqlite3.DatabaseError, OSError) as exc:
            raise CacheConfigError(
                f"disk cache {name or '(unnamed)'!r} at {directory} cannot be opened: {exc} "
                "(a damaged cache can be deleted; it only holds copies)"
            ) from exc

    def entry_count(self) -> int | None:
        """Rows in the cache, tag versions included (diskcache keeps the count)."""
        return len(self.store)

    async def _get(self, key: str) -> bytes | None:
        value = await asyncio.to_thread(self.store.get, "e:" + key)
        return None if value is None else bytes(value)

    async def _set(self, key: str, data: bytes, ttl: float | None) -> None:
        await asyncio.to_thread(self.store.set, "e:" + key, data, expire=ttl)

    async def _delete(self, key: str) -> bool:
        return bool(await asyncio.to_thread(self.store.delete, "e:" + key))

    async def _clear(self) -> None:
        await asyncio.to_thread(self._clear_entries)

    def _clear_entries(self) -> None:
        for key in list(self.store.iterkeys()):
            if isinstance(key, str) and key.startswith("e:"):
                self.store.delete(key)

    async def _versions(self, tags: Sequence[str]) -> dict[str, int]:
        return await asyncio.to_thread(
            lambda: {tag: as_int(self.store.get("t:" + tag)) for tag in tags}
        )

    async def _bump(self, tags: Sequence[str]) -> None:
        await asyncio.to_thread(lambda: [self.store.incr("t:" + tag) for tag in tags])

    async def close(self) -> None:
        """Close the database connections."""
        await asyncio.to_thread(self.store.close)
