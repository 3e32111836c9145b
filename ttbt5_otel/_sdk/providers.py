"""Build the three SDK providers from a ``TelemetryConfig``.

Kept free of global state so the same code path serves ``init()``, the OpenTelemetry
configurator entry point and the pytest capture plugin (which swaps in memory exporters).
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
)

from ttbt5_otel._core import guard as _guard
from ttbt5_otel._core.limits import DURATION_BUCKETS_SECONDS, RETRY_ATTEMPT_BUCKETS
from ttbt5_otel._sdk.accounting import (
    CountingLogExporter,
    CountingSpanExporter,
    Ledger,
    SignalLedger,
    adopt_batch_processor,
)
from ttbt5_otel._sdk.config import TelemetryConfig
from ttbt5_otel._sdk.scrubbing import (
    ScrubbingLogExporter,
    ScrubbingMetricExporter,
    ScrubbingSpanExporter,
    scrub_resource,
)
from ttbt5_otel._version import __version__


def new_instance_id() -> str:
    """A fresh ``service.instance.id``; called again in a forked child."""
    return str(uuid.uuid4())


def build_resource(config: TelemetryConfig) -> Resource:
    """Resource describing this process; explicit attributes win over detected ones."""
    attributes: dict[str, str | int] = {
        "service.instance.id": new_instance_id(),
        "host.name": socket.gethostname(),
        "host.arch": platform.machine(),
        "os.type": sys.platform,
        "process.pid": os.getpid(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.executable.path": sys.executable,
        "telemetry.distro.name": "ttbt5-otel",
        "telemetry.distro.version": __version__,
    }
    attributes.update(config.resource_attributes)
    attributes["service.name"] = config.service_name
    if config.service_version:
        attributes["service.version"] = config.service_version
    if config.service_namespace:
        attributes["service.namespace"] = config.service_namespace
    if config.environment:
        attributes["deployment.environment.name"] = config.environment
    return scrub_resource(Resource.create(attributes))


@dataclass(slots=True)
class Providers:
    """The three SDK providers of one configuration and the exporter wrappers feeding them."""

    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    span_exporter: ScrubbingSpanExporter | None = None
    log_exporter: LogRecordExporter | None = None
    ledger: Ledger = field(default_factory=Ledger)


def duration_views() -> list[View]:
    """Views giving this package's histograms buckets suited to their unit.

    Seconds-unit histograms get seconds-scale buckets; the retry attempts histogram gets
    small-integer buckets. Views only apply when the ``MeterProvider`` is created.
    """
    return [
        View(
            instrument_name="ttbt5.*",
            instrument_unit="s",
            aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS_SECONDS),
        ),
        View(
            instrument_name="ttbt5.retry.attempts",
            aggregation=ExplicitBucketHistogramAggregation(RETRY_ATTEMPT_BUCKETS),
        ),
    ]


def parent_based_sampler(ratio: float) -> Sampler:
    """Follow the parent's decision; sample ``ratio`` of new traces.

    At 1.0 the ratio sampler's bound lets every trace id through; ``ALWAYS_ON`` decides the
    same without the arithmetic, a fifth cheaper on every span of every instrumentation.
    """
    return ParentBased(ALWAYS_ON) if ratio >= 1.0 else ParentBasedTraceIdRatio(ratio)


def build_providers(
    config: TelemetryConfig,
    span_exporter: SpanExporter | None,
    metric_readers: Sequence[MetricReader],
    log_exporter: LogRecordExporter | None,
    *,
    synchronous: bool = False,
    id_generator: IdGenerator | None = None,
    ledger: Ledger | None = None,
) -> Providers:
    """Wire exporters into providers: bounded batch queues, scrubbing in front of export.

    ``synchronous`` exports each span and log record as it ends (console output, tests)
    instead of batching on a background thread. Batched signals count every item into
    ``ledger`` (see ``accounting``), reported as the SDK's self-metrics.
    """
    ledger = ledger or Ledger()
    resource = build_resource(config)
    # No SDK exit hooks: theirs would block on a frozen collector; init() registers one
    # bounded by shutdown_timeout instead.
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=list(metric_readers),
        views=duration_views(),
        shutdown_on_exit=False,
    )
    tracer_provider = TracerProvider(
        resource=resource,
        sampler=parent_based_sampler(config.sample_ratio),
        id_generator=id_generator,
        shutdown_on_exit=False,
    )
    wrapped_spans = ScrubbingSpanExporter(span_exporter) if span_exporter is not None else None
    if wrapped_spans is not None:
        span_processor: SpanProcessor
        if synchronous:
            span_processor = SimpleSpanProcessor(wrapped_spans)
        else:
            span_processor = BatchSpanProcessor(
                CountingSpanExporter(wrapped_spans, ledger.spans),
                max_queue_size=config.max_queue_size,
                max_export_batch_size=config.max_export_batch_size,
                schedule_delay_millis=config.schedule_delay * 1000,
                export_timeout_millis=config.timeout * 1000,
            )
            _adopt(span_processor, ledger.spans, config.max_queue_size)
        tracer_provider.add_span_processor(span_processor)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if log_exporter is not None:
        log_exporter = ScrubbingLogExporter(log_exporter)
        log_processor: LogRecordProcessor
        if synchronous:
            log_processor = SimpleLogRecordProcessor(log_exporter)
        else:
            log_processor = BatchLogRecordProcessor(
                CountingLogExporter(log_exporter, ledger.logs),
                max_queue_size=config.max_queue_size,
                max_export_batch_size=config.max_export_batch_size,
                schedule_delay_millis=config.schedule_delay * 1000,
                export_timeout_millis=config.timeout * 1000,
            )
            _adopt(log_processor, ledger.logs, config.max_queue_size)
        logger_provider.add_log_record_processor(log_processor)
    if not synchronous:
        ledger.register(meter_provider.get_meter("ttbt5_otel.sdk", __version__))
    return Providers(
        resource,
        tracer_provider,
        meter_provider,
        logger_provider,
        wrapped_spans,
        log_exporter,
        ledger,
    )


def _adopt(processor: object, ledger: SignalLedger, capacity: int) -> None:
    if not adopt_batch_processor(processor, ledger, capacity):
        _guard.warn_once(
            f"ledger-{ledger.signal}",
            f"this OpenTelemetry SDK's batch processor is not the one ttbt5_otel knows; "
            f"queue drops of {ledger.signal} items are not counted",
        )


def periodic_reader(config: TelemetryConfig, exporter: MetricExporter) -> MetricReader:
    """A metric reader exporting every ``metric_export_interval`` seconds."""
    return PeriodicExportingMetricReader(
        ScrubbingMetricExporter(exporter),
        export_interval_millis=config.metric_export_interval * 1000,
        export_timeout_millis=config.timeout * 1000,
    )
