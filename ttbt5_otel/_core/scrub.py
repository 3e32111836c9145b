"""Replace values of secret-looking keys before they leave the process.

The match is on the attribute or field *name* (case-insensitive substring), because values
cannot be recognised reliably. A scrubbed value becomes a fixed marker that never echoes any
part of the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

REDACTED: Final = "[REDACTED]"
_MAX_CACHED_KEYS: Final = 10_000

DEFAULT_SECRET_PATTERNS: Final[tuple[str, ...]] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "auth_header",
    "cookie",
    "session",
    "credential",
    "private_key",
    "set-cookie",
    "x-api-key",
)


class Scrubber:
    """Decides which keys are secret and rewrites mappings accordingly."""

    __slots__ = ("_allow", "_cache", "_regex")

    def __init__(
        self, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS, allow: Iterable[str] = ()
    ) -> None:
        """Match any of ``patterns`` inside a key, ignoring case; never the exact ``allow`` keys."""
        unique = sorted({p.strip() for p in patterns if p.strip()})
        joined = "|".join(re.escape(p) for p in unique) or r"(?!)"  # pragma: no mutate
        self._regex = re.compile(joined, re.IGNORECASE)
        self._allow = frozenset(allow)
        self._cache: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        """True when ``key`` looks like it names a secret."""
        # The cache only saves the regex search: not a behaviour, so not mutated.
        hit = self._cache.get(key)  # pragma: no mutate
        if hit is None:
            hit = key not in self._allow and self._regex.search(key) is not None
            if len(self._cache) < _MAX_CACHED_KEYS:
                self._cache[key] = hit  # pragma: no mutate
        return hit

    def scrub(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of ``mapping`` with secret-looking values replaced."""
        return {k: (REDACTED if self.is_secret(k) else v) for k, v in mapping.items()}

    def needs_scrub(self, mapping: Mapping[str, Any]) -> bool:
        """True when at least one key of ``mapping`` is secret-looking."""
        return any(self.is_secret(k) for k in mapping)


_active = Scrubber()


def active_scrubber() -> Scrubber:
    """The process-wide scrubber (configured by ``init``)."""
    return _active


def configure_scrubber(extra_patterns: Iterable[str] = (), allow: Iterable[str] = ()) -> Scrubber:
    """Install a scrubber with the default patterns plus ``extra_patterns``, minus ``allow``."""
    global _active  # noqa: PLW0603 - one process-wide policy, swapped atomically
    _active = Scrubber((*DEFAULT_SECRET_PATTERNS, *extra_patterns), allow)
    return _active
