"""Counts read at collection time: never backwards, bounded, shared by breakers and caches."""

import gc

from opentelemetry.metrics import CallbackOptions

import ttbt5_otel
from ttbt5_otel._core.limits import set_cardinality_limit
from ttbt5_otel._core.observed import ObservedCounts
from ttbt5_otel.testing import TelemetryCapture


class Owner:
    def __init__(self) -> None:
        self.hits = [0]


def _values(counts: ObservedCounts[str]) -> dict[tuple[tuple[str, object], ...], int | float]:
    return {
        tuple(sorted((o.attributes or {}).items())): o.value
        for o in counts.observe(CallbackOptions())
    }


def test_a_collected_source_keeps_its_counts() -> None:
    counts: ObservedCounts[str] = ObservedCounts(lambda key: {"k": key})
    owner = Owner()
    hits = owner.hits
    counts.track(owner, lambda: [("a", hits[0])])
    hits[0] = 5
    assert _values(counts) == {(("k", "a"),): 5}
    del owner
    gc.collect()
    assert _values(counts) == {(("k", "a"),): 5}
    assert counts._sources == {}, "a collected source is read no more"
    assert _values(counts) == {(("k", "a"),): 5}


def test_direct_counts_past_the_limit_are_overflow() -> None:
    counts: ObservedCounts[str] = ObservedCounts(lambda key: {"k": key})
    set_cardinality_limit(2)
    try:
        for key in ("a", "b", "c", "d", "a"):
            counts.add(key)
        assert _values(counts) == {
            (("k", "a"),): 2,
            (("k", "b"),): 1,
            (("otel.metric.overflow", True),): 2,
        }
    finally:
        set_cardinality_limit(2000)


def test_tracked_sets_past_the_limit_are_overflow_and_stay_monotonic() -> None:
    counts: ObservedCounts[str] = ObservedCounts(lambda key: {"k": key})
    owners = [Owner() for _ in range(3)]
    for name, owner in zip("xyz", owners, strict=True):
        hits = owner.hits
        hits[0] = 1
        counts.track(owner, lambda hits=hits, name=name: [(name, hits[0])])
    set_cardinality_limit(2)
    try:
        first = _values(counts)
        assert first[(("otel.metric.overflow", True),)] == 1
        assert len(first) == 3
        owners[2].hits[0] = 4
        assert _values(counts)[(("otel.metric.overflow", True),)] == 4
        extra = Owner()
        extra.hits[0] = 3
        counts.track(extra, lambda: [("w", extra.hits[0])])
        assert _values(counts)[(("otel.metric.overflow", True),)] == 7, "overflow sums every set"
    finally:
        set_cardinality_limit(2000)


def test_breaker_call_counter_survives_the_breaker(capture_telemetry: TelemetryCapture) -> None:
    """A breaker made per request and then dropped must not take its calls with it."""
    calls = "ttbt5.circuit_breaker.calls"
    attrs = {"circuit_breaker.name": "short-lived", "result": "success"}
    for _ in range(2):
        breaker = ttbt5_otel.CircuitBreaker("short-lived")
        breaker.call(lambda: None)
        breaker.call(lambda: None)
    assert capture_telemetry.counter_value(calls, attrs) == 4
    del breaker
    gc.collect()
    assert capture_telemetry.counter_value(calls, attrs) == 4
