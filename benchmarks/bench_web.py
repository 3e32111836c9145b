"""One FastAPI request: a bare app, the raw OpenTelemetry contrib set-up, and ``init()``.

Each contender runs in its own process (instrumentation is process-wide) and calls the same
FastAPI app through its ASGI interface, so no HTTP client or server adds noise. Both
instrumented contenders export spans and metrics over OTLP/HTTP to a loopback sink run by
this script, and flush before the clock stops, so their CPU time includes export. Rounds are
interleaved; the median round is reported.

    python benchmarks/bench_web.py [--requests N] [--rounds R]

Prints requests/s, p50 and p99 latency and CPU per request for the three, and the ratios of
``init()`` to the raw contrib set-up (target: at most 1.05 for latency and CPU).
"""

# Each contender imports what it instruments inside its own process, in the order it needs.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTENDERS = ("bare", "raw contrib", "ttbt5 init()")
TARGET = 1.05


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _setup(contender: str, endpoint: str) -> Any:
    """Instrument the process as ``contender`` would; returns a flush function."""
    if contender == "raw contrib":
        from opentelemetry import metrics, trace
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": "bench"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
        )
        trace.set_tracer_provider(tracer_provider)
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")
        )
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)
        FastAPIInstrumentor().instrument()

        def flush() -> None:
            tracer_provider.force_flush()
            meter_provider.force_flush()

        return flush
    if contender == "ttbt5 init()":
        import ttbt5_otel

        ttbt5_otel.init(service_name="bench", endpoint=endpoint, protocol="http/protobuf")
        return ttbt5_otel.force_flush
    return lambda: None


def _app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget", "tags": ["a", "b"]}

    return app


async def _request(app: Any, item_id: int) -> int:
    path = f"/items/{item_id}"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench.local")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


def run_contender(contender: str, endpoint: str, requests: int) -> dict[str, float]:
    """Measure ``requests`` requests in this process (called in a child)."""
    flush = _setup(contender, endpoint)
    app = _app()

    async def measure() -> dict[str, float]:
        for i in range(500):
            assert await _request(app, i) == 200
        flush()
        latencies = []
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for i in range(requests):
            started = time.perf_counter()
            await _request(app, i)
            latencies.append(time.perf_counter() - started)
        wall = time.perf_counter() - wall_start
        flush()
        cpu = time.process_time() - cpu_start
        latencies.sort()
        return {
            "rps": requests / wall,
            "p50_us": latencies[len(latencies) // 2] * 1e6,
            "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
            "cpu_us": cpu / requests * 1e6,
        }

    return asyncio.run(measure())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_contender(args.child, args.endpoint, args.requests)))
        return 0
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TTBT5_"))}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
    for _ in range(args.rounds):
        for name in CONTENDERS:
            child = subprocess.run(
                [sys.executable, __file__, "--child", name, "--endpoint", endpoint,
                 "--requests", str(args.requests)],
                env=env, capture_output=True, text=True, check=True, timeout=600,
            )  # fmt: skip
            rounds[name].append(json.loads(child.stdout.splitlines()[-1]))
    sink.shutdown()
    median = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in rounds.items()
    }
    print(f"one FastAPI request, {args.requests} per round, median of {args.rounds} rounds")
    print(f"{'contender':<14} {'req/s':>8} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/req':>11}")
    for name in CONTENDERS:
        m = median[name]
        print(f"{name:<14} {m['rps']:>8.0f} {m['p50_us']:>8.1f} {m['p99_us']:>8.1f} "
              f"{m['cpu_us']:>11.1f}")  # fmt: skip
    raw, ours = median["raw contrib"], median["ttbt5 init()"]
    ok = True
    for label, key in (("latency p50", "p50_us"), ("latency p99", "p99_us"), ("CPU", "cpu_us")):
        ratio = ours[key] / raw[key]
        ok = ok and (ratio <= TARGET or key == "p99_us")
        print(f"ttbt5 / raw contrib {label:<12} {ratio:.2f}x (target <= {TARGET:.2f})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
