"""How each contender of ``bench_peers.py`` does the same four things, exporting to the sink.

A contender is set up once per process by ``SETUPS[name](workload, sink_url)``, which
returns the call to measure and a flush that blocks until everything recorded so far was
handed to the sink. Workloads:

- ``span``: a traced no-op function with two attributes;
- ``span+log``: the same with one INFO record through the stdlib logging module inside it;
- ``counter``: a counter add with two attributes;
- ``histogram``: a histogram record with two attributes.

A contender without a way to do a workload has no entry for it (printed as ``n/a``).
Peers are imported only here and only in their own process; they come with the ``bench``
extra.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

Call = Callable[[], object]
Setup = tuple[Call, Callable[[], object]]

ATTRIBUTES = {"user.id": 42, "http.route": "/checkout"}
_LOG = logging.getLogger("bench.orders")


def _log_to_root(handler: logging.Handler) -> None:
    logging.root.handlers[:] = [handler]
    logging.root.setLevel(logging.INFO)


def raw(workload: str, sink: str) -> Setup:
    """The OpenTelemetry SDK as its docs set it up: batch processors, OTLP/HTTP."""
    from opentelemetry import metrics, trace  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
        OTLPLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler  # noqa: PLC0415
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: PLC0415
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    resource = Resource.create({"service.name": "bench"})
    if workload in ("counter", "histogram"):
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{sink}/v1/metrics"), export_interval_millis=60_000
        )
        provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = provider.get_meter("bench")
        if workload == "counter":
            counter = meter.create_counter("bench.calls")
            return (lambda: counter.add(1, ATTRIBUTES)), provider.force_flush
        histogram = meter.create_histogram("bench.duration", unit="s")
        return (lambda: histogram.record(0.0123, ATTRIBUTES)), provider.force_flush
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{sink}/v1/traces"))
    )
    trace.set_tracer_provider(tracer_provider)
    tracer = trace.get_tracer("bench")
    flushes: list[Callable[[], object]] = [tracer_provider.force_flush]
    if workload == "span+log":
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{sink}/v1/logs"))
        )
        _log_to_root(LoggingHandler(logger_provider=logger_provider))
        flushes.append(logger_provider.force_flush)

    def op() -> None:
        with tracer.start_as_current_span("op", attributes=ATTRIBUTES):
            if workload == "span+log":
                _LOG.info("charged order %s", 1234)

    del metrics
    return op, lambda: [flush() for flush in flushes]


def ttbt5(workload: str, sink: str) -> Setup:
    """``ttbt5_otel.init`` with its defaults (scrubbing on), OTLP/HTTP to the sink."""
    import ttbt5_otel  # noqa: PLC0415

    ttbt5_otel.init(
        service_name="bench",
        endpoint=sink,
        protocol="http/protobuf",
        runtime_metrics=False,
        instrument=["none"],
        metric_export_interval=60,
    )
    if workload == "counter":
        counter = ttbt5_otel.counter("bench.calls")
        return (lambda: counter.add(1, ATTRIBUTES)), ttbt5_otel.force_flush
    if workload == "histogram":
        histogram = ttbt5_otel.histogram("bench.duration", unit="s")
        return (lambda: histogram.record(0.0123, ATTRIBUTES)), ttbt5_otel.force_flush

    if workload == "span+log":

        @ttbt5_otel.traced(name="op", attributes=ATTRIBUTES)
        def op() -> None:
            _LOG.info("charged order %s", 1234)

        logging.root.setLevel(logging.INFO)
        return op, ttbt5_otel.force_flush

    @ttbt5_otel.traced(name="op", attributes=ATTRIBUTES)
    def noop() -> None:
        pass

    return noop, ttbt5_otel.force_flush


def logfire(workload: str, sink: str) -> Setup:
    """Logfire's ``instrument`` (two arguments as attributes), OTLP to the sink."""
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink
    import logfire as lf  # noqa: PLC0415

    lf.configure(
        send_to_logfire=False, console=False, service_name="bench", inspect_arguments=False
    )
    if workload == "counter":
        counter = lf.metric_counter("bench.calls")
        return (lambda: counter.add(1, ATTRIBUTES)), lf.force_flush
    if workload == "histogram":
        histogram = lf.metric_histogram("bench.duration", unit="s")
        return (lambda: histogram.record(0.0123, ATTRIBUTES)), lf.force_flush
    if workload == "span+log":
        _log_to_root(lf.LogfireLoggingHandler())

    @lf.instrument("op", extract_args=True)
    def op(user_id: int, route: str) -> None:  # noqa: ARG001 - extracted as attributes
        if workload == "span+log":
            _LOG.info("charged order %s", 1234)

    return (lambda: op(42, "/checkout")), lf.force_flush


def ddtrace(workload: str, sink: str) -> Setup | None:
    """dd-trace-py's ``tracer.wrap`` with two tags, to the sink as its agent; spans only."""
    if workload != "span":
        return None
    os.environ["DD_TRACE_AGENT_URL"] = sink
    os.environ.setdefault("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("DD_REMOTE_CONFIGURATION_ENABLED", "false")
    from ddtrace.trace import tracer  # noqa: PLC0415

    @tracer.wrap(name="op")
    def op() -> None:
        current = tracer.current_span()
        if current is not None:
            current.set_tag("user.id", 42)
            current.set_tag("http.route", "/checkout")

    return op, tracer.flush


def sentry(workload: str, sink: str) -> Setup | None:
    """A Sentry transaction with two data fields, to the sink as its DSN; spans and logs."""
    if workload not in ("span", "span+log"):
        return None
    import sentry_sdk  # noqa: PLC0415
    from sentry_sdk.integrations.logging import LoggingIntegration  # noqa: PLC0415

    host = sink.removeprefix("http://")
    with_log = workload == "span+log"
    sentry_sdk.init(
        dsn=f"http://public@{host}/1",
        traces_sample_rate=1.0,
        enable_logs=with_log,
        default_integrations=False,
        integrations=[LoggingIntegration(sentry_logs_level=logging.INFO)] if with_log else [],
    )
    logging.root.setLevel(logging.INFO)

    def op() -> None:
        with sentry_sdk.start_transaction(name="op") as transaction:
            transaction.set_data("user.id", 42)
            transaction.set_data("http.route", "/checkout")
            if with_log:
                _LOG.info("charged order %s", 1234)

    return op, sentry_sdk.flush


SETUPS: dict[str, Callable[[str, str], Setup | None]] = {
    "raw": raw,
    "ttbt5": ttbt5,
    "logfire": logfire,
    "ddtrace": ddtrace,
    "sentry": sentry,
}
PEERS = ("logfire", "ddtrace", "sentry")
