"""The SDK's OTLP/HTTP exporters, posting bytes from ``encode`` instead of protobuf objects.

Everything but the encoding stays the SDK's: endpoint, headers, TLS, compression, timeout,
retries with backoff, its own exporter metrics. Only the serialized body is replaced. The
SDK offers no hook for that step, so the parts used are checked when an exporter is built;
on an SDK whose exporters look different the reference encoding is used and a warning
says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from ttbt5_otel._sdk.otlp.encode import encode_logs, encode_spans
from ttbt5_otel._sdk.otlp.fallback import warn_reference

# The SDK exporters' own loggers: their levels, filters and rate limits apply unchanged.
_LOGS = {
    "span": logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter"),
    "log": logging.getLogger("opentelemetry.exporter.otlp.proto.http._log_exporter"),
}


def _http_shape_known(exporter: object) -> bool:
    client = getattr(exporter, "_client", None)
    return (
        callable(getattr(client, "export", None))
        and isinstance(getattr(exporter, "_max_request_size", None), int)
        and callable(getattr(getattr(exporter, "_metrics", None), "export_operation", None))
        and hasattr(exporter, "_shutdown")
    )


def _send_http(exporter: Any, payload: Callable[[], bytes], count: int, what: str) -> bool:
    """One export through the SDK's HTTP client; True when the collector accepted it."""
    log = _LOGS[what]
    if exporter._shutdown:  # noqa: SLF001
        log.warning("Exporter already shutdown, ignoring batch")
        return False
    with exporter._metrics.export_operation(count) as result:  # noqa: SLF001
        try:
            body = payload()
        except Exception as error:
            log.exception("Failed to encode %s batch", what)
            result.error = error
            return False
        limit = exporter._max_request_size  # noqa: SLF001
        if 0 < limit < len(body):
            log.warning(
                "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes",
                what,
                len(body),
                limit,
            )
            result.error = ValueError(f"{what} request of {len(body)} bytes is too large")
            return False
        sent = exporter._client.export(body)  # noqa: SLF001
        if not sent.success:
            result.error = sent.error
            return False
    return True


class FastHttpSpanExporter(HttpSpans):
    """OTLP/HTTP span exporter with the direct encoder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take the SDK exporter's arguments."""
        super().__init__(*args, **kwargs)
        self.direct = _http_shape_known(self)
        if not self.direct:
            warn_reference("HTTP span")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode ``spans`` and post them."""
        if not self.direct:
            return super().export(spans)
        ok = _send_http(self, lambda: encode_spans(spans), len(spans), "span")
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE


class FastHttpLogExporter(HttpLogs):
    """OTLP/HTTP log exporter with the direct encoder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take the SDK exporter's arguments."""
        super().__init__(*args, **kwargs)
        self.direct = _http_shape_known(self)
        if not self.direct:
            warn_reference("HTTP log")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Encode ``batch`` and post it."""
        if not self.direct:
            return super().export(batch)
        ok = _send_http(self, lambda: encode_logs(batch), len(batch), "log")
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE
