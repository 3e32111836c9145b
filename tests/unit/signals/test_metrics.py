"""``monitor_performance`` and the bounded metric helpers."""

import asyncio
import logging

import pytest

from ttbt5_otel import counter, gauge, histogram, monitor_performance, up_down_counter

DURATION = "ttbt5.operation.duration"


def test_monitor_performance_records_success_and_error(capture_telemetry):
    @monitor_performance
    def work(fail: bool) -> str:
        if fail:
            raise RuntimeError("no")
        return "ok"

    work(False)
    work(False)
    with pytest.raises(RuntimeError):
        work(True)
    fn = work.__qualname__
    assert (
        capture_telemetry.histogram_count(DURATION, {"code.function": fn, "outcome": "success"})
        == 2
    )
    assert (
        capture_telemetry.histogram_count(DURATION, {"code.function": fn, "outcome": "error"}) == 1
    )
    [point] = capture_telemetry.points(DURATION, {"outcome": "success"})
    assert point.unit == "s"
    assert point.explicit_bounds == (
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    )  # fmt: skip
    assert point.attributes["code.namespace"] == __name__


async def test_monitor_performance_async_measures_awaited_time(capture_telemetry):
    @monitor_performance(name="checkout.pay", attributes={"tier": "gold"})
    async def pay() -> None:
        await asyncio.sleep(0.02)

    await pay()
    [point] = capture_telemetry.points(DURATION, {"code.function": "checkout.pay"})
    assert point.attributes["tier"] == "gold"
    assert point.sum >= 0.015


def test_counter_histogram_gauge_helpers(capture_telemetry):
    orders = counter("shop.orders", unit="{order}", description="Orders placed.")
    sizes = histogram("shop.cart.size", unit="{item}")
    depth = gauge("shop.queue.depth", unit="{job}")
    inflight = up_down_counter("shop.inflight", unit="{request}")
    orders.add(1, {"channel": "web"})
    orders.add(2, {"channel": "web"})
    orders.add(1, {"channel": "app"})
    sizes.record(3)
    depth.set(7, {"queue": "a"})
    depth.set(5, {"queue": "a"})
    inflight.add(2)
    inflight.add(-1)
    assert capture_telemetry.counter_value("shop.orders", {"channel": "web"}) == 3
    assert capture_telemetry.counter_value("shop.orders") == 4
    assert capture_telemetry.histogram_sum("shop.cart.size") == 3
    assert capture_telemetry.gauge_value("shop.queue.depth", {"queue": "a"}) == 5
    assert capture_telemetry.counter_value("shop.inflight") == 1


def test_cardinality_limit_overflows_instead_of_growing(capture_telemetry, caplog):
    requests = counter("shop.requests.by_user", cardinality_limit=10)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        for user in range(100):
            requests.add(1, {"user.id": str(user)})
    assert requests.attribute_sets == 10
    sets = capture_telemetry.attribute_sets("shop.requests.by_user")
    assert len(sets) == 11
    assert capture_telemetry.counter_value("shop.requests.by_user") == 100
    assert (
        capture_telemetry.counter_value("shop.requests.by_user", {"otel.metric.overflow": True})
        == 90
    )
    assert sum("exceeded 10 attribute sets" in r.getMessage() for r in caplog.records) == 1


def test_metric_attributes_are_scrubbed(capture_telemetry):
    calls = counter("shop.api.calls")
    calls.add(1, {"api_key": "sk-123", "route": "/pay"})
    [point] = capture_telemetry.points("shop.api.calls")
    assert point.attributes == {"api_key": "[REDACTED]", "route": "/pay"}


def test_metric_attribute_values_holding_credentials_are_scrubbed(capture_telemetry):
    calls = counter("shop.upstream.calls")
    calls.add(1, {"upstream": "https://svc:Up9secretZ@pay.example.com/v1"})
    [point] = capture_telemetry.points("shop.upstream.calls")
    assert point.attributes == {"upstream": "https://[REDACTED]@pay.example.com/v1"}


def test_unhashable_attribute_values_are_accepted(capture_telemetry):
    calls = counter("shop.tagged")
    calls.add(1, {"tags": ["a", "b"]})
    calls.add(1, {"tags": ["a", "b"]})
    assert capture_telemetry.counter_value("shop.tagged") == 2
