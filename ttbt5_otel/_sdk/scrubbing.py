"""Scrubbing on the export side: every signal passes the scrubber before its exporter.

The wrappers run on the batch processors' export threads (and the metric reader's), so the
application's threads pay nothing for value scanning. Objects are only rebuilt when
something was redacted; a clean span, record or data point is passed on as it came.
The resource is scrubbed once, when the providers are built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    Metric,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status
from opentelemetry.util.types import Attributes

from ttbt5_otel._core.scrub import DROPPED, Scrubber, active_scrubber
from ttbt5_otel._sdk.forwarding import ForwardingMetricExporter

ENTRY_ATTRIBUTE = "ttbt5.entry"
"""Set on root INTERNAL spans: the requests of apps that only use decorators, for RED."""


def scrub_resource(resource: Resource, scrubber: Scrubber | None = None) -> Resource:
    """``resource`` with secret-looking attributes redacted (it becomes ``target_info``)."""
    scrubbed = (scrubber or active_scrubber()).attributes(resource.attributes, "resource")
    if scrubbed is resource.attributes:
        return resource
    return Resource(dict(scrubbed or {}), resource.schema_url)


def _is_root_internal(span: ReadableSpan) -> bool:
    return span.kind is SpanKind.INTERNAL and (span.parent is None or span.parent.is_remote)


def _events(scrubber: Scrubber, events: Sequence[Event]) -> Sequence[Event]:
    changed = False
    result: list[Event] = []
    for event in events:
        name = scrubber.whole_text(event.name, "span.event")
        attributes = scrubber.attributes(event.attributes, "span.event")
        if name is event.name and attributes is event.attributes:
            result.append(event)
            continue
        changed = True
        result.append(Event(name, attributes, event.timestamp))
    return result if changed else events


def _links(scrubber: Scrubber, links: Sequence[Link]) -> Sequence[Link]:
    scrubbed = [(link, scrubber.attributes(link.attributes, "span.link")) for link in links]
    if all(attributes is link.attributes for link, attributes in scrubbed):
        return links
    return [Link(link.context, attributes) for link, attributes in scrubbed]


def _status(scrubber: Scrubber, status: Status, description: str) -> Status:
    scrubbed = scrubber.whole_text(description, "span.status")
    if scrubbed is description:
        return status
    return Status(status.status_code, scrubbed)


def _stored(span: ReadableSpan) -> tuple[Attributes, Sequence[Event], Sequence[Link]]:
    """``span``'s attributes, events and links, read once and without copies where safe.

    The SDK's properties build a new view or tuple on each access (the events and links are
    copied under a lock): about 0.9 µs a span, more than scrubbing a clean span costs. The
    properties of the SDK's own ``ReadableSpan`` (what its processors hand to exporters) only
    copy what it stores, so that is read as stored; a subclass may compute them: it is asked.
    A rebuilt span gets the stored events and links, and so keeps their dropped counts.
    """
    if type(span) is ReadableSpan:
        try:
            return span._attributes, span._events, span._links  # noqa: SLF001
        except AttributeError:  # an SDK that keeps them elsewhere: ask it
            pass
    return span.attributes, span.events, span.links


def _with_entry(attributes: Attributes) -> MutableMapping[str, Any]:
    """A copy of ``attributes`` marking the span as an entry."""
    # The SDK's mapping copies to a dict at C speed; unpacking it goes key by key.
    merged = attributes.copy() if type(attributes) is BoundedAttributes else dict(attributes or {})
    merged[ENTRY_ATTRIBUTE] = True
    return merged


def scrub_span(span: ReadableSpan, scrubber: Scrubber | None = None) -> ReadableSpan:
    """The span to export: secrets redacted, a root INTERNAL span marked as an entry."""
    scrubber = scrubber or active_scrubber()
    original_attributes, original_events, original_links = _stored(span)
    original_name, original_status = span.name, span.status
    name = scrubber.whole_text(original_name, "span.name")
    attributes: Attributes = scrubber.attributes(original_attributes, "span.attribute")
    # Most spans have no events, no links, no status description: nothing to walk.
    events = _events(scrubber, original_events) if original_events else original_events
    links = _links(scrubber, original_links) if original_links else original_links
    description = original_status.description
    status = _status(scrubber, original_status, description) if description else original_status
    entry = _is_root_internal(span)
    unchanged = (
        name is original_name
        and attributes is original_attributes
        and events is original_events
        and links is original_links
        and status is original_status
    )
    if unchanged and not entry:
        return span
    if entry:
        attributes = _with_entry(attributes)
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingSpanExporter(SpanExporter):
    """Redacts secrets in spans on the export thread, off the hot path."""

    def __init__(self, inner: SpanExporter) -> None:
        """Wrap ``inner``; every batch is scrubbed before it reaches it."""
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub, then export."""
        scrubber = active_scrubber()
        return self.inner.export([scrub_span(s, scrubber) for s in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def scrub_log_record(record: ReadableLogRecord, scrubber: Scrubber | None = None) -> None:
    """Redact secrets in ``record``'s body and attributes, in place.

    The record belongs to the export pipeline by now; rewriting it in place saves copying a
    structure the SDK keeps frozen only at its outer layer.
    """
    scrubber = scrubber or active_scrubber()
    log = record.log_record
    body = log.body
    if isinstance(body, str):
        log.body = scrubber.whole_text(body, "log.body")
    elif body is not None:
        scrubbed_body = scrubber.value("body", body, "log.body")
        log.body = None if scrubbed_body is DROPPED else scrubbed_body
    attributes = log.attributes
    if not attributes:
        return
    scrubbed = scrubber.attributes(attributes, "log.attribute")
    if scrubbed is attributes or scrubbed is None:
        return
    writable: Any = attributes
    for key in list(attributes):
        if key not in scrubbed:
            del writable[key]
        elif scrubbed[key] is not attributes[key]:
            writable[key] = scrubbed[key]


class ScrubbingLogExporter(LogRecordExporter):
    """Redacts secrets in log records (bodies after formatting, attributes) before export."""

    def __init__(self, inner: LogRecordExporter) -> None:
        """Wrap ``inner``."""
        self.inner = inner

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Scrub every record, then export."""
        scrubber = active_scrubber()
        for record in batch:
            scrub_log_record(record, scrubber)
        return self.inner.export(batch)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def _metric(scrubber: Scrubber, metric: Metric) -> Metric:
    points = getattr(metric.data, "data_points", None)
    if not points:
        return metric
    new_points: list[Any] = []
    changed = False
    for point in points:
        attributes: Mapping[str, Any] | None = point.attributes
        scrubbed = scrubber.attributes(attributes, "metric.attribute")
        if scrubbed is attributes:
            new_points.append(point)
            continue
        changed = True
        new_points.append(dataclasses.replace(point, attributes=scrubbed))
    if not changed:
        return metric
    data: Any = metric.data  # every point-carrying kind has data_points
    return dataclasses.replace(metric, data=dataclasses.replace(data, data_points=new_points))


def scrub_metrics(data: MetricsData, scrubber: Scrubber | None = None) -> MetricsData:
    """``data`` with secrets in data point attributes redacted; the same object when clean."""
    scrubber = scrubber or active_scrubber()
    resources: list[ResourceMetrics] = []
    changed = False
    for resource_metrics in data.resource_metrics:
        scopes: list[ScopeMetrics] = []
        for scope in resource_metrics.scope_metrics:
            metrics = [_metric(scrubber, m) for m in scope.metrics]
            if all(new is old for new, old in zip(metrics, scope.metrics, strict=True)):
                scopes.append(scope)
                continue
            changed = True
            scopes.append(dataclasses.replace(scope, metrics=metrics))
        resources.append(dataclasses.replace(resource_metrics, scope_metrics=scopes))
    return MetricsData(resources) if changed else data


class ScrubbingMetricExporter(ForwardingMetricExporter):
    """Redacts secrets in metric attributes, including those of other libraries' instruments."""

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        """Scrub, then export."""
        return self.inner.export(scrub_metrics(metrics_data), timeout_millis, **kwargs)
