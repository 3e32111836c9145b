"""The direct OTLP encoder writes the reference encoder's bytes, on a corpus and on random data.

Every comparison is byte for byte with ``encode_spans(...).SerializeToString()`` /
``encode_logs(...).SerializeToString()`` of ``opentelemetry-exporter-otlp-proto-common``,
and the bytes are also parsed back into the OTLP messages to show the difference, if any,
field by field.
"""

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from ttbt5_otel._sdk.otlp import wire
from ttbt5_otel._sdk.otlp.encode import encode_logs, encode_spans

EXAMPLES = int(os.environ.get("TTBT5_PROPERTY_EXAMPLES", "200"))
RESOURCE = Resource.create({"service.name": "orders", "service.version": "1.2"})
OTHER_RESOURCE = Resource({"service.name": "billing"}, "https://opentelemetry.io/schemas/1.26.0")
SCOPE = InstrumentationScope("shop.checkout", "2.0", "https://example.test/schema", {"team": "a"})
EVERY_VALUE = {
    "str": "/checkout",
    "empty": "",
    "unicode": "café ☕ 𝄞",
    "true": True,
    "false": False,
    "zero": 0,
    "int": 42,
    "negative": -7,
    "int64 max": 2**63 - 1,
    "int64 min": -(2**63),
    "float": 0.125,
    "negative zero": -0.0,
    "inf": math.inf,
    "strs": ("a", "b"),
    "ints": (1, -2, 3),
    "floats": (1.5, -0.0),
    "bools": (True, False),
    "empty seq": (),
}


def assert_same_spans(spans):
    ours = encode_spans(spans)
    theirs = reference_spans(spans).SerializeToString()
    assert ExportTraceServiceRequest.FromString(ours) == ExportTraceServiceRequest.FromString(
        theirs
    )
    assert ours == theirs


def assert_same_logs(records):
    ours = encode_logs(records)
    theirs = reference_logs(records).SerializeToString()
    assert ExportLogsServiceRequest.FromString(ours) == ExportLogsServiceRequest.FromString(theirs)
    assert ours == theirs


def recorded_spans(resource=RESOURCE, limits=None):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_spans_of_every_kind_shape_and_value_type():
    """Root, child and remote-parent spans; every kind; events, links, status, trace state."""
    provider, exporter = recorded_spans()
    tracer = provider.get_tracer("shop.checkout", "2.0", schema_url="https://example.test/s")
    plain = provider.get_tracer("plain")
    remote_parent = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    linked = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(1))
    local_link = SpanContext(3, 4, is_remote=False)
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=EVERY_VALUE) as s:
        s.add_event("retry", {"attempt": 2, "error": "timeout"}, timestamp=1_700_000_000_000)
        s.add_event("")
        s.set_status(Status(StatusCode.ERROR, "payment failed"))
        for kind in SpanKind:
            with plain.start_as_current_span(f"child {kind.name}", kind=kind) as child:
                child.set_status(Status(StatusCode.OK))
    context = set_span_in_context(NonRecordingSpan(remote_parent))
    with tracer.start_as_current_span(
        "from remote", context=context, links=[Link(linked, {"why": "batch"}), Link(local_link)]
    ):
        pass
    with tracer.start_as_current_span(""):
        pass
    spans = exporter.get_finished_spans()
    assert len(spans) == 8
    assert_same_spans(spans)


def test_resources_and_scopes_group_as_the_reference_groups_them():
    """Spans of two providers and several tracers, interleaved; equal objects share a group."""
    first, first_spans = recorded_spans()
    second, second_spans = recorded_spans(OTHER_RESOURCE)
    equal_again, equal_spans = recorded_spans(Resource.create(dict(RESOURCE.attributes)))
    for index in range(6):
        provider = (first, second, equal_again)[index % 3]
        name = ("a", "b")[index % 2]
        with provider.get_tracer(name, "1", attributes={"i": index % 2}).start_as_current_span(
            f"span {index}"
        ):
            pass
    spans = [
        *first_spans.get_finished_spans(),
        *second_spans.get_finished_spans(),
        *equal_spans.get_finished_spans(),
    ]
    interleaved = spans[::2] + spans[1::2]
    assert_same_spans(interleaved)
    assert_same_spans([])


def test_dropped_counts_under_limits():
    """Attributes, events, links and event attributes beyond the limits are counted as dropped."""
    limits = SpanLimits(
        max_span_attributes=2,
        max_events=1,
        max_links=1,
        max_event_attributes=1,
        max_attribute_length=3,
    )
    provider, exporter = recorded_spans(limits=limits)
    links = [Link(SpanContext(5, 6, is_remote=False)), Link(SpanContext(7, 8, is_remote=True))]
    with provider.get_tracer("t").start_as_current_span(
        "limited", attributes={"a": "long value", "b": 1, "c": 2}, links=links
    ) as span:
        span.add_event("one", {"x": 1, "y": 2})
        span.add_event("two")
    live = provider.get_tracer("t").start_span("live", attributes={"a": "x", "b": 1, "c": 2})
    live.add_event("one")
    live.add_event("two")
    live.end()
    # A span that is not a plain ReadableSpan (here the SDK's live span) is read through
    # its public properties; the dropped counts come out the same.
    assert type(live) is not ReadableSpan
    assert_same_spans([live])
    [span, _] = exporter.get_finished_spans()
    assert span.dropped_attributes
    assert span.dropped_events
    assert span.dropped_links
    assert_same_spans([span])


def test_values_the_reference_refuses_are_left_out_the_same_way():
    """A value out of int64 range or of an unknown type drops its pair, not the span."""
    context = SpanContext(9, 10, is_remote=False)
    span = ReadableSpan(
        name="odd values",
        context=context,
        resource=RESOURCE,
        attributes={"big": 2**64, "object": object(), "kept": "yes", "none": None},
        events=[Event("e", {"nested": {"k": [1, "two", {"deep": b"\x00\xff"}]}}, 5)],
        status=Status(StatusCode.UNSET),
        start_time=1,
        end_time=None,
        instrumentation_scope=None,
    )
    assert_same_spans([span])


def log_record(**fields):
    defaults = {
        "timestamp": 1_700_000_000_000_000_001,
        "observed_timestamp": 1_700_000_000_000_000_002,
        "severity_number": SeverityNumber.INFO,
        "severity_text": "INFO",
        "body": "charged order 1234",
        "attributes": {"code.function": "charge", "order.id": 1234},
    }
    return LogRecord(**{**defaults, **fields})


def test_log_records_of_every_body_and_correlation():
    """Bodies of every type, with and without trace ids and flags, scopes and resources."""
    records = [
        log_record(trace_id=0x1F, span_id=0x2F, trace_flags=TraceFlags(1)),
        log_record(body={"event": "login", "user": {"id": 7, "roles": ["a", "b"]}}),
        log_record(body=["x", 1, 2.5, True, None]),
        log_record(body=b"\x00\x01binary"),
        log_record(body=None, severity_number=None, severity_text=None, attributes=None),
        log_record(body=42, event_name="orders.charged"),
        log_record(body="", timestamp=None, observed_timestamp=None),
    ]
    readable = [
        ReadableLogRecord(
            record, resource=(RESOURCE, OTHER_RESOURCE)[i % 2], instrumentation_scope=s
        )
        for i, (record, s) in enumerate(
            zip(
                records,
                [SCOPE, None, SCOPE, InstrumentationScope("x"), None, SCOPE, SCOPE],
                strict=True,
            )
        )
    ]
    assert_same_logs(readable)


def test_pair_cache_keeps_types_apart_and_stays_bounded(monkeypatch):
    """True and 1 share a hash but not an encoding; the cache is emptied when full."""
    monkeypatch.setattr(wire, "_pairs", {})
    one = wire.attributes(b"\x4a", {"k": 1})
    true = wire.attributes(b"\x4a", {"k": True})
    assert one != true
    assert wire.attributes(b"\x4a", {"k": 1}) == one
    monkeypatch.setattr(wire, "_MAX_CACHED_PAIRS", 3)
    for index in range(10):
        wire.attributes(b"\x4a", {"k": index})
        assert len(wire._pairs) <= 3
    assert wire.attributes(b"\x4a", {"k": -0.0}) != wire.attributes(b"\x4a", {"k": 0.0})


def test_varints_at_their_boundaries():
    """Each length of varint, as protobuf writes them."""
    for value in (0, 1, 127, 128, 300, 2**14 - 1, 2**14, 2**32, 2**63, 2**64 - 1):
        span_id = value or 1
        context = SpanContext(1, span_id & (2**64 - 1) or 1, is_remote=False)
        span = ReadableSpan(
            name="v", context=context, resource=RESOURCE, attributes={"n": value - 2**63}
        )
        assert_same_spans([span])
    with pytest.raises(ValueError, match="int64"):
        wire.int64(2**63)


scalar = (
    st.text(max_size=20)
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
)
values = scalar | st.lists(st.text(max_size=5), max_size=3).map(tuple)
attributes = st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=6)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    name=st.text(max_size=30),
    attrs=attributes,
    event_attrs=attributes,
    kind=st.sampled_from(list(SpanKind)),
    code=st.sampled_from(list(StatusCode)),
    description=st.text(max_size=20),
    ids=st.tuples(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1)),
    body=values,
)
def test_random_spans_and_logs_encode_like_the_reference(
    name, attrs, event_attrs, kind, code, description, ids, body
):
    """Any name, attributes, kind, status, ids and log body: the same bytes."""
    trace_id, span_id = ids
    span = ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False),
        parent=SpanContext(trace_id, 77, is_remote=True),
        resource=RESOURCE,
        attributes=attrs,
        events=[Event("event", event_attrs, 3)],
        kind=kind,
        status=Status(code, description if code is StatusCode.ERROR else None),
        start_time=10,
        end_time=20,
        instrumentation_scope=SCOPE,
    )
    assert_same_spans([span, span])
    record = log_record(body=body, attributes=attrs, trace_id=trace_id, span_id=span_id)
    assert_same_logs([ReadableLogRecord(record, resource=RESOURCE, instrumentation_scope=SCOPE)])


def test_limits_of_zero_still_report_what_was_dropped():
    """With a limit of 0 the containers are empty, but their dropped counts are sent."""
    limits = SpanLimits(max_span_attributes=0, max_events=0, max_links=0)
    provider, exporter = recorded_spans(limits=limits)
    with provider.get_tracer("t").start_as_current_span(
        "nothing kept", attributes={"a": 1}, links=[Link(SpanContext(5, 6, is_remote=False))]
    ) as span:
        span.add_event("gone")
    [span] = exporter.get_finished_spans()
    assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (1, 1, 1)
    assert_same_spans([span])


def test_empty_keys_and_resources_equal_only_by_value():
    """An empty map key is left out as proto3 leaves it; 1 and 1.0 resources stay apart."""
    record = log_record(body={"": 1, "k": {"": "nested"}})
    assert_same_logs([ReadableLogRecord(record, resource=RESOURCE)])
    spans = [
        ReadableSpan(
            name=name,
            context=SpanContext(1, index + 1, is_remote=False),
            resource=Resource({"shard": shard}),
        )
        for index, (name, shard) in enumerate([("a", 1), ("b", 1.0), ("c", 1)])
    ]
    assert_same_spans(spans)
