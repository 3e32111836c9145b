"""Cache levels and the envelope every hierarchical entry is stored in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class CacheLevel(StrEnum):
    """A level of a ``HierarchicalCache``; the value is the ``cache.level`` attribute."""

    L1 = "l1"
    """In-process memory (``MemoryCache``)."""
    L2 = "l2"
    """Shared Redis (``RedisCache``)."""
    DISK = "disk"
    """Local disk (``DiskCache``)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""Marks a miss, so that ``None`` can be cached like any other value."""


@dataclass(slots=True)
class Envelope:
    """A cached value with what is needed to decide whether it may still be served.

    ``tags`` holds the shared version of each tag when the entry was written, ``local`` the
    in-process epoch of each tag (so an invalidation made while the shared store was
    unreachable still hides the entry in this process). ``fresh_until`` and ``expires`` are
    wall-clock times (``None``: never), shared across processes through L2.
    """

    value: Any
    tags: dict[str, int]
    local: dict[str, int]
    fresh_until: float | None
    expires: float | None

    def to_wire(self) -> dict[str, Any]:
        """The part stored in shared levels (local epochs mean nothing elsewhere)."""
        return {"v": self.value, "t": self.tags, "f": self.fresh_until, "x": self.expires}

    @classmethod
    def from_wire(cls, data: Any, local: dict[str, int]) -> Envelope:
        """Rebuild an envelope read from a shared level; ``ValueError`` if malformed."""
        if not isinstance(data, dict) or "v" not in data:
            raise ValueError("not a cache envelope")
        tags = data.get("t") or {}
        fresh, expires = data.get("f"), data.get("x")
        if not isinstance(tags, dict) or not all(isinstance(v, int) for v in tags.values()):
            raise ValueError("malformed tag versions")
        if not (fresh is None or isinstance(fresh, int | float)) or not (
            expires is None or isinstance(expires, int | float)
        ):
            raise ValueError("malformed expiry")
        return cls(data["v"], tags, local, fresh, expires)
