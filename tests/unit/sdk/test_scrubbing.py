"""The export-side wrappers scrub every part of every signal, and only rebuild what changed."""

from __future__ import annotations

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from ttbt5_otel._core.scrub import REDACTED
from ttbt5_otel._sdk.scrubbing import (
    ENTRY_ATTRIBUTE,
    ScrubbingLogExporter,
    ScrubbingSpanExporter,
    scrub_metrics,
    scrub_resource,
    scrub_span,
)

URL = "postgres://app:hunter2pw@db:5432/orders"


def _spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingSpanExporter(exporter)))
    return provider, exporter


def test_every_part_of_a_span_is_scrubbed():
    provider, exporter = _spans()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        link_to = tracer.start_span("other").get_span_context()
        with tracer.start_as_current_span(
            "GET /reset?token=abc123xyz", links=[Link(link_to, {"why": URL})]
        ) as span:
            span.set_attribute("db.url", URL)
            span.set_attribute("hosts", [URL, "ok"])
            span.add_event("retry password=abc12345", {"target": URL})
            span.set_status(Status(StatusCode.ERROR, f"cannot reach {URL}"))
            span.record_exception(ValueError(f"connect {URL}"))
    child = next(s for s in exporter.get_finished_spans() if s.name.startswith("GET"))
    assert child.name == "GET /reset?token=[REDACTED]"
    assert child.attributes["db.url"] == "postgres://[REDACTED]@db:5432/orders"
    assert child.attributes["hosts"] == ("postgres://[REDACTED]@db:5432/orders", "ok")
    retry, exception = child.events
    assert retry.name == "retry password=[REDACTED]"
    assert "hunter2pw" not in str(retry.attributes)
    assert "hunter2pw" not in exception.attributes["exception.message"]
    assert "hunter2pw" not in exception.attributes["exception.stacktrace"]
    assert "hunter2pw" not in child.links[0].attributes["why"]
    assert child.status.description == "cannot reach postgres://[REDACTED]@db:5432/orders"
    assert child.status.status_code is StatusCode.ERROR


def test_a_clean_child_span_is_passed_on_as_it_came():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    # An empty context: a span another test left current must not become the parent.
    with (
        tracer.start_as_current_span("root", context=Context()),
        tracer.start_as_current_span("child") as span,
    ):
        span.set_attribute("http.route", "/orders/{id}")
    child, root = exporter.get_finished_spans()
    assert scrub_span(child) is child
    marked = scrub_span(root)
    assert marked.attributes[ENTRY_ATTRIBUTE] is True


def test_log_bodies_and_fields_are_scrubbed_nested_ones_too():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(ScrubbingLogExporter(exporter)))
    logger = provider.get_logger("test_scrubbing.logs")
    logger.emit(
        LogRecord(
            body=f"connecting to {URL}",
            attributes={"target": URL, "password": "plain", "exception.stacktrace": f"at {URL}"},
        )
    )
    logger.emit(LogRecord(body={"event": "login", "headers": {"Authorization": "Token abc12345"}}))
    first, second = (r.log_record for r in exporter.get_finished_logs())
    assert first.body == "connecting to postgres://[REDACTED]@db:5432/orders"
    assert first.attributes["target"] == "postgres://[REDACTED]@db:5432/orders"
    assert first.attributes["password"] == REDACTED
    assert "hunter2pw" not in first.attributes["exception.stacktrace"]
    assert second.body == {"event": "login", "headers": {"Authorization": REDACTED}}


def test_metric_attributes_are_scrubbed_and_clean_data_is_untouched():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("m").create_counter("requests")
    counter.add(1, {"url": URL})
    counter.add(1, {"route": "/orders"})
    data = reader.get_metrics_data()
    scrubbed = scrub_metrics(data)
    points = scrubbed.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert sorted(str(dict(p.attributes)) for p in points) == sorted(
        [str({"url": "postgres://[REDACTED]@db:5432/orders"}), str({"route": "/orders"})]
    )
    clean_reader = InMemoryMetricReader()
    clean = MeterProvider(metric_readers=[clean_reader])
    clean.get_meter("m").create_counter("c").add(1, {"route": "/orders"})
    clean_data = clean_reader.get_metrics_data()
    assert scrub_metrics(clean_data) is clean_data


def test_resource_attributes_are_scrubbed_by_name_and_value():
    resource = Resource(
        {"db.password": "x1", "deploy.token": "t1", "deploy.source": URL, "service.name": "a"}
    )
    scrubbed = scrub_resource(resource).attributes
    assert scrubbed["db.password"] == REDACTED
    assert scrubbed["deploy.token"] == REDACTED
    assert scrubbed["deploy.source"] == "postgres://[REDACTED]@db:5432/orders"
    assert scrubbed["service.name"] == "a"
    clean = Resource({"service.name": "a"})
    assert scrub_resource(clean) is clean
