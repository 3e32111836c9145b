"""Every span, log record and metric point is delivered or counted with the reason."""

import logging
import threading

import pytest
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricExportResult,
)
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ttbt5_otel._sdk import setup as _setup
from ttbt5_otel._sdk.accounting import CountingMetricExporter, Ledger, count_points
from ttbt5_otel._sdk.config import resolve_config
from ttbt5_otel._sdk.providers import build_providers


class ScriptedSpans(SpanExporter):
    """Succeeds, fails or raises by turns, as told, and remembers what it delivered."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.delivered = 0

    def export(self, spans):
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "raise":
            raise ConnectionError("collector went away")
        if outcome == "fail":
            return SpanExportResult.FAILURE
        self.delivered += len(spans)
        return SpanExportResult.SUCCESS


class FailingLogs(LogRecordExporter):
    def export(self, batch):
        return LogRecordExportResult.FAILURE

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30_000):
        return True


def points(reader, name):
    data = reader.get_metrics_data()
    found = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        found[point.attributes.get("error.type")] = point.value
    return found


@pytest.fixture
def quiet_sdk():
    sdk_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
    previous = sdk_logger.disabled
    sdk_logger.disabled = True  # "Exception while exporting" is the SDK's own line
    yield
    sdk_logger.disabled = previous


def test_failed_and_raising_exports_are_counted_and_the_books_balance(quiet_sdk):
    config = resolve_config({"max_export_batch_size": 10, "schedule_delay": 60}, {})
    exporter = ScriptedSpans(["ok", "fail", "raise", "ok"])
    reader = InMemoryMetricReader()
    ledger = Ledger()
    providers = build_providers(config, exporter, [reader], FailingLogs(), ledger=ledger)
    tracer = providers.tracer_provider.get_tracer("books")
    logger = providers.logger_provider.get_logger("books")
    try:
        for round_ in range(4):
            for i in range(10):
                with tracer.start_as_current_span(f"op-{round_}-{i}"):
                    logger.emit(body="done")
            providers.tracer_provider.force_flush()
            providers.logger_provider.force_flush()

        exported = points(reader, "otel.sdk.exporter.span.exported")
        assert exported == {None: 20, "export_failed": 20}
        assert exporter.delivered == 20
        assert points(reader, "otel.sdk.processor.span.processed") == {None: 40}
        assert points(reader, "otel.sdk.exporter.log.exported") == {None: 0, "export_failed": 40}
        spans = ledger.snapshot()["spans"]
        assert spans["exported"] + spans["export_failed"] == spans["handed_on"] == 40
        assert spans["in_flight"] == 0
    finally:
        providers.tracer_provider.shutdown()
        providers.logger_provider.shutdown()
        providers.meter_provider.shutdown()


def test_queue_overflow_is_counted_with_its_reason(quiet_sdk):
    release = threading.Event()

    class Stuck(SpanExporter):
        def export(self, spans):
            release.wait(10)
            return SpanExportResult.SUCCESS

    config = resolve_config({"max_queue_size": 20, "max_export_batch_size": 5}, {})
    reader = InMemoryMetricReader()
    ledger = Ledger()
    providers = build_providers(config, Stuck(), [reader], None, ledger=ledger)
    tracer = providers.tracer_provider.get_tracer("flood")
    try:
        for i in range(300):
            with tracer.start_as_current_span(f"op-{i}"):
                pass
        counts = ledger.snapshot()["spans"]
        queued = ledger.spans.queue_size()
        assert queued <= 20
        assert (
            counts["dropped_queue_full"] + queued + counts["in_flight"] + counts["exported"] == 300
        )
        assert points(reader, "otel.sdk.processor.span.queue.capacity") == {None: 20}
    finally:
        release.set()
        providers.tracer_provider.shutdown()
        providers.meter_provider.shutdown()


def test_an_expired_shutdown_counts_queued_and_in_flight_items_as_timeout(caplog, quiet_sdk):
    release = threading.Event()
    started = threading.Event()

    class Frozen(SpanExporter):
        def export(self, spans):
            started.set()
            release.wait(10)
            return SpanExportResult.FAILURE

        def shutdown(self):
            release.set()

    config = resolve_config({"max_queue_size": 100, "max_export_batch_size": 10}, {})
    providers = build_providers(config, Frozen(), [], None)
    ledger = providers.ledger
    telemetry = _setup.Telemetry(config=config, providers=providers)
    tracer = providers.tracer_provider.get_tracer("exit")
    try:
        for i in range(35):
            with tracer.start_as_current_span(f"op-{i}"):
                pass
        assert started.wait(5)
        with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
            telemetry.shutdown(timeout=0.3)
        counts = ledger.snapshot()["spans"]
        assert counts["dropped_timeout"] == 35
        assert "dropped 35 spans and 0 log records still queued or in flight" in caplog.text
    finally:
        release.set()
        for helper in threading.enumerate():
            if helper.name == "ttbt5-shutdown":
                helper.join(5)


def test_metric_points_are_counted_per_export():
    ledger = Ledger()
    source = InMemoryMetricReader()
    config = resolve_config({}, {})
    providers = build_providers(config, None, [source], None, ledger=ledger)
    counter = providers.meter_provider.get_meter("m").create_counter("c")
    counter.add(1, {"k": "a"})
    counter.add(1, {"k": "b"})
    data = source.get_metrics_data()
    inner = ConsoleMetricExporter()
    inner.export = lambda *a, **k: MetricExportResult.FAILURE
    exporter = CountingMetricExporter(inner, ledger.metric_points)
    assert exporter.export(data) is MetricExportResult.FAILURE
    assert ledger.metric_points.snapshot()["export_failed"] == count_points(data) > 2
    providers.meter_provider.shutdown()
