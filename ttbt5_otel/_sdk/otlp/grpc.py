"""The SDK's OTLP/gRPC exporters, sending bytes from ``encode`` instead of protobuf objects.

Everything but the encoding stays the SDK's: channel, credentials, headers, compression,
timeouts, retries with backoff, reconnection after UNAVAILABLE. Only the request object is
replaced, by bytes sent through a method whose serializer passes them through. The parts
touched are checked when an exporter is built; on an SDK whose exporters look different the
reference encoding is used and a warning says so once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ttbt5_otel._sdk.otlp.encode import encode_logs, encode_spans
from ttbt5_otel._sdk.otlp.fallback import warn_reference

_TRACE_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_LOGS_METHOD: Final = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _bytes_stub(channel: Any, method: str, response: Callable[[bytes], object]) -> Any:
    """A stand-in for a generated stub whose ``Export`` sends serialized requests."""

    class Stub:
        Export = channel.unary_unary(
            method, request_serializer=bytes, response_deserializer=response
        )

    return Stub()


def _shape_known(exporter: object) -> bool:
    return hasattr(exporter, "_channel") and hasattr(exporter, "_client")


class _Direct:
    """What both direct gRPC exporters change in the SDK's exporter they extend."""

    _method: str
    _response: Callable[[bytes], object]
    _encode: Callable[[Any], bytes]
    _kind: str
    _channel: Any
    _client: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take the SDK exporter's arguments."""
        super().__init__(*args, **kwargs)
        self.direct = _shape_known(self)
        if self.direct:
            self._use_bytes_stub()
        else:
            warn_reference(self._kind)

    def _use_bytes_stub(self) -> None:
        self._client = _bytes_stub(self._channel, self._method, self._response)

    def _initialize_channel_and_stub(self) -> None:
        # Called by the SDK's constructor, and again to reconnect after UNAVAILABLE.
        super()._initialize_channel_and_stub()  # type: ignore[misc]
        if getattr(self, "direct", False):
            self._use_bytes_stub()

    def _translate_data(self, data: Any) -> Any:
        if not self.direct:
            return super()._translate_data(data)  # type: ignore[misc]
        return self._encode(data)


class FastGrpcSpanExporter(_Direct, GrpcSpans):
    """OTLP/gRPC span exporter with the direct encoder."""

    _method, _kind = _TRACE_METHOD, "gRPC span"
    _response = ExportTraceServiceResponse.FromString
    _encode = staticmethod(encode_spans)


class FastGrpcLogExporter(_Direct, GrpcLogs):
    """OTLP/gRPC log exporter with the direct encoder."""

    _method, _kind = _LOGS_METHOD, "gRPC log"
    _response = ExportLogsServiceResponse.FromString
    _encode = staticmethod(encode_logs)
