"""Outage tracking of a remote level: one log line per outage, skip it until a retry.

While a level is down, calling it on every request would add its timeout to each one. So
after a failure the level is skipped (reads count as errors) until ``retry_interval`` has
passed; the next call then probes it. The first failure of an outage logs a warning, the
first success afterwards logs that it recovered; nothing is logged in between.

A ``Busy`` failure is not an outage: the level answered nothing because this process had no
free connection to it in time (its own load), not because the level is unreachable. It is
counted as an error like any failure and the caller falls through, but it neither starts
nor extends an outage, so a burst of callers cannot make a healthy level flap between
"unavailable" and "recovered" (and skip it for ``retry_interval`` in between).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from ttbt5_otel._core.guard import own_logger

LOG: Final = own_logger("ttbt5_otel.cache")


class Busy(Exception):  # noqa: N818 - named for what it means to the outage tracking
    """A level operation gave up because every connection stayed busy until its deadline.

    Raised by a level (``RedisCache``) instead of a timeout when the time went to waiting
    for this process's own connections rather than to the level failing to answer.
    """


class Outage:
    """Whether one level of one cache is usable now."""

    __slots__ = ("_clock", "_retry_at", "cache", "down_since", "level", "retry_interval")

    def __init__(
        self,
        cache: str,
        level: str,
        retry_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Track level ``level`` of cache ``cache``; probe again ``retry_interval`` s later."""
        self.cache = cache
        self.level = level
        self.retry_interval = retry_interval
        self._clock = clock
        self.down_since: float | None = None
        self._retry_at = 0.0

    def available(self) -> bool:
        """Whether to call the level now (it is up, or it is time to probe it)."""
        return self.down_since is None or self._clock() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        """The level failed: start (or extend) the outage; log only when it starts.

        A ``Busy`` failure is ignored here (see the module docstring).
        """
        if isinstance(exc, Busy):
            return
        now = self._clock()
        self._retry_at = now + self.retry_interval
        if self.down_since is None:
            self.down_since = now
            LOG.warning(
                "cache %r: level %s unavailable (%s: %s); serving from the other levels and "
                "the loader, retrying every %.3gs",
                self.cache,
                self.level,
                type(exc).__name__,
                exc,
                self.retry_interval,
                extra={"cache.name": self.cache, "cache.level": self.level},
            )

    def now(self) -> float:
        """This tracker's clock; taken when an operation starts, for ``succeeded``."""
        return self._clock()

    def succeeded(self, started: float | None = None) -> None:
        """The level answered: end the outage, if there was one.

        An operation that ``started`` before the outage began proves nothing about the
        level now (its answer was on the way before the failure), so it ends nothing.
        """
        if self.down_since is not None and (started is None or started >= self.down_since):
            LOG.info(
                "cache %r: level %s recovered after %.3gs",
                self.cache,
                self.level,
                self._clock() - self.down_since,
                extra={"cache.name": self.cache, "cache.level": self.level},
            )
            self.down_since = None
