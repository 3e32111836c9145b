"""Overhead of ttbt5_otel's decorators and helpers against the raw OpenTelemetry SDK.

Both sides run in one process on the same providers (batch span processor and batch log
processor to exporters that drop everything, an in-memory metric reader), interleaved, and the
best of several repeats is kept, so the ratio compares the instrumentation code only.

    python benchmarks/bench_core.py [--number N] [--repeat R]
"""

from __future__ import annotations

import argparse
import logging
import time
import timeit
import warnings
from collections.abc import Callable, Sequence

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

TARGETS = {"traced": 1.10, "span": 1.10, "monitor_performance": 1.10, "counter": 1.10,
           "histogram": 1.10, "logging bridge": 1.15}  # fmt: skip


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[object]) -> SpanExportResult:  # type: ignore[override]
        return SpanExportResult.SUCCESS


class DropLogs(LogRecordExporter):
    def export(self, batch: Sequence[object]) -> LogRecordExportResult:  # type: ignore[override]
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def install() -> tuple[TracerProvider, LoggerProvider]:
    resource = Resource.create({"service.name": "bench"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(DropSpans(), max_queue_size=1 << 20))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[InMemoryMetricReader()])
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(DropLogs(), max_queue_size=1 << 20)
    )
    _logs.set_logger_provider(logger_provider)
    return tracer_provider, logger_provider


def best(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def compare(
    label: str,
    raw: Callable[[], object],
    ours: Callable[[], object],
    number: int,
    repeat: int,
    switches: tuple[Callable[[], None], Callable[[], None]] | None = None,
) -> float:
    """Best time per call of each side, interleaved; ``switches`` prepare each side's turn."""
    # Interleave the two sides so drift (thermal, other load) hits both alike.
    raw_times, our_times = [], []
    for _ in range(repeat):
        if switches:
            switches[0]()
        raw_times.append(best(raw, number, 1))
        if switches:
            switches[1]()
        our_times.append(best(ours, number, 1))
    raw_best, our_best = min(raw_times), min(our_times)
    ratio = our_best / raw_best
    target = TARGETS[label]
    verdict = "ok" if ratio <= target else "OVER TARGET"
    print(
        f"{label:<20} raw {raw_best * 1e6:8.2f} us   ttbt5 {our_best * 1e6:8.2f} us   "
        f"ratio {ratio:5.2f}x  (target <= {target:.2f}x, {verdict})"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tracer_provider, logger_provider = install()

    import ttbt5_otel  # noqa: PLC0415 - after the providers exist, like an app after init()
    from ttbt5_otel._signals import log_bridge  # noqa: PLC0415

    tracer = trace.get_tracer("bench")
    meter = metrics.get_meter("bench")
    code = {"code.function": "work", "code.namespace": __name__}

    def raw_traced() -> int:
        with tracer.start_as_current_span("work", attributes=code):
            return 1

    @ttbt5_otel.traced(name="work")
    def work() -> int:
        return 1

    def raw_span() -> None:
        with tracer.start_as_current_span("block", attributes={"cart_size": 3}):
            pass

    def our_span() -> None:
        with ttbt5_otel.span("block", cart_size=3):
            pass

    raw_histogram = meter.create_histogram("bench.raw.duration", unit="s")
    ok_attrs = {**code, "outcome": "success"}

    def plain() -> int:
        return 1

    def raw_monitor() -> int:
        start = time.perf_counter()
        try:
            return plain()
        finally:
            raw_histogram.record(time.perf_counter() - start, ok_attrs)

    monitored = ttbt5_otel.monitor_performance(plain)

    raw_counter = meter.create_counter("bench.raw.requests")
    our_counter = ttbt5_otel.counter("bench.ours.requests")
    attrs = {"http.route": "/pay", "http.response.status_code": 200}
    raw_hist2 = meter.create_histogram("bench.raw.size", unit="By")
    our_hist2 = ttbt5_otel.histogram("bench.ours.size", unit="By")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from opentelemetry.sdk._logs import LoggingHandler  # noqa: PLC0415

        raw_handler = LoggingHandler(logger_provider=logger_provider)
    raw_logger = logging.getLogger("bench.raw")
    raw_logger.addHandler(raw_handler)
    raw_logger.propagate = False
    raw_logger.setLevel(logging.INFO)
    # The bridge is process-wide (it wraps Logger.callHandlers): it is switched on for the
    # ttbt5 side's turns only, so the raw side pays nothing for it.
    bridge = log_bridge.install_bridge("INFO")
    with_bridge = logging.Logger.callHandlers
    without_bridge = log_bridge._ORIGINAL_CALL_HANDLERS  # noqa: SLF001

    def raw_turn() -> None:
        logging.Logger.callHandlers = without_bridge  # type: ignore[method-assign]

    def our_turn() -> None:
        logging.Logger.callHandlers = with_bridge  # type: ignore[method-assign]

    our_logger = logging.getLogger("bench.ours")
    our_logger.propagate = False
    our_logger.setLevel(logging.INFO)

    n, r = args.number, args.repeat
    print(f"best of {r} x {n} calls, per call; ratio = ttbt5 / raw OpenTelemetry SDK")
    ratios = [
        compare("traced", raw_traced, work, n, r),
        compare("span", raw_span, our_span, n, r),
        compare("monitor_performance", raw_monitor, monitored, n, r),
        compare(
            "counter", lambda: raw_counter.add(1, attrs), lambda: our_counter.add(1, attrs), n, r
        ),
        compare(
            "histogram",
            lambda: raw_hist2.record(5, attrs),
            lambda: our_hist2.record(5, attrs),
            n,
            r,
        ),
        compare(
            "logging bridge",
            lambda: raw_logger.info("order %s", "o-1"),
            lambda: our_logger.info("order %s", "o-1"),
            max(n // 4, 1),
            r,
            (raw_turn, our_turn),
        ),
    ]
    our_turn()
    log_bridge.remove_bridge(bridge)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    over = [label for label, ratio in zip(TARGETS, ratios, strict=True) if ratio > TARGETS[label]]
    print("all within target" if not over else f"over target: {', '.join(over)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
