"""Delivery accounting: every span, log record and metric point ends up exported or counted.

The SDK's batch processors count only queue overflow, and only when a variable that also
taxes every span is set; an export that fails after its retries, and whatever is still
queued when the exit budget runs out, vanish without a trace. The ledger here closes those
holes. Per signal it keeps plain integers (no instrument call on the export path):

- ``otel.sdk.processor.{span,log}.processed``: items the processor handed to the exporter,
  and items it dropped, with ``error.type``: ``queue_full`` (the queue was at its bound),
  ``already_shutdown`` (emitted after shutdown), ``timeout`` (still queued or in flight when
  the shutdown budget ran out);
- ``otel.sdk.exporter.{span,log,metric_data_point}.exported``: items whose export finished,
  with ``error.type="export_failed"`` when the exporter gave up on them. With the disk spool
  on, a stored item counts once it is resent; one the spool evicts to stay under its cap is
  dropped with ``error.type="spool_full"``.

So, for each signal, emitted = delivered + the sum of the ``error.type`` counts, and a
collector outage shows up as exactly the items it cost. Observable instruments read the
integers when metrics are collected, as the SDK's own self-metrics do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ttbt5_otel._sdk.forwarding import ForwardingMetricExporter

Signal = Literal["span", "log", "metric_data_point"]

QUEUE_FULL = "queue_full"
ALREADY_SHUTDOWN = "already_shutdown"
TIMEOUT = "timeout"
EXPORT_FAILED = "export_failed"

_UNITS: dict[Signal, str] = {"span": "{span}", "log": "{log_record}", "metric_data_point": "1"}


@dataclass
class SignalLedger:
    """The counts of one signal; integers updated under one lock, read at collection."""

    signal: Signal
    capacity: int = 0
    handed_on: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    exported: int = 0
    export_failed: int = 0
    in_flight: int = 0
    spooled: int = 0
    replayed: int = 0
    abandoned: bool = False
    """Set when the shutdown budget ran out: what was queued or in flight is counted as
    lost then, so whatever the abandoned export thread still does is not counted again."""
    queue_size: Callable[[], int] = field(default=lambda: 0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def drop(self, count: int, reason: str) -> None:
        """``count`` items will never be exported, for ``reason``."""
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def hand_on(self, count: int) -> None:
        """The processor passed ``count`` items to the exporter."""
        with self._lock:
            if not self.abandoned:
                self.handed_on += count

    def start_export(self, count: int) -> None:
        """An export of ``count`` items began."""
        with self._lock:
            self.in_flight += count

    def finish_export(self, count: int, *, ok: bool) -> None:
        """An export of ``count`` items ended, delivered or given up."""
        with self._lock:
            self.in_flight -= count
            if self.abandoned:
                return
            if ok:
                self.exported += count
            else:
                self.export_failed += count

    def spool(self, count: int) -> None:
        """``count`` items of an export went to the disk spool instead of the collector."""
        with self._lock:
            if not self.abandoned:
                self.spooled += count

    def replay(self, count: int) -> None:
        """``count`` spooled items (of this or an earlier process) reached the collector."""
        with self._lock:
            self.replayed += count

    @property
    def delivered(self) -> int:
        """Items the collector accepted: exported directly or replayed from the spool."""
        return self.exported - self.spooled + self.replayed

    def abandon(self) -> int:
        """At an expired shutdown budget: count what is queued or in flight as lost."""
        with self._lock:
            if self.abandoned:
                return 0
            self.abandoned = True
            lost = self.queue_size() + self.in_flight
            if lost:
                self.dropped[TIMEOUT] = self.dropped.get(TIMEOUT, 0) + lost
            return lost

    def snapshot(self) -> dict[str, int]:
        """Every count by name, for tests, ``doctor`` and the exit report."""
        with self._lock:
            return {
                "handed_on": self.handed_on,
                "exported": self.delivered,
                "spooled": self.spooled,
                "replayed": self.replayed,
                EXPORT_FAILED: self.export_failed,
                "in_flight": self.in_flight,
                **{f"dropped_{k}": v for k, v in sorted(self.dropped.items())},
            }


class ProcessorCounts:
    """Stands in for the SDK batch processor's self-metrics object, feeding a ledger.

    The SDK's processor calls ``register_queue_size``, ``drop_items`` and ``finish_items``
    on it; reporting those through the ledger keeps one set of numbers per signal.
    """

    def __init__(self, ledger: SignalLedger) -> None:
        """Count into ``ledger``."""
        self._ledger = ledger

    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None:
        """Remember how to read the queue length."""
        self._ledger.queue_size = get_queue_size

    def drop_items(self, count: int, error_type: str = QUEUE_FULL) -> None:
        """Items the processor refused."""
        self._ledger.drop(count, error_type)

    def finish_items(self, count: int) -> None:
        """Items handed to the exporter."""
        self._ledger.hand_on(count)


def adopt_batch_processor(processor: object, ledger: SignalLedger, capacity: int) -> bool:
    """Make an SDK ``Batch*Processor`` count into ``ledger``; False if its shape is unknown."""
    batch = getattr(processor, "_batch_processor", None)
    queue = getattr(batch, "_queue", None)
    if batch is None or queue is None or not hasattr(batch, "_metrics"):
        return False
    ledger.capacity = capacity
    counts = ProcessorCounts(ledger)
    counts.register_queue_size(lambda: len(queue))
    batch._metrics = counts  # noqa: SLF001 - the SDK offers no hook for these counts
    return True


class CountingSpanExporter(SpanExporter):
    """Counts each span batch as delivered or failed; an exception counts as failed."""

    def __init__(self, inner: SpanExporter, ledger: SignalLedger) -> None:
        """Forward to ``inner``, counting into ``ledger``."""
        self.inner = inner
        self.ledger = ledger

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through ``inner`` and count the outcome."""
        count = len(spans)
        self.ledger.start_export(count)
        result = SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        finally:
            self.ledger.finish_export(count, ok=result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


class CountingLogExporter(LogRecordExporter):
    """Counts each log batch as delivered or failed; an exception counts as failed."""

    def __init__(self, inner: LogRecordExporter, ledger: SignalLedger) -> None:
        """Forward to ``inner``, counting into ``ledger``."""
        self.inner = inner
        self.ledger = ledger

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export through ``inner`` and count the outcome."""
        count = len(batch)
        self.ledger.start_export(count)
        result = LogRecordExportResult.FAILURE
        try:
            result = self.inner.export(batch)
        finally:
            self.ledger.finish_export(count, ok=result is LogRecordExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def count_points(metrics_data: MetricsData) -> int:
    """Data points in one metrics export."""
    return sum(
        len(metric.data.data_points)
        for resource_metrics in metrics_data.resource_metrics
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
    )


class CountingMetricExporter(ForwardingMetricExporter):
    """Counts the data points of each metrics export as delivered or failed."""

    def __init__(self, inner: MetricExporter, ledger: SignalLedger) -> None:
        """Forward to ``inner``, counting into ``ledger``."""
        super().__init__(inner)
        self.ledger = ledger

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        """Export through ``inner`` and count the outcome."""
        count = count_points(metrics_data)
        self.ledger.start_export(count)
        result = MetricExportResult.FAILURE
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        finally:
            self.ledger.finish_export(count, ok=result is MetricExportResult.SUCCESS)
        return result


@dataclass
class Ledger:
    """The ledgers of all three signals of one telemetry setup."""

    spans: SignalLedger = field(default_factory=lambda: SignalLedger("span"))
    logs: SignalLedger = field(default_factory=lambda: SignalLedger("log"))
    metric_points: SignalLedger = field(default_factory=lambda: SignalLedger("metric_data_point"))

    def abandon(self) -> tuple[int, int]:
        """Count queued and in-flight spans and log records as lost to the exit budget."""
        return self.spans.abandon(), self.logs.abandon()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """All counts, by signal."""
        return {
            "spans": self.spans.snapshot(),
            "logs": self.logs.snapshot(),
            "metric_points": self.metric_points.snapshot(),
        }

    def register(self, meter: Meter) -> None:
        """Report the counts through observable instruments of ``meter``."""
        for ledger in (self.spans, self.logs):
            _register_processor(meter, ledger)
        for ledger in (self.spans, self.logs, self.metric_points):
            _register_exporter(meter, ledger)


_COMPONENT = {"otel.component.type": "ttbt5_batch_processor"}


def _register_processor(meter: Meter, ledger: SignalLedger) -> None:
    prefix = f"otel.sdk.processor.{ledger.signal}"
    unit = _UNITS[ledger.signal]
    attrs = {**_COMPONENT, "otel.component.name": f"ttbt5_batch_processor/{ledger.signal}"}

    def processed(_options: CallbackOptions) -> Iterable[Observation]:
        with ledger._lock:  # noqa: SLF001 - a consistent read of the counts
            dropped = dict(ledger.dropped)
            handed_on = ledger.handed_on
        yield Observation(handed_on, attrs)
        for reason, count in dropped.items():
            yield Observation(count, {**attrs, "error.type": reason})

    def queue_size(_options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(ledger.queue_size(), attrs)

    def capacity(_options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(ledger.capacity, attrs)

    meter.create_observable_counter(
        f"{prefix}.processed",
        [processed],
        unit=unit,
        description="Items the batch processor handed to the exporter or dropped (error.type)",
    )
    meter.create_observable_up_down_counter(
        f"{prefix}.queue.size", [queue_size], unit=unit, description="Items queued for export"
    )
    meter.create_observable_up_down_counter(
        f"{prefix}.queue.capacity", [capacity], unit=unit, description="Most items queued"
    )


def _register_exporter(meter: Meter, ledger: SignalLedger) -> None:
    attrs = {"otel.component.type": "ttbt5_exporter", "otel.component.name": ledger.signal}

    def exported(_options: CallbackOptions) -> Iterable[Observation]:
        with ledger._lock:  # noqa: SLF001 - a consistent read of the counts
            ok, failed = ledger.delivered, ledger.export_failed
        yield Observation(ok, attrs)
        if failed:
            yield Observation(failed, {**attrs, "error.type": EXPORT_FAILED})

    meter.create_observable_counter(
        f"otel.sdk.exporter.{ledger.signal}.exported",
        [exported],
        unit=_UNITS[ledger.signal],
        description="Items whose export finished: delivered, or given up (error.type)",
    )
