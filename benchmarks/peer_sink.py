"""A loopback endpoint every contender of ``bench_peers.py`` exports to, in its own process.

It speaks just enough of each protocol for the exporters to take it as their backend:
OTLP/HTTP (``/v1/traces``, ``/v1/logs``, ``/v1/metrics``: 200 with an empty protobuf
response), the Datadog agent's trace intake (``/v0.4/traces``, ``/v0.5/traces``, ``/info``)
and Sentry's envelope intake. It decodes OTLP requests to count the spans, log records and
data points it was given, so a contender that drops data is seen doing it. Its own CPU is
not counted: it runs in a separate process.

    python benchmarks/peer_sink.py PORT_FILE   (writes its port, serves until terminated)
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_COUNTS: dict[str, int] = {"spans": 0, "logs": 0, "points": 0, "requests": 0, "bytes": 0}
_ZERO = dict(_COUNTS)
_LOCK = threading.Lock()


def _otlp_items(path: str, body: bytes) -> tuple[str, int]:
    if path == "/v1/traces":
        traces = ExportTraceServiceRequest.FromString(body)
        return "spans", sum(
            len(scope.spans) for rs in traces.resource_spans for scope in rs.scope_spans
        )
    if path == "/v1/logs":
        logs = ExportLogsServiceRequest.FromString(body)
        return "logs", sum(
            len(scope.log_records) for rl in logs.resource_logs for scope in rl.scope_logs
        )
    metrics = ExportMetricsServiceRequest.FromString(body)
    points = 0
    for rm in metrics.resource_metrics:
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                points += len(getattr(metric, kind).data_points) if kind else 0
    return "points", points


def _envelope_items(body: bytes, encoding: str | None) -> dict[str, int]:
    """Sentry envelope items by type (a log item carries ``item_count`` records)."""
    if encoding == "gzip":
        body = gzip.decompress(body)
    kinds: dict[str, int] = {}
    lines = body.split(b"\n")
    index = 1  # the first line is the envelope's header
    while index < len(lines):
        try:
            header = json.loads(lines[index])
        except ValueError:
            break
        kind = header.get("type", "")
        kinds[kind] = kinds.get(kind, 0) + int(header.get("item_count", 1))
        index += 2
    return kinds


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        del format, args

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/counts":
            with _LOCK:
                self._reply(json.dumps(_COUNTS).encode(), "application/json")
            return
        self._reply(b'{"endpoints": ["/v0.4/traces", "/v0.5/traces"]}', "application/json")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        with _LOCK:
            _COUNTS["requests"] += 1
            _COUNTS["bytes"] += len(body)
        if path in ("/v1/traces", "/v1/logs", "/v1/metrics"):
            kind, items = _otlp_items(path, body)
            with _LOCK:
                _COUNTS[kind] += items
            self._reply(b"", "application/x-protobuf")
        elif path == "/counts/reset":
            with _LOCK:
                _COUNTS.clear()
                _COUNTS.update(_ZERO)
            self._reply(b"{}", "application/json")
        elif "/traces" in path:
            # The Datadog tracer says how many traces a payload carries.
            traces = int(self.headers.get("X-Datadog-Trace-Count") or 0)
            with _LOCK:
                _COUNTS["spans"] += traces
            self._reply(b'{"rate_by_service": {}}', "application/json")
        else:
            kinds = _envelope_items(body, self.headers.get("Content-Encoding"))
            with _LOCK:
                _COUNTS["spans"] += kinds.get("transaction", 0)
                _COUNTS["logs"] += kinds.get("log", 0)
            self._reply(b"{}", "application/json")

    do_PUT = do_POST  # noqa: N815 - the Datadog agent intake takes PUT


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        del request, client_address  # a contender closing its connection at exit is normal


def main() -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    Path(sys.argv[1]).write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
