"""Exporter construction: OTLP over gRPC or HTTP/protobuf, or readable console output."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from ttbt5_otel._sdk.config import TelemetryConfig
from ttbt5_otel._sdk.forwarding import ForwardingMetricExporter


def signal_url(config: TelemetryConfig, signal: str) -> str:
    """The OTLP/HTTP URL of one signal (``traces``, ``metrics``, ``logs``)."""
    return f"{config.endpoint.rstrip('/')}/v1/{signal}"


def is_insecure(config: TelemetryConfig) -> bool:
    """Plain-text gRPC: as configured, else when the endpoint says ``http://``."""
    if config.insecure is not None:
        return config.insecure
    return config.endpoint.startswith("http://")


def grpc_credentials(config: TelemetryConfig) -> Any:
    """TLS credentials trusting ``certificate_file``; None when no file is configured."""
    if not config.certificate_file:
        return None
    import grpc  # type: ignore[import-untyped]  # noqa: PLC0415

    with open(config.certificate_file, "rb") as handle:  # noqa: PTH123
        return grpc.ssl_channel_credentials(handle.read())


def otlp_exporters(
    config: TelemetryConfig,
) -> tuple[SpanExporter, MetricExporter, LogRecordExporter]:
    """Span, metric and log OTLP exporters for ``config.protocol``.

    Spans and log records are encoded by ``ttbt5_otel._sdk.otlp`` (the same bytes, a
    fraction of the CPU); metrics, exported once per interval, by the SDK.
    """
    headers = dict(config.headers) or None
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter as GrpcMetrics,
        )

        from ttbt5_otel._sdk.otlp.grpc import (  # noqa: PLC0415
            FastGrpcLogExporter as GrpcLogs,
        )
        from ttbt5_otel._sdk.otlp.grpc import (  # noqa: PLC0415
            FastGrpcSpanExporter as GrpcSpans,
        )

        insecure = is_insecure(config)
        credentials = None if insecure else grpc_credentials(config)
        endpoint, timeout = config.endpoint, config.timeout
        return (
            GrpcSpans(
                endpoint=endpoint,
                headers=headers,
                timeout=timeout,
                insecure=insecure,
                credentials=credentials,
            ),
            GrpcMetrics(
                endpoint=endpoint,
                headers=headers,
                timeout=timeout,
                insecure=insecure,
                credentials=credentials,
            ),
            GrpcLogs(
                endpoint=endpoint,
                headers=headers,
                timeout=timeout,
                insecure=insecure,
                credentials=credentials,
            ),
        )

    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as HttpMetrics,
    )

    from ttbt5_otel._sdk.otlp.http import FastHttpLogExporter as HttpLogs  # noqa: PLC0415
    from ttbt5_otel._sdk.otlp.http import FastHttpSpanExporter as HttpSpans  # noqa: PLC0415

    cert = config.certificate_file
    return (
        HttpSpans(
            endpoint=signal_url(config, "traces"),
            headers=headers,
            timeout=config.timeout,
            certificate_file=cert,
        ),
        HttpMetrics(
            endpoint=signal_url(config, "metrics"),
            headers=headers,
            timeout=config.timeout,
            certificate_file=cert,
        ),
        HttpLogs(
            endpoint=signal_url(config, "logs"),
            headers=headers,
            timeout=config.timeout,
            certificate_file=cert,
        ),
    )


# A terminal reader wants the exception type and message; the full stack trace still
# travels in OTLP exports.
_CONSOLE_HIDDEN = frozenset({"exception.stacktrace", "exception.escaped", "code.file.path"})


def _format_attributes(attributes: Mapping[str, object] | None) -> str:
    if not attributes:
        return ""
    return " ".join(f"{k}={v!r}" for k, v in attributes.items() if k not in _CONSOLE_HIDDEN)


class ConsoleSpanExporter(SpanExporter):
    """One readable line per finished span."""

    def __init__(self, out: IO[str] | None = None) -> None:
        """Write to ``out`` (standard error by default)."""
        self._out = out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Print the spans."""
        out = self._out or sys.stderr
        for span in spans:
            duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            status = "ERROR" if span.status.status_code is StatusCode.ERROR else "ok"
            ids = f"trace={span.context.trace_id:032x} span={span.context.span_id:016x}"
            attrs = _format_attributes(span.attributes)
            out.write(f"[span] {span.name} {duration_ms:.2f}ms {status} {ids} {attrs}".rstrip())
            out.write("\n")
            for event in span.events:
                out.write(f"         event {event.name} {_format_attributes(event.attributes)}\n")
        out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


class ConsoleLogExporter(LogRecordExporter):
    """One readable line per log record, with its trace correlation."""

    def __init__(self, out: IO[str] | None = None) -> None:
        """Write to ``out`` (standard error by default)."""
        self._out = out

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Print the records."""
        out = self._out or sys.stderr
        for item in batch:
            record = item.log_record
            ids = ""
            if record.span_id:
                ids = f" trace={record.trace_id:032x} span={record.span_id:016x}"
            attrs = _format_attributes(record.attributes)
            body = record.body if isinstance(record.body, str) else repr(record.body)
            out.write(f"[log] {record.severity_text or '-'} {body}{ids} {attrs}".rstrip())
            out.write("\n")
        out.flush()
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Output is written synchronously."""
        del timeout_millis
        return True


class ConsoleMetricExporter(MetricExporter):
    """Compact ``name{attributes} value`` lines for each exported point."""

    def __init__(self, out: IO[str] | None = None) -> None:
        """Write to ``out`` (standard error by default)."""
        super().__init__()
        self._out = out

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        """Print the points."""
        del timeout_millis, kwargs
        out = self._out or sys.stderr
        for resource_metrics in metrics_data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        attrs = ",".join(f"{k}={v!s}" for k, v in (point.attributes or {}).items())
                        if isinstance(point, HistogramDataPoint):
                            value = f"count={point.count} sum={point.sum:.6g}"
                        elif isinstance(point, NumberDataPoint):
                            value = f"{point.value:.6g}"
                        else:
                            value = "(exponential histogram)"
                        out.write(f"[metric] {metric.name}{{{attrs}}} {value}\n")
        out.flush()
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing buffered."""
        del timeout_millis
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        """Nothing to release."""
        del timeout_millis, kwargs


class SwappableLogExporter(LogRecordExporter):
    """Forwards to an exporter that can be replaced, e.g. with a fresh channel after fork."""

    def __init__(self, inner: LogRecordExporter) -> None:
        """Forward to ``inner`` until ``inner`` is reassigned."""
        self.inner = inner

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export through the current exporter."""
        return self.inner.export(batch)

    def shutdown(self) -> None:
        """Shut the current exporter down."""
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here; the processor in front holds the queue."""
        del timeout_millis
        return True


class SwappableMetricExporter(ForwardingMetricExporter):
    """Forwards to a metric exporter that can be replaced (after fork) by reassigning ``inner``."""
