"""A collector outage drops within the queue bound, says how much, and does not flood logs."""

import logging
import threading

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ttbt5_otel._sdk.config import resolve_config
from ttbt5_otel._sdk.providers import build_providers
from ttbt5_otel._sdk.quiet import RateLimitFilter


class StuckExporter(SpanExporter):
    """An exporter whose collector never answers, until released."""

    def __init__(self):
        self.release = threading.Event()

    def export(self, spans):
        self.release.wait(10)
        return SpanExportResult.FAILURE

    def shutdown(self):
        self.release.set()


def test_full_queue_drops_are_counted_and_memory_stays_bounded():
    config = resolve_config({"max_queue_size": 20, "max_export_batch_size": 5}, {})
    exporter = StuckExporter()
    reader = InMemoryMetricReader()
    providers = build_providers(config, exporter, [reader], None)
    tracer = providers.tracer_provider.get_tracer("outage")
    sdk_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
    previous = sdk_logger.disabled
    sdk_logger.disabled = True  # the per-item warning is the SDK's; its rate limit is tested below
    try:
        for i in range(500):
            with tracer.start_as_current_span(f"op-{i}"):
                pass
        [processor] = providers.tracer_provider._active_span_processor._span_processors
        assert len(processor._batch_processor._queue) <= 20
        data = reader.get_metrics_data()
        processed = [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "otel.sdk.processor.span.processed"
            for point in m.data.data_points
        ]
        dropped = sum(p.value for p in processed if p.attributes.get("error.type") == "queue_full")
        assert 500 - 20 - 5 <= dropped <= 500 - 20
    finally:
        sdk_logger.disabled = previous
        exporter.release.set()
        providers.tracer_provider.shutdown()
        providers.meter_provider.shutdown()


def test_rate_limit_filter_passes_one_message_per_interval():
    now = [0.0]
    limiter = RateLimitFilter(interval=60, clock=lambda: now[0])

    def record(msg):
        return logging.LogRecord("opentelemetry.sdk._shared_internal", 30, "", 0, msg, (), None)

    assert limiter.filter(record("Queue full, dropping %s."))
    assert not any(limiter.filter(record("Queue full, dropping %s.")) for _ in range(999))
    assert limiter.filter(record("Failed to export"))
    now[0] = 61
    again = record("Queue full, dropping %s.")
    assert limiter.filter(again)
    assert again.msg == "Queue full, dropping %s. (999 similar messages suppressed)"
