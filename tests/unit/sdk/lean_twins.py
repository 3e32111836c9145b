"""Twin span pipelines: one started the lean way, one the SDK's way, compared in full.

Each twin has the same resource, scope, limits and id sequence; ``run`` starts a span with
the given starter, changes it every way there is (valid and not), ends it, and returns
everything observable: live and exported facts, warnings and span processor calls.
"""

import inspect
import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
    _Span,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ttbt5_otel._core import lean_spans
from ttbt5_otel._core.clean_attributes import clean_attributes
from ttbt5_otel._sdk.providers import parent_based_sampler

RESOURCE = Resource({"service.name": "twins"})
UNSET_DEFAULT = inspect.signature(ReadableSpan.__init__).parameters["status"].default
STATIC = {"user.id": 42, "http.route": "/checkout", "tags": ["a", "b"], "ratio": 0.5}
ERROR = ValueError("declined")
try:
    raise ERROR
except ValueError:
    pass  # now it has a traceback, the same one for both twins


class FixedIds(IdGenerator):
    """Trace ids from a list, span ids 1, 2, 3, ...; says its trace ids are random."""

    def __init__(self, trace_ids: list[int]) -> None:
        self.trace_ids = iter(trace_ids)
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return next(self.trace_ids)

    def generate_span_id(self) -> int:
        self.span_id += 1
        return self.span_id

    def is_trace_id_random(self) -> bool:
        return True


class Recorder(SpanProcessor):
    """Notes each call the span processors get, as the span looks then."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def on_start(self, span, parent_context=None) -> None:
        self.calls.append(("on_start", span.name, parent_context is None))

    def _on_ending(self, span) -> None:
        self.calls.append(("_on_ending", span.name, span.is_recording()))

    def on_end(self, span) -> None:
        self.calls.append(("on_end", span.name, type(span) is ReadableSpan))


class Twin:
    """One pipeline: provider, this package's tracer on it, and what it exported."""

    def __init__(self, sampler: Sampler | None, limits: SpanLimits | None, ids: list[int]):
        self.exported = InMemorySpanExporter()
        # The SDK's own span metrics, when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED is set.
        self.metrics = InMemoryMetricReader()
        self.provider = TracerProvider(
            sampler=sampler or parent_based_sampler(1.0),
            resource=RESOURCE,
            id_generator=FixedIds(ids),
            span_limits=limits,
            shutdown_on_exit=False,
            meter_provider=MeterProvider([self.metrics], shutdown_on_exit=False),
        )
        self.recorder = Recorder()
        self.provider.add_span_processor(self.recorder)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exported))
        self.tracer = self.provider.get_tracer("ttbt5_otel", "1.2.3")


def twins(sampler=None, limits=None, ids=(0x1234, 0x5678)) -> tuple[Twin, Twin]:
    return Twin(sampler, limits, list(ids)), Twin(sampler, limits, list(ids))


def lean(twin: Twin, attributes=STATIC, kind=SpanKind.CLIENT):
    starter = lean_spans.lean_starter(twin.tracer)
    assert starter is not None
    return starter.start("op", kind, clean_attributes(attributes))


def sdk(twin: Twin, attributes=STATIC, kind=SpanKind.CLIENT):
    return twin.tracer.start_span("op", kind=kind, attributes=attributes)


def facts(span: ReadableSpan) -> dict[str, object]:
    """Everything an exporter or a reader of the span can see, times aside."""
    return {
        "name": span.name,
        "context": span.get_span_context(),
        "parent": span.parent,
        "kind": span.kind,
        "attributes": dict(span.attributes),
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, dict(e.attributes), e.dropped_attributes) for e in span.events],
        "links": [(k.context, dict(k.attributes), k.dropped_attributes) for k in span.links],
        "dropped": (span.dropped_events, span.dropped_links),
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource,
        "scope": span.instrumentation_scope,
        "times": (span.start_time is not None, span.end_time is not None),
        # Live: an SDK span (ours is a subclass); exported: the SDK's ReadableSpan snapshot.
        "type": "SDK span" if isinstance(span, _Span) else type(span).__name__,
    }


def internals(span: _Span, twin: Twin) -> dict[str, object]:
    """The live span's fields: which there are, their types, and what they are taken from."""
    bounded = span._attributes
    return {
        "fields": {name: type(value) for name, value in vars(span).items()},
        "bounds": (bounded.maxlen, bounded.max_value_len, bounded._immutable),
        "lists": (span._events._dq.maxlen, span._links._dq.maxlen),
        "from tracer": (
            span._sampler is twin.tracer.sampler,
            span._span_processor is twin.provider._active_span_processor,
            span._limits is twin.tracer._span_limits,
            span._instrumentation_info is twin.tracer.instrumentation_info,
        ),
        "status": span._status is UNSET_DEFAULT,
        "flags": (span._trace_config, span._record_exception, span._set_status_on_exception),
        "recording": span.is_recording(),
    }


def exercise(span) -> None:
    """Every way a span is changed, valid and invalid, then ended and changed again."""
    span.set_attribute("later", "x")
    span.set_attributes({"more": [1, 2], "": "no key"})
    span.set_attribute("odd", object())  # converted or dropped by the SDK, with a warning
    span.add_event("step", {"k": "v"})
    span.add_link(SpanContext(77, 88, is_remote=True, trace_flags=TraceFlags(1)), {"l": 1})
    span.update_name("renamed")
    span.record_exception(ERROR)
    span.set_status(Status(StatusCode.ERROR, "declined"))
    span.end()
    span.set_attribute("after", 1)
    span.add_event("after")
    span.end()
    with pytest.raises(TypeError):
        span._attributes["after"] = 1


def run(twin: Twin, start, caplog) -> tuple[dict, dict, dict, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        span = start(twin)
        live = facts(span), internals(span, twin)
        exercise(span)
    [exported] = twin.exported.get_finished_spans()
    warnings = [r.getMessage() for r in caplog.records]
    return *live, facts(exported), warnings, twin.recorder.calls
