"""The direct exporters send the reference encoder's bytes over real HTTP and gRPC servers.

Each server runs in this process on a loopback port; what it receives is compared with the
reference encoding of the same batch. An SDK whose exporters look different gets the
reference encoding, with a warning.
"""

from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import grpc
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference_spans
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext

from ttbt5_otel._core import guard
from ttbt5_otel._sdk.otlp import http as direct_http
from ttbt5_otel._sdk.otlp.grpc import FastGrpcLogExporter, FastGrpcSpanExporter
from ttbt5_otel._sdk.otlp.http import FastHttpLogExporter, FastHttpSpanExporter

RESOURCE = Resource.create({"service.name": "orders"})
SPANS = [
    ReadableSpan(
        name=f"span {index}",
        context=SpanContext(index + 1, index + 100, is_remote=False),
        resource=RESOURCE,
        attributes={"http.route": "/checkout", "attempt": index},
        start_time=10,
        end_time=20,
    )
    for index in range(3)
]
LOGS = [
    ReadableLogRecord(
        LogRecord(
            timestamp=5,
            severity_number=SeverityNumber.WARN,
            body=f"retry {index}",
            attributes={"attempt": index},
        ),
        resource=RESOURCE,
    )
    for index in range(3)
]


@pytest.fixture
def http_server():
    """A loopback OTLP/HTTP receiver recording (path, body) of each request."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_http_exporters_post_the_reference_bytes(http_server):
    """Spans and log records arrive as the SDK's own exporter would have sent them."""
    base, received = http_server
    spans = FastHttpSpanExporter(endpoint=f"{base}/v1/traces", timeout=5)
    logs = FastHttpLogExporter(endpoint=f"{base}/v1/logs", timeout=5)
    assert spans.direct
    assert logs.direct
    assert spans.export(SPANS) is SpanExportResult.SUCCESS
    assert logs.export(LOGS) is LogRecordExportResult.SUCCESS
    assert received == [
        ("/v1/traces", reference_spans(SPANS).SerializeToString()),
        ("/v1/logs", reference_logs(LOGS).SerializeToString()),
    ]
    spans.shutdown()
    logs.shutdown()
    assert spans.export(SPANS) is SpanExportResult.FAILURE


def test_http_refusals_and_oversized_batches_are_failures(http_server):
    """A batch over max_request_size is not sent; a dead endpoint is a failed export."""
    base, received = http_server
    small = FastHttpSpanExporter(endpoint=f"{base}/v1/traces", max_request_size=10)
    assert small.export(SPANS) is SpanExportResult.FAILURE
    assert received == []
    dead = FastHttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=0.5)
    assert dead.export(SPANS) is SpanExportResult.FAILURE


def test_an_unknown_sdk_shape_falls_back_to_the_reference_encoder(http_server, monkeypatch):
    """On an SDK whose exporter lacks the parts used, the SDK's own path runs, with a warning."""
    base, received = http_server
    warned: list[str] = []
    monkeypatch.setattr(direct_http, "_http_shape_known", lambda exporter: False)
    monkeypatch.setattr(guard, "warn_once", lambda key, message: warned.append(message))
    exporter = FastHttpSpanExporter(endpoint=f"{base}/v1/traces", timeout=5)
    assert not exporter.direct
    assert exporter.export(SPANS) is SpanExportResult.SUCCESS
    assert received == [("/v1/traces", reference_spans(SPANS).SerializeToString())]
    assert "reference encoder" in warned[0]


class _Recorder(
    trace_service_pb2_grpc.TraceServiceServicer, logs_service_pb2_grpc.LogsServiceServicer
):
    def __init__(self) -> None:
        self.requests: list[bytes] = []

    def Export(self, request, context):  # noqa: N802 - the generated servicer's name
        self.requests.append(request.SerializeToString())
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            return trace_service_pb2.ExportTraceServiceResponse()
        return logs_service_pb2.ExportLogsServiceResponse()


def test_grpc_exporters_send_the_reference_request():
    """A real gRPC server decodes exactly the reference request, for spans and logs."""
    recorder = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(recorder, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        endpoint = f"127.0.0.1:{port}"
        spans = FastGrpcSpanExporter(endpoint=endpoint, insecure=True, timeout=5)
        logs = FastGrpcLogExporter(endpoint=endpoint, insecure=True, timeout=5)
        assert spans.direct
        assert logs.direct
        assert spans.export(SPANS) is SpanExportResult.SUCCESS
        assert logs.export(LOGS) is LogRecordExportResult.SUCCESS
        # After a reconnection (the SDK's answer to UNAVAILABLE) the bytes stub is back.
        spans._initialize_channel_and_stub()
        assert spans.export(SPANS[:1]) is SpanExportResult.SUCCESS
        spans.shutdown()
        logs.shutdown()
    finally:
        server.stop(grace=None)
    assert recorder.requests == [
        reference_spans(SPANS).SerializeToString(),
        reference_logs(LOGS).SerializeToString(),
        reference_spans(SPANS[:1]).SerializeToString(),
    ]
