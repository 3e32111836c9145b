"""Cumulative counts kept as plain integers and reported by an observable counter.

An SDK ``counter.add`` costs microseconds, more than a cache hit or a closed breaker, so
hot paths increment plain integers and one observable counter per metric reports them when
metrics are collected. ``ObservedCounts`` is that mechanism, written once:

* a *source* is an object's integer counts, tracked while its owner lives; when the owner is
  garbage collected its last totals move to a retired table, so a cumulative counter never
  goes backwards;
* ``add`` counts directly into the table, for counts that belong to no object;
* at most ``cardinality_limit()`` attribute sets are reported; later sets are summed under
  ``otel.metric.overflow=true``. Admitted sets stay admitted, so every reported series is
  monotonic, the overflow series included.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Final, Generic, TypeVar

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.limits import OVERFLOW_ATTRIBUTES, cardinality_limit

K = TypeVar("K", bound=Hashable)
_OVERFLOW: Final = object()


class ObservedCounts(Generic[K]):
    """The cumulative counts behind one observable counter, keyed by attribute set."""

    def __init__(self, attributes: Callable[[K], Mapping[str, AttributeValue]]) -> None:
        """Report key ``k`` with the attribute set ``attributes(k)``."""
        self._attributes = attributes
        self._lock = threading.Lock()
        self._sources: dict[int, Callable[[], Iterable[tuple[K, int]]]] = {}
        self._settled: dict[object, int] = {}
        self._admitted: set[object] = set()
        self._tokens = itertools.count()

    def add(self, key: K, amount: int = 1) -> None:
        """Count ``amount`` under ``key``; a new key past the limit counts as overflow."""
        with self._lock:
            settled = self._settled
            if key in settled:
                settled[key] += amount
            elif len(settled) < cardinality_limit():
                settled[key] = amount
            else:
                settled[_OVERFLOW] = settled.get(_OVERFLOW, 0) + amount

    def track(self, owner: object, read: Callable[[], Iterable[tuple[K, int]]]) -> None:
        """Report what ``read()`` returns while ``owner`` lives, and keep it afterwards.

        ``read`` must not refer to ``owner``, or the owner would never be collected.
        """
        token = next(self._tokens)
        with self._lock:
            self._sources[token] = read
        weakref.finalize(owner, self._retire, token)

    def _retire(self, token: int) -> None:
        with self._lock:
            read = self._sources.pop(token, None)
            if read is None:
                return
            for key, value in read():
                self._settled[key] = self._settled.get(key, 0) + value

    def totals(self) -> dict[object, int]:
        """Every key's cumulative count, live sources included, before the limit."""
        with self._lock:
            totals = dict(self._settled)
            reads = list(self._sources.values())
        for read in reads:
            for key, value in read():
                totals[key] = totals.get(key, 0) + value
        return totals

    def observe(self, options: CallbackOptions) -> list[Observation]:
        """The observable counter's callback."""
        del options
        limit = cardinality_limit()
        observations = []
        overflow = 0
        for key, value in self.totals().items():
            if key is not _OVERFLOW and (key in self._admitted or len(self._admitted) < limit):
                self._admitted.add(key)
                observations.append(Observation(value, self._attributes(key)))  # type: ignore[arg-type]
            else:
                overflow += value
        if overflow:
            observations.append(Observation(overflow, OVERFLOW_ATTRIBUTES))
        return observations
