"""Export-thread cost of secret scrubbing, against the cost of a raw SDK span.

Scrubbing runs in the exporters' wrappers, on the export thread. What it adds there is
compared with what one span costs the raw OpenTelemetry SDK in total: creating and ending
it on the calling thread plus OTLP-encoding it on the export thread. Every figure is CPU
time per item from one run of this process:

- ``raw span``: start + end with the raw SDK (no processor work), plus OTLP protobuf encoding;
- ``scrub, names only``: ``scrub_values=False``, what earlier releases did;
- ``scrub, names + values``: the default;
- each for spans whose attribute values repeat (routes, methods: the common case) and for
  spans whose every value is new (full URLs with ids, unique messages), and for log records.

    python benchmarks/bench_scrub.py [--spans N] [--repeat R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ttbt5_otel._core.scrub import Scrubber
from ttbt5_otel._sdk.scrubbing import scrub_log_record, scrub_span

TARGET_ADDED_SHARE = 0.30


def _attributes(index: int, *, unique: bool) -> dict[str, str | int]:
    order = index if unique else index % 50
    return {
        "http.request.method": "GET",
        "http.route": "/api/orders/{order_id}",
        "url.path": f"/api/orders/{order}",
        "url.full": f"http://127.0.0.1:8000/api/orders/{order}?page={order % 7}&size=50",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "client.address": "127.0.0.1",
        "user_agent.original": "python-requests/2.32.3",
        "network.protocol.version": "1.1",
        "http.response.status_code": 200,
        "db.query.text": f"SELECT id, total FROM orders WHERE id = {order}",
    }


def _span_name(index: int, *, unique: bool) -> str:
    return f"GET /api/orders/{index}" if unique else "GET /api/orders/{order_id}"


def make_spans(count: int, *, unique: bool) -> tuple[list[ReadableSpan], float]:
    """``count`` finished spans, and the raw SDK's CPU seconds per span to make them."""
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    exporter = InMemorySpanExporter()
    tracer = provider.get_tracer("bench")
    started = time.process_time()
    for index in range(count):
        attributes = _attributes(index, unique=unique)
        span = tracer.start_span(
            _span_name(index, unique=unique), kind=SpanKind.SERVER, attributes=attributes
        )
        span.end()
    making = (time.process_time() - started) / count
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for index in range(count):
        attributes = _attributes(index, unique=unique)
        tracer.start_span(
            _span_name(index, unique=unique), kind=SpanKind.SERVER, attributes=attributes
        ).end()
    return list(exporter.get_finished_spans()), making


def make_logs(count: int, *, unique: bool) -> list[ReadableLogRecord]:
    """``count`` emitted log records with a formatted body and a few fields."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("bench")
    for index in range(count):
        order = index if unique else index % 50
        logger.emit(
            LogRecord(
                body=f"order {order} reserved for customer cust_{order % 97} in 12 ms",
                severity_number=SeverityNumber.INFO,
                attributes={"order_id": f"o-{order}", "code.function": "reserve", "items": 3},
            )
        )
    return list(exporter.get_finished_logs())


def per_item(work: Callable[[], object], count: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``work``, in CPU seconds per item."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best / count


def encode(spans: Sequence[ReadableSpan]) -> None:
    encode_spans(spans).SerializeToString()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    count, repeat = args.spans, args.repeat
    rows: list[tuple[str, float, float, float]] = []
    worst_share = 0.0
    for unique in (False, True):
        spans, making = make_spans(count, unique=unique)
        raw = making + per_item(lambda s=spans: encode(s), count, repeat)
        names = per_item(lambda s=spans: _scrub_all(s, Scrubber(values=False)), count, repeat)
        # A fresh scrubber per run: its memory of clean values must be earned in the run.
        both = per_item(lambda s=spans: _scrub_all(s, Scrubber()), count, repeat)
        label = "spans, every value new" if unique else "spans, values repeat"
        rows.append((label, raw, names, both))
        worst_share = max(worst_share, (both - names) / raw)
    for unique in (False, True):
        logs = make_logs(count, unique=unique)
        names = per_item(lambda r=logs: _scrub_logs(r, Scrubber(values=False)), count, repeat)
        both = per_item(lambda r=logs: _scrub_logs(r, Scrubber()), count, repeat)
        label = "log records, every body new" if unique else "log records, bodies repeat"
        rows.append((label, rows[0][1], names, both))
    print(f"{'CPU µs per item':<30} {'raw span':>9} {'names':>7} {'+values':>8} {'added':>7}")
    for label, raw, names, both in rows:
        added = (both - names) / raw
        print(f"{label:<30} {raw * 1e6:>9.1f} {names * 1e6:>7.1f} {both * 1e6:>8.1f} {added:>7.0%}")
    verdict = "ok" if worst_share <= TARGET_ADDED_SHARE else "OVER"
    print(
        f"\nvalue scrubbing adds at most {worst_share:.0%} of a raw span's CPU per span "
        f"(target {TARGET_ADDED_SHARE:.0%}): {verdict}"
    )
    return 0


def _scrub_all(spans: Sequence[ReadableSpan], scrubber: Scrubber) -> None:
    for span in spans:
        scrub_span(span, scrubber)


def _scrub_logs(records: Sequence[ReadableLogRecord], scrubber: Scrubber) -> None:
    for record in records:
        scrub_log_record(record, scrubber)


if __name__ == "__main__":
    raise SystemExit(main())
