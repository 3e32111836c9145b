"""OTLP export requests for spans and log records, as bytes, straight from the SDK's objects.

``encode_spans`` and ``encode_logs`` return what
``opentelemetry.exporter.otlp.proto.common``'s ``encode_spans(...).SerializeToString()``
and ``encode_logs(...)`` return, in about a fifth of the time (the corpus tests compare
both, byte for byte). Items are grouped by resource, then instrumentation scope, in order
of first appearance, as the reference encoder groups them; equal resources or scopes held
in different objects share a group there too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from operator import attrgetter
from typing import Any, Final, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind

from ttbt5_otel._sdk.otlp.wire import (
    any_value,
    attributes,
    field_bytes,
    pack_fixed32,
    pack_fixed64,
    varint,
)

T = TypeVar("T")
# Spans and log records both carry these two under the same names.
_RESOURCE_OF: Final = attrgetter("resource")
_SCOPE_OF: Final = attrgetter("instrumentation_scope")
_KIND: Final = {kind: b"\x30" + varint(kind.value + 1) for kind in SpanKind}
# Span.flags: the W3C trace flags are not sent; bit 8 says whether bit 9 (parent or
# link is remote) is known, as the reference encoder writes them.
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200
# Status {code}: unset, ok, error, as whole fields.
_STATUS_WITHOUT_MESSAGE: Final = {
    code: field_bytes(b"\x7a", b"\x18" + varint(code) if code else b"") for code in (0, 1, 2)
}


def _flags(context: SpanContext | None) -> bytes:
    remote = context is not None and context.is_remote
    return pack_fixed32(_HAS_IS_REMOTE | _IS_REMOTE if remote else _HAS_IS_REMOTE)


def _trace_state(context: SpanContext) -> bytes:
    state = context.trace_state
    if not state:
        return b""
    return field_bytes(b"\x1a", ",".join(f"{k}={v}" for k, v in state.items()).encode())


def _events(events: Sequence[Event]) -> bytes:
    out = bytearray()
    for event in events:
        body = b"\x09" + pack_fixed64(event.timestamp) if event.timestamp else b""
        if event.name:
            body += field_bytes(b"\x12", event.name.encode())
        body += attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            body += b"\x20" + varint(event.dropped_attributes)
        out += field_bytes(b"\x5a", body)
    return bytes(out)


def _links(links: Sequence[Link]) -> bytes:
    out = bytearray()
    for link in links:
        context = link.context
        body = b"\x0a\x10" + context.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + context.span_id.to_bytes(8, "big")
        body += attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            body += b"\x28" + varint(link.dropped_attributes)
        body += b"\x35" + _flags(context)
        out += field_bytes(b"\x6a", body)
    return bytes(out)


def _dropped(container: object) -> int:
    # Not only a full container has dropped items: with a limit of 0 every one is dropped.
    return getattr(container, "dropped", 0)


def _parts(span: ReadableSpan) -> tuple[Any, ...]:
    """What is encoded of ``span``, in the order ``_span`` unpacks it."""
    if type(span) is ReadableSpan:
        # What the batch processors hand over. Its public properties copy the attributes,
        # events and links on every read; the stored ones are read instead.
        attrs, events, links = span._attributes, span._events, span._links  # noqa: SLF001
        return (
            span._name,  # noqa: SLF001
            span._context,  # noqa: SLF001
            span._parent,  # noqa: SLF001
            span._kind,  # noqa: SLF001
            span._start_time,  # noqa: SLF001
            span._end_time,  # noqa: SLF001
            span._status,  # noqa: SLF001
            (attrs, _dropped(attrs), events, _dropped(events), links, _dropped(links)),
        )
    return (
        span.name,
        span.context,
        span.parent,
        span.kind,
        span.start_time,
        span.end_time,
        span.status,
        (
            *(span.attributes, span.dropped_attributes),
            *(span.events, span.dropped_events),
            *(span.links, span.dropped_links),
        ),
    )


def _contents(
    attrs: Any,
    dropped_attributes: int,
    events: Any,
    dropped_events: int,
    links: Any,
    dropped_links: int,
) -> bytes:
    """Span fields 9 to 14: attributes, events, links and what was dropped of each."""
    out = attributes(b"\x4a", attrs) if attrs else b""
    if dropped_attributes:
        out += b"\x50" + varint(dropped_attributes)
    if events:
        out += _events(events)
    if dropped_events:
        out += b"\x60" + varint(dropped_events)
    if links:
        out += _links(links)
    if dropped_links:
        out += b"\x70" + varint(dropped_links)
    return out


_names: dict[str, bytes] = {}
_MAX_CACHED_NAMES: Final = 1_024


def _name_field(name: str) -> bytes:
    encoded = _names.get(name)
    if encoded is None:
        encoded = field_bytes(b"\x2a", name.encode()) if name else b""
        if len(_names) >= _MAX_CACHED_NAMES:
            _names.clear()
        _names[name] = encoded
    return encoded


def _span(span: ReadableSpan) -> bytes:
    name, context, parent, kind, start, end, status, contents = _parts(span)
    out = bytearray(b"\x0a\x10")
    out += context.trace_id.to_bytes(16, "big")
    out += b"\x12\x08"
    out += context.span_id.to_bytes(8, "big")
    if context.trace_state:
        out += _trace_state(context)
    if parent:
        out += b"\x22\x08"
        out += parent.span_id.to_bytes(8, "big")
    out += _name_field(name)
    out += _KIND[kind]
    if start:
        out += b"\x39"
        out += pack_fixed64(start)
    if end:
        out += b"\x41"
        out += pack_fixed64(end)
    out += _contents(*contents)
    code = status.status_code.value
    if status.description:
        message = field_bytes(b"\x12", status.description.encode())
        out += field_bytes(b"\x7a", message + b"\x18" + varint(code) if code else message)
    else:
        out += _STATUS_WITHOUT_MESSAGE[code]
    out += b"\x85\x01"
    out += _flags(parent)
    return bytes(out)


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b""
    body = field_bytes(b"\x0a", scope.name.encode()) if scope.name else b""
    if scope.version:
        body += field_bytes(b"\x12", scope.version.encode())
    return body + attributes(b"\x1a", scope.attributes)


def _group(
    items: Sequence[T],
    resource_of: Callable[[T], Resource],
    scope_of: Callable[[T], InstrumentationScope | None],
) -> list[tuple[Resource, list[tuple[InstrumentationScope | None, list[T]]]]]:
    """Items by resource, then scope, in order of first appearance.

    Objects are looked up by identity first (one provider shares one resource and one
    scope per tracer), and only a new object is compared with the groups so far.
    """
    resources: list[tuple[Resource, list[tuple[InstrumentationScope | None, list[T]]]]] = []
    by_resource: dict[int, list[tuple[InstrumentationScope | None, list[T]]]] = {}
    by_scope: dict[tuple[int, int], list[T]] = {}
    for item in items:
        resource, scope = resource_of(item), scope_of(item) or None
        scopes = by_resource.get(id(resource))
        if scopes is None:
            scopes = _find_or_add(resources, resource, list)
            by_resource[id(resource)] = scopes
        key = (id(scopes), id(scope))
        members = by_scope.get(key)
        if members is None:
            members = _find_or_add(scopes, scope, list)
            by_scope[key] = members
        members.append(item)
    return resources


def _find_or_add(groups: list[tuple[Any, T]], owner: Hashable, new: Callable[[], T]) -> T:
    # Matched the way a dict key is, as in the reference encoder's grouping: equal objects
    # with different hashes (1 and 1.0 in an attribute) stay apart.
    for known, members in groups:
        if known is owner or (hash(known) == hash(owner) and known == owner):
            return members
    members = new()
    groups.append((owner, members))
    return members


def _request(
    grouped: list[tuple[Resource, list[tuple[InstrumentationScope | None, list[T]]]]],
    encode_item: Callable[[T], bytes],
    item_tag: bytes,
) -> bytes:
    out = bytearray()
    for resource, scopes in grouped:
        body = bytearray(field_bytes(b"\x0a", attributes(b"\x0a", resource.attributes)))
        for scope, members in scopes:
            scoped = bytearray(field_bytes(b"\x0a", _scope(scope)))
            for member in members:
                scoped += field_bytes(item_tag, encode_item(member))
            if scope is not None and scope.schema_url:
                scoped += field_bytes(b"\x1a", scope.schema_url.encode())
            body += field_bytes(b"\x12", bytes(scoped))
        if resource.schema_url:
            body += field_bytes(b"\x1a", resource.schema_url.encode())
        out += field_bytes(b"\x0a", bytes(body))
    return bytes(out)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` carrying ``spans``, serialized."""
    grouped = _group(spans, _RESOURCE_OF, _SCOPE_OF)
    return _request(grouped, _span, b"\x12")


def _log(readable: ReadableLogRecord) -> bytes:
    record = readable.log_record
    out = bytearray()
    if record.timestamp:
        out += b"\x09" + pack_fixed64(record.timestamp)
    severity = getattr(record.severity_number, "value", None)
    if severity:
        out += b"\x10" + varint(severity)
    if record.severity_text:
        out += field_bytes(b"\x1a", record.severity_text.encode())
    out += field_bytes(b"\x2a", any_value(record.body))
    out += attributes(b"\x32", record.attributes)
    if readable.dropped_attributes:
        out += b"\x38" + varint(readable.dropped_attributes)
    flags = int(record.trace_flags or 0)
    if flags:
        out += b"\x45" + pack_fixed32(flags)
    if record.trace_id:
        out += b"\x4a\x10" + record.trace_id.to_bytes(16, "big")
    if record.span_id:
        out += b"\x52\x08" + record.span_id.to_bytes(8, "big")
    if record.observed_timestamp:
        out += b"\x59" + pack_fixed64(record.observed_timestamp)
    if record.event_name:
        out += field_bytes(b"\x62", record.event_name.encode())
    return bytes(out)


def encode_logs(batch: Sequence[ReadableLogRecord]) -> bytes:
    """An ``ExportLogsServiceRequest`` carrying ``batch``, serialized."""
    grouped = _group(batch, _RESOURCE_OF, _SCOPE_OF)
    return _request(grouped, _log, b"\x12")
