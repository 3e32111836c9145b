"""Tag versions: a counter per tag in the shared store, plus a local epoch per tag.

See the ``_hierarchical`` module docstring for the scheme and why it was chosen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ttbt5_otel._cache.entry import Envelope
from ttbt5_otel._cache.outage import Outage
from ttbt5_otel._cache.store import RemoteLevel

UNVERIFIED: Final = -1
"""Version recorded when the store could not be read: no current version ever matches it, so
the entry is dropped as soon as the store can be asked again."""


class TagVersions:
    """Current tag versions of one cache, read from its shared store (if any)."""

    __slots__ = ("_clock", "_local", "_pending", "_recent", "_reuse", "_store", "_strict")

    def __init__(
        self,
        store: tuple[RemoteLevel, Outage] | None,
        reuse: float,
        strict: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Versions kept in ``store`` (``None``: in this process only)."""
        self._store = store
        self._reuse = reuse
        self._strict = strict
        self._clock = clock
        self._local: dict[str, int] = {}
        self._pending: set[str] = set()
        self._recent: dict[str, tuple[int, float]] = {}

    def local_snapshot(self, tags: Iterable[str]) -> dict[str, int]:
        """This process's epoch of each tag."""
        local = self._local
        return {tag: local.get(tag, 0) for tag in tags}

    def valid_locally(self, entry: Envelope) -> bool:
        """No invalidation in this process since ``entry`` was written."""
        local = self._local
        return all(local.get(tag, 0) == epoch for tag, epoch in entry.local.items())

    async def valid(self, entry: Envelope) -> bool:
        """No invalidation anywhere since ``entry`` was written (as far as can be known)."""
        if not self.valid_locally(entry):
            return False
        if self._store is None or not entry.tags:
            return True
        current = await self.current(entry.tags)
        if current is None:  # store unreachable: keep serving what this process has
            return True
        return all(current.get(tag, 0) == version for tag, version in entry.tags.items())

    async def current(self, tags: Iterable[str]) -> dict[str, int] | None:
        """Versions in the store, or ``None`` when it cannot be read now."""
        assert self._store is not None
        wanted = list(tags)
        if self._reuse > 0:
            now = self._clock()
            recent = self._recent
            hits = {t: recent[t][0] for t in wanted if t in recent and recent[t][1] > now}
            if len(hits) == len(wanted):
                return hits
        level, outage = self._store
        if not outage.available():
            return None
        await self.replay()
        started = outage.now()
        try:
            versions = await level.tag_versions(wanted)
        except Exception as exc:
            outage.failed(exc)
            if self._strict:
                raise
            return None
        outage.succeeded(started)
        if self._reuse > 0:
            until = self._clock() + self._reuse
            self._recent.update((t, (v, until)) for t, v in versions.items())
        return versions

    async def snapshot(self, tags: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Shared versions and local epochs of ``tags``, taken before a value is loaded."""
        wanted = [tags] if isinstance(tags, str) else list(dict.fromkeys(tags))
        local = self.local_snapshot(wanted)
        if self._store is None or not wanted:
            return {}, local
        current = await self.current(wanted)
        if current is None:
            return dict.fromkeys(wanted, UNVERIFIED), local
        return current, local

    async def bump(self, tags: Iterable[str]) -> None:
        """Invalidate ``tags``: here at once, in the store now or once it is reachable."""
        wanted = list(dict.fromkeys(tags))
        for tag in wanted:
            self._local[tag] = self._local.get(tag, 0) + 1
            self._recent.pop(tag, None)
        if self._store is None or not wanted:
            return
        self._pending.update(wanted)
        await self.replay()

    async def replay(self) -> None:
        """Send invalidations the store missed while unreachable (no-op when none)."""
        if not self._pending:
            return
        assert self._store is not None
        level, outage = self._store
        if not outage.available():
            return
        tags = sorted(self._pending)
        started = outage.now()
        try:
            await level.bump_tags(tags)
        except Exception as exc:
            outage.failed(exc)
            if self._strict:
                raise
            return
        outage.succeeded(started)
        self._pending.difference_update(tags)

    @property
    def pending(self) -> Mapping[str, int]:
        """Local epochs of tags whose invalidation has not reached the store yet."""
        return {tag: self._local.get(tag, 0) for tag in self._pending}
