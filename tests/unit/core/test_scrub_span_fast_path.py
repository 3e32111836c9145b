"""Spans and log records take the cheap way through export scrubbing and lose nothing by it.

``scrub_span`` reads the SDK's own ``ReadableSpan`` as stored (its properties copy on each
access), walks events, links and the status only when there are some, and still scrubs
every part; any other span class is read through its properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from ttbt5_otel._core.scrub import REDACTED, Scrubber
from ttbt5_otel._sdk.scrubbing import ENTRY_ATTRIBUTE, scrub_log_record, scrub_span

URL = "postgres://app:hunter2pw@db:5432/orders"
SCRUBBED_URL = "postgres://[REDACTED]@db:5432/orders"
PARENT = SpanContext(trace_id=1, span_id=2, is_remote=False)
OTHER = SpanContext(trace_id=3, span_id=4, is_remote=False)


def _span(**fields: Any) -> ReadableSpan:
    """A finished child span (not an entry) with ``fields`` set."""
    return ReadableSpan(**{"name": "work", "parent": PARENT, "kind": SpanKind.SERVER, **fields})


def _finished(limits: SpanLimits | None = None) -> ReadableSpan:
    """A root INTERNAL span as the SDK hands it to exporters, with two events and links."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span(
        "root",
        context=Context(),
        attributes={"route": "/a", "n": 1},
        links=[Link(OTHER, {"why": "a"}), Link(OTHER, {"why": "b"})],
    )
    span.add_event("first", {"k": 1})
    span.add_event("second", {"k": 2})
    span.end()
    (finished,) = exporter.get_finished_spans()
    return finished


def test_a_clean_span_is_passed_on_without_the_sdks_copying_properties(monkeypatch):
    """The SDK's own span is read as stored: its copying properties are never called."""
    span = _span(attributes={"route": "/a", "n": 1}, events=(Event("e", {"k": 1}),))

    def copying(self: ReadableSpan) -> Any:
        raise AssertionError("a copying property was read")

    for name in ("attributes", "events", "links"):
        monkeypatch.setattr(ReadableSpan, name, property(copying))
    scrubber = Scrubber()
    for _ in range(2):
        assert scrub_span(span, scrubber) is span


def test_a_span_subclass_is_read_through_its_properties():
    """A subclass may compute its parts: what its properties return is what is scrubbed."""

    class Computed(ReadableSpan):
        @property
        def attributes(self) -> Attributes:
            return {"db.url": URL, "password": 5}

        @property
        def events(self) -> Sequence[Event]:
            return (Event(f"retry {URL}"),)

        @property
        def links(self) -> Sequence[Link]:
            return (Link(OTHER, {"why": URL}),)

    scrubbed = scrub_span(Computed("work", parent=PARENT, kind=SpanKind.SERVER))
    assert dict(scrubbed.attributes or {}) == {"db.url": SCRUBBED_URL, "password": REDACTED}
    assert scrubbed.events[0].name == f"retry {SCRUBBED_URL}"
    assert dict(scrubbed.links[0].attributes or {}) == {"why": SCRUBBED_URL}


def test_a_span_whose_parts_are_not_stored_where_expected_is_asked_publicly(monkeypatch):
    """Were the SDK to keep events elsewhere, the public property is read instead."""
    span = _span()
    del span._events
    span._elsewhere = (Event(URL),)  # type: ignore[attr-defined]
    stored = property(lambda self: getattr(self, "_elsewhere", None) or tuple(self._events))
    monkeypatch.setattr(ReadableSpan, "events", stored)
    assert [event.name for event in scrub_span(span).events] == [SCRUBBED_URL]


def test_every_part_is_still_scrubbed_and_clean_parts_are_kept_as_they_were():
    """Secrets in the name, events, links and status go; untouched parts stay the same objects."""
    events, links = (Event("e", {"k": 1}),), (Link(OTHER, {"why": "a"}),)
    status = Status(StatusCode.ERROR, "timed out")
    scrubbed = scrub_span(_span(name=URL, events=events, links=links, status=status))
    assert scrubbed.name == SCRUBBED_URL
    assert scrubbed.events is events
    assert scrubbed.links is links
    assert scrubbed.status is status
    dirty = scrub_span(
        _span(
            events=(Event("e", {"target": URL}),),
            links=(Link(OTHER, {"why": URL}),),
            status=Status(StatusCode.ERROR, f"cannot reach {URL}"),
        )
    )
    assert dict(dirty.events[0].attributes or {}) == {"target": SCRUBBED_URL}
    assert dict(dirty.links[0].attributes or {}) == {"why": SCRUBBED_URL}
    assert dirty.status.description == f"cannot reach {SCRUBBED_URL}"
    assert dirty.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("status", [Status(StatusCode.OK), Status(StatusCode.ERROR, "")])
def test_a_status_without_a_description_is_passed_on_as_it_came(status):
    """No description, nothing to scan: the span is not rebuilt for its status."""
    span = _span(status=status)
    assert scrub_span(span) is span


@pytest.mark.parametrize("attributes", [None, {}, {"route": "/a"}])
def test_an_entry_span_is_marked_on_a_copy_whatever_its_attributes(attributes):
    """The marker is added to a copy; the span's own attributes are left as they were."""
    span = ReadableSpan("root", kind=SpanKind.INTERNAL, attributes=attributes)
    marked = scrub_span(span)
    assert dict(marked.attributes or {}) == {**(attributes or {}), ENTRY_ATTRIBUTE: True}
    assert ENTRY_ATTRIBUTE not in span.attributes


def test_an_entry_span_from_the_sdk_keeps_its_parts_and_its_dropped_counts():
    """The SDK's stored attributes, events and links carry over, with what the limits cut."""
    span = _finished(SpanLimits(max_events=1, max_links=1))
    marked = scrub_span(span)
    assert dict(marked.attributes or {}) == {"route": "/a", "n": 1, ENTRY_ATTRIBUTE: True}
    assert ENTRY_ATTRIBUTE not in span.attributes
    assert [event.name for event in marked.events] == ["second"]
    assert [dict(link.attributes or {}) for link in marked.links] == [{"why": "b"}]
    assert (marked.dropped_events, marked.dropped_links) == (1, 1)


def _records(*records: LogRecord) -> list[ReadableLogRecord]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("test_scrub_span_fast_path")
    for record in records:
        logger.emit(record)
    return list(exporter.get_finished_logs())


def test_log_records_are_scrubbed_in_place_every_time_and_clean_ones_are_left_alone():
    """Warm or cold, a record's secrets go and a clean record keeps its very objects."""
    scrubber = Scrubber()
    for _ in range(2):
        clean, dirty = _records(
            LogRecord(body="order 7 reserved", attributes={"order_id": "o-7", "items": 3}),
            LogRecord(body=f"to {URL}", attributes={"order_id": URL, "pin": 1234, "items": 3}),
        )
        body, attributes = clean.log_record.body, clean.log_record.attributes
        scrub_log_record(clean, scrubber)
        scrub_log_record(dirty, scrubber)
        assert clean.log_record.body is body
        assert clean.log_record.attributes is attributes
        assert dict(clean.log_record.attributes or {}) == {"order_id": "o-7", "items": 3}
        assert dirty.log_record.body == f"to {SCRUBBED_URL}"
        assert dict(dirty.log_record.attributes or {}) == {
            "order_id": SCRUBBED_URL,
            "pin": REDACTED,
            "items": 3,
        }
