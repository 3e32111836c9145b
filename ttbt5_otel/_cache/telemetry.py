"""Metrics of caches: plain integers on the hot path, observable instruments at collection.

An OpenTelemetry ``counter.add`` costs more than an in-memory cache lookup, so every cache
level keeps its request and eviction counts as plain integers in a ``Counts`` object. One
module-level observable instrument per metric name reports the counts of every live cache
(a ``weakref.WeakSet``) when metrics are collected. When a cache is garbage collected its
totals move to a retired table, so the reported counters never go backwards. Only the
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

from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._core.otel import Lazy, meter
from ttbt5_otel._signals.metrics import histogram

REQUESTS: Final = "ttbt5.cache.requests"
EVICTIONS: Final = "ttbt5.cache.evictions"
ENTRIES: Final = "ttbt5.cache.entries"
DURATION: Final = "ttbt5.cache.operation.duration"
COALESCED: Final = "ttbt5.cache.coalesced"
REASONS: Final = ("size", "expired", "invalidated")
_FIELDS: Final = ("hits", "misses", "errors", "size", "expired", "invalidated", "coalesced")


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

    def snapshot(self) -> dict[str, int]:
        """Every count by field name."""
        return {field: getattr(self, field) for field in _FIELDS}


class Observed(Protocol):
    """A cache whose counts are reported."""

    @property
    def counts(self) -> Counts:
        """The cache's counts."""
        ...


_live: weakref.WeakSet[Counts] = weakref.WeakSet()
_retired: dict[tuple[str, str | None], dict[str, int]] = {}
_lock = threading.Lock()


def _retire(counts: Counts) -> None:
    with _lock:
        _live.discard(counts)
        totals = _retired.setdefault((counts.name, counts.level), dict.fromkeys(_FIELDS, 0))
        for field, value in counts.snapshot().items():
            totals[field] += value


def _totals() -> dict[tuple[str, str | None], dict[str, int]]:
    with _lock:
        totals = {key: dict(values) for key, values in _retired.items()}
        live = list(_live)
    for counts in live:
        into = totals.setdefault((counts.name, counts.level), dict.fromkeys(_FIELDS, 0))
        for field, value in counts.snapshot().items():
            into[field] += value
    return totals


def _observe_requests(options: CallbackOptions) -> Iterable[Observation]:
    del options
    return [
        Observation(values[field], {"cache.name": name, "cache.level": level, "cache.result": r})
        for (name, level), values in _totals().items()
        if level is not None
        for field, r in (("hits", "hit"), ("misses", "miss"), ("errors", "error"))
    ]


def _observe_evictions(options: CallbackOptions) -> Iterable[Observation]:
    del options
    return [
        Observation(
            values[reason],
            {"cache.name": name, "cache.level": level, "cache.eviction.reason": reason},
        )
        for (name, level), values in _totals().items()
        if level is not None
        for reason in REASONS
    ]


def _observe_coalesced(options: CallbackOptions) -> Iterable[Observation]:
    del options
    return [
        Observation(values["coalesced"], {"cache.name": name})
        for (name, level), values in _totals().items()
        if level is None
    ]


def _observe_entries(options: CallbackOptions) -> Iterable[Observation]:
    del options
    sums: dict[tuple[str, str], int] = {}
    for counts in list(_live):
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
            REQUESTS, [_observe_requests], unit="{request}", description="Cache lookups by result."
        ),
        current.create_observable_counter(
            EVICTIONS, [_observe_evictions], unit="{eviction}", description="Cache evictions."
        ),
        current.create_observable_counter(
            COALESCED,
            [_observe_coalesced],
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
    """Report ``counts`` while ``owner`` lives, and keep its totals after it is gone."""
    with _lock:
        _live.add(counts)
    weakref.finalize(owner, _retire, counts)
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
