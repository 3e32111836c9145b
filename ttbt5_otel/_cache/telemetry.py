"""Metrics of caches: plain integers on the hot path, observable instruments at collection.

An OpenTelemetry ``counter.add`` costs more than an in-memory cache lookup, so every cache
level keeps its request and eviction counts as plain integers in a ``Counts`` object. One
module-level observable instrument per metric name reports the counts of every live cache
when metrics are collected (``ObservedCounts``). When a cache is garbage collected its
totals stay in the reported sums, so the counters never go backwards. Only the
remote levels (L2, disk) record ``ttbt5.cache.operation.duration`` directly: their
operations cost far more than a histogram update.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from opentelemetry.metrics import (
    CallbackOptions,
    ObservableCounter,
    ObservableUpDownCounter,
    Observation,
)
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._core.observed import ObservedCounts
from ttbt5_otel._core.otel import Lazy, meter
from ttbt5_otel._signals.metrics import histogram

REQUESTS: Final = "ttbt5.cache.requests"
EVICTIONS: Final = "ttbt5.cache.evictions"
ENTRIES: Final = "ttbt5.cache.entries"
DURATION: Final = "ttbt5.cache.operation.duration"
COALESCED: Final = "ttbt5.cache.coalesced"
REASONS: Final = ("size", "expired", "invalidated")


class Counts:
    """Cumulative counts of one cache level (or, for ``coalesced``, one cache)."""

    __slots__ = (
        "__weakref__",
        "coalesced",
        "entries",
        "errors",
        "expired",
        "hits",
        "invalidated",
        "level",
        "misses",
        "name",
        "size",
    )

    def __init__(self, name: str, level: str | None) -> None:
        """Counts for ``cache.name`` ``name`` at ``cache.level`` ``level``."""
        self.name = name
        self.level = level
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.size = 0
        self.expired = 0
        self.invalidated = 0
        self.coalesced = 0
        self.entries: Callable[[], int | None] | None = None


class Observed(Protocol):
    """A cache whose counts are reported."""

    @property
    def counts(self) -> Counts:
        """The cache's counts."""
        ...


def _request_attributes(key: tuple[str, str, str]) -> dict[str, AttributeValue]:
    return {"cache.name": key[0], "cache.level": key[1], "cache.result": key[2]}


def _eviction_attributes(key: tuple[str, str, str]) -> dict[str, AttributeValue]:
    return {"cache.name": key[0], "cache.level": key[1], "cache.eviction.reason": key[2]}


def _coalesced_attributes(key: str) -> dict[str, AttributeValue]:
    return {"cache.name": key}


_requests: ObservedCounts[tuple[str, str, str]] = ObservedCounts(_request_attributes)
_evictions: ObservedCounts[tuple[str, str, str]] = ObservedCounts(_eviction_attributes)
_coalesced: ObservedCounts[str] = ObservedCounts(_coalesced_attributes)
# Only the entries gauge reads live levels; it reports nothing for a collected cache.
_live: weakref.WeakSet[Counts] = weakref.WeakSet()
# Collection copies the set on the exporter's thread while caches are created on others;
# an unguarded copy fails with "set changed size during iteration".
_live_lock = threading.Lock()
_RESULTS: Final = (("hits", "hit"), ("misses", "miss"), ("errors", "error"))


def _observe_entries(options: CallbackOptions) -> Iterable[Observation]:
    del options
    sums: dict[tuple[str, str], int] = {}
    with _live_lock:
        live = list(_live)
    for counts in live:
        if counts.level is None or counts.entries is None:
            continue
        try:
            found = counts.entries()
        except Exception:  # noqa: S112 - a level that cannot count now is left out
            continue
        if found is not None:
            key = (counts.name, counts.level)
            sums[key] = sums.get(key, 0) + found
    return [
        Observation(value, {"cache.name": name, "cache.level": level})
        for (name, level), value in sums.items()
    ]


_Observables = tuple[
    ObservableCounter, ObservableCounter, ObservableCounter, ObservableUpDownCounter
]


def _create() -> _Observables:
    # Once per provider generation; the meter returns registered instruments on repeat, so
    # each callback is registered exactly once per provider.
    current = meter()
    return (
        current.create_observable_counter(
            REQUESTS, [_requests.observe], unit="{request}", description="Cache lookups by result."
        ),
        current.create_observable_counter(
            EVICTIONS, [_evictions.observe], unit="{eviction}", description="Cache evictions."
        ),
        current.create_observable_counter(
            COALESCED,
            [_coalesced.observe],
            unit="{request}",
            description="Callers that joined an in-flight load instead of loading again.",
        ),
        current.create_observable_up_down_counter(
            ENTRIES, [_observe_entries], unit="{entry}", description="Entries held by a cache."
        ),
    )


_observables: Lazy[_Observables] = Lazy(_create)
_duration = histogram(DURATION, unit="s", description="Duration of remote cache operations.")


def ensure_instruments() -> None:
    """Register the observable instruments with the current providers (cheap when done)."""
    try:
        _observables.get()
    except Exception as exc:
        internal_error("cache instruments", exc)


def track(owner: object, counts: Counts) -> None:
    """Report ``counts`` while ``owner`` lives, and keep its totals after it is gone.

    Name and level are read at collection time: a cache names its levels after creating them.
    """
    if counts.level is None:
        _coalesced.track(owner, lambda: [(counts.name, counts.coalesced)])
        ensure_instruments()
        return

    def requests() -> list[tuple[tuple[str, str, str], int]]:
        name, level = counts.name, str(counts.level)
        return [((name, level, result), getattr(counts, f)) for f, result in _RESULTS]

    def evictions() -> list[tuple[tuple[str, str, str], int]]:
        name, level = counts.name, str(counts.level)
        return [((name, level, reason), getattr(counts, reason)) for reason in REASONS]

    _requests.track(owner, requests)
    _evictions.track(owner, evictions)
    with _live_lock:
        _live.add(counts)
    ensure_instruments()


def record_duration(counts: Counts, operation: str, started: float) -> None:
    """Record one remote operation that began at ``time.perf_counter()`` ``started``."""
    try:
        _duration.record(
            time.perf_counter() - started,
            {"cache.name": counts.name, "cache.level": counts.level, "cache.operation": operation},
        )
    except Exception as exc:
        internal_error("cache operation duration", exc)
