"""The metric contract of docs/metrics.md, written out: names, units, attribute keys, buckets.

Dashboards, alert rules and users' queries depend on these exact strings, so they are
spelled here rather than imported from the code that emits them: renaming a metric, its
unit or a label in the code fails this test.
"""

import asyncio

import pytest

import ttbt5_otel
from ttbt5_otel._core.otel import bump_generation
from ttbt5_otel.testing import TelemetryCapture

SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip
CONTRACT = {
    # name: (unit, attribute keys)
    "ttbt5.operation.duration": ("s", {"code.function", "code.namespace", "outcome"}),
    "ttbt5.errors": ("{error}", {"error.type", "error.severity", "error.category"}),
    "ttbt5.cache.requests": ("{request}", {"cache.name", "cache.level", "cache.result"}),
    "ttbt5.cache.evictions": (
        "{eviction}",
        {"cache.name", "cache.level", "cache.eviction.reason"},
    ),
    "ttbt5.cache.entries": ("{entry}", {"cache.name", "cache.level"}),
    "ttbt5.cache.coalesced": ("{request}", {"cache.name"}),
    "ttbt5.retry.calls": ("{call}", {"retry.name", "retry.outcome"}),
    "ttbt5.retry.attempts": ("{attempt}", {"retry.name"}),
    "ttbt5.circuit_breaker.state": (
        "{state}",
        {"circuit_breaker.name", "circuit_breaker.state"},
    ),
    "ttbt5.circuit_breaker.transitions": (
        "{transition}",
        {"circuit_breaker.name", "from", "to"},
    ),
    "ttbt5.circuit_breaker.calls": ("{call}", {"circuit_breaker.name", "result"}),
}


@pytest.fixture
def emitted(capture_telemetry: TelemetryCapture) -> TelemetryCapture:
    """Every metric of the contract, emitted once through the public API."""
    # Instruments are created once per provider generation; a new generation makes this
    # test create them again, so it also checks how they are declared.
    bump_generation()

    @ttbt5_otel.monitor_performance
    def work() -> int:
        return 1

    work()

    @ttbt5_otel.handle_errors(fallback=None)
    def fails() -> None:
        raise ValueError("bad")

    fails()
    cache = ttbt5_otel.HierarchicalCache.from_levels(
        name="contract", l1=ttbt5_otel.MemoryCache(1, name="contract")
    )

    @ttbt5_otel.cached(cache, ttl=60)
    async def load(key: str) -> str:
        return key

    async def use() -> None:
        await load("a")
        await load("a")
        await load("b")  # evicts "a": the memory level holds one entry

    asyncio.run(use())
    attempts: list[int] = []

    @ttbt5_otel.retry(name="contract", attempts=2, wait=None)
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("once")

    flaky()
    breaker = ttbt5_otel.CircuitBreaker("contract", failure_threshold=1)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    return capture_telemetry


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_metric_has_its_documented_unit_and_attributes(emitted: TelemetryCapture, name: str):
    unit, keys = CONTRACT[name]
    # Overflow points (from other tests' cardinality checks) carry only the overflow marker.
    points = [p for p in emitted.points(name) if "otel.metric.overflow" not in p.attributes]
    assert points, f"{name} was not emitted"
    for point in points:
        assert point.unit == unit, name
        assert keys <= set(point.attributes), (name, dict(point.attributes))


def test_seconds_histograms_use_the_seconds_buckets(emitted: TelemetryCapture):
    points = emitted.points("ttbt5.operation.duration")
    assert points
    assert {point.explicit_bounds for point in points} == {SECONDS_BUCKETS}


def test_attempts_histogram_uses_small_integer_buckets(emitted: TelemetryCapture):
    [point] = emitted.points("ttbt5.retry.attempts", {"retry.name": "contract"})
    assert point.explicit_bounds == (1, 2, 3, 4, 5, 7, 10)
    assert (point.count, point.sum) == (1, 2)


def test_cache_results_and_eviction_reasons_are_the_documented_words(emitted: TelemetryCapture):
    results = {s["cache.result"] for s in emitted.attribute_sets("ttbt5.cache.requests")}
    assert results == {"hit", "miss", "error"}
    reasons = {s["cache.eviction.reason"] for s in emitted.attribute_sets("ttbt5.cache.evictions")}
    assert reasons == {"size", "expired", "invalidated"}
    outcomes = {s.get("retry.outcome") for s in emitted.attribute_sets("ttbt5.retry.calls")}
    assert "success_with_retry" in outcomes
    states = {
        s["circuit_breaker.state"] for s in emitted.attribute_sets("ttbt5.circuit_breaker.state")
    }
    assert states == {"closed", "open", "half_open"}
