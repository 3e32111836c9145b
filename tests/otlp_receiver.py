"""A real OTLP receiver for tests: gRPC or HTTP/protobuf on 127.0.0.1, decoding payloads.

It stores the decoded protobuf requests and offers flattened views (spans, metric points,
log records with their resource attributes) for assertions.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.loopback import free_port


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attrs(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def attrs(pairs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs}


@dataclass
class Received:
    traces: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)
    logs: list[logs_service_pb2.ExportLogsServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            for request in self.traces:
                for rs in request.resource_spans:
                    resource = attrs(rs.resource.attributes)
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            out.append(
                                {
                                    "name": s.name,
                                    "attributes": attrs(s.attributes),
                                    "resource": resource,
                                    "scope": ss.scope.name,
                                    "status": s.status.code,
                                    "events": [(e.name, attrs(e.attributes)) for e in s.events],
                                    "trace_id": s.trace_id.hex(),
                                    "span_id": s.span_id.hex(),
                                    "parent_span_id": s.parent_span_id.hex(),
                                    "kind": s.kind,
                                }
                            )
        return out

    def metric_points(self) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            for request in self.metrics:
                for rm in request.resource_metrics:
                    resource = attrs(rm.resource.attributes)
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            kind = m.WhichOneof("data")
                            for p in getattr(m, kind).data_points:
                                point = {
                                    "name": m.name,
                                    "unit": m.unit,
                                    "kind": kind,
                                    "attributes": attrs(p.attributes),
                                    "resource": resource,
                                }
                                if kind == "histogram":
                                    point["count"] = p.count
                                    point["sum"] = p.sum
                                else:
                                    point["value"] = p.as_double or p.as_int
                                out.append(point)
        return out

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            for request in self.logs:
                for rl in request.resource_logs:
                    resource = attrs(rl.resource.attributes)
                    for sl in rl.scope_logs:
                        for r in sl.log_records:
                            out.append(
                                {
                                    "body": any_value(r.body),
                                    "severity": r.severity_text,
                                    "attributes": attrs(r.attributes),
                                    "resource": resource,
                                    "trace_id": r.trace_id.hex(),
                                    "span_id": r.span_id.hex(),
                                }
                            )
        return out

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return bool(predicate(self))


class _Trace(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: Received) -> None:
        self.store = store

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        with self.store.lock:
            self.store.traces.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store: Received) -> None:
        self.store = store

    def Export(self, request, context):  # noqa: N802
        with self.store.lock:
            self.store.metrics.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, store: Received) -> None:
        self.store = store

    def Export(self, request, context):  # noqa: N802
        with self.store.lock:
            self.store.logs.append(request)
        return logs_service_pb2.ExportLogsServiceResponse()


class GrpcReceiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received = Received()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _Trace(self.received), self._server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _Metrics(self.received), self._server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self.received), self._server)
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


class HttpReceiver:
    _PATHS = {
        "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest),
        "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest),
        "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest),
    }

    def __init__(self, port: int = 0) -> None:
        self.received = Received()
        self.content_types: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":  # the collector's default
                    body = gzip.decompress(body)
                target = receiver._PATHS.get(self.path)
                if target is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                signal, message_type = target
                message = message_type()
                message.ParseFromString(body)
                receiver.content_types.append(self.headers.get("Content-Type", ""))
                with receiver.received.lock:
                    getattr(receiver.received, signal).append(message)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


__all__ = ["GrpcReceiver", "HttpReceiver", "KeyValue", "Received", "free_port"]
