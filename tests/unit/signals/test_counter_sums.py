"""``counter()`` keeps plain sums and reports them as a monotonic cumulative OTLP sum."""

import logging
import os
import threading

from ttbt5_otel import counter
from ttbt5_otel._signals import metrics as _metrics


def test_reported_as_a_sum_with_its_unit(capture_telemetry):
    """Exporters see what an SDK counter would give them: a sum point per attribute set."""
    orders = counter("shop.orders.placed", unit="{order}", description="Orders placed.")
    orders.add(2, {"channel": "web"})
    orders.add(1.5, {"channel": "web"})
    [point] = capture_telemetry.points("shop.orders.placed")
    assert point.is_sum
    assert point.unit == "{order}"
    assert point.value == 3.5
    orders.add(1, {"channel": "web"})
    assert capture_telemetry.counter_value("shop.orders.placed", {"channel": "web"}) == 4.5


def test_two_counters_of_one_name_add_to_one_series(capture_telemetry):
    """As two SDK counters of one name share their stream."""
    first, second = counter("shop.retries"), counter("shop.retries")
    first.add(1)
    second.add(2)
    first.add(3, {"kind": "x"})
    second.add(4, {"kind": "x"})
    [bare] = [p for p in capture_telemetry.points("shop.retries") if not p.attributes]
    assert bare.value == 3
    assert capture_telemetry.counter_value("shop.retries", {"kind": "x"}) == 7
    assert len(capture_telemetry.attribute_sets("shop.retries")) == 2


def test_negative_amounts_are_ignored_with_one_warning(capture_telemetry, caplog):
    """A monotonic counter cannot go down; the call is dropped, as the SDK drops it."""
    payments = counter("shop.payments")
    payments.add(5)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        payments.add(-2)
        payments.add(-3)
    assert capture_telemetry.counter_value("shop.payments") == 5
    assert sum("ignores negative amounts" in r.getMessage() for r in caplog.records) == 1


def test_concurrent_adds_are_all_counted(capture_telemetry):
    """Eight threads adding at once lose nothing: each add holds the sums' lock."""
    hits = counter("shop.hits")

    def hammer() -> None:
        for index in range(5_000):
            hits.add(1, {"shard": str(index % 3)})

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert capture_telemetry.counter_value("shop.hits") == 40_000


def test_a_forked_child_goes_on_from_its_parents_totals(capture_telemetry):
    """As an SDK counter does: a cumulative sum never goes down, so no negative delta."""
    jobs = counter("shop.jobs")
    jobs.add(7)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which reports through the pipe
        try:
            jobs.add(2)
            totals = [total for _, total in jobs._sums.totals.values()]
            os.write(write, repr(totals).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        assert pipe.read() == "[9]"
    os.waitpid(child, 0)
    assert capture_telemetry.counter_value("shop.jobs") == 7


def test_a_new_provider_generation_keeps_reporting(capture_telemetry):
    """After providers change, adds made before and after reach the observable of the day."""
    visits = counter("shop.visits")
    visits.add(4)
    assert capture_telemetry.counter_value("shop.visits") == 4
    _metrics._State.generation += 1
    try:
        visits.add(1)
        other = counter("shop.visits")
        other.add(2)
        assert other._sums is visits._sums
        assert capture_telemetry.counter_value("shop.visits") == 7
        assert all(key[0] == _metrics._State.generation for key in _metrics._observed)
    finally:
        _metrics._State.generation -= 1


def test_counter_objects_of_one_name_share_their_attribute_sets():
    """Creating a counter per call does not grow the sums: one limiter per name."""
    for _ in range(1_000):
        counter("shop.per.call").add(1, {"route": "/pay"})
    assert len(_metrics._sums_by_name["shop.per.call"].totals) == 1
    last = counter("shop.per.call")
    last.add(1, {"route": "/pay"})
    assert last.attribute_sets == 1
