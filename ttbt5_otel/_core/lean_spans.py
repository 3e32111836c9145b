"""This package's own spans, started without the SDK's per-call rework: still SDK spans.

For every span, ``Tracer.start_span`` cleans again the attributes our decorators cleaned
when applied (``clean_attributes``), asks a sampler object for the decision ``ParentBased``
sampling takes from the parent's flags, and fills the span through keyword-heavy
constructors: together about half of a small span's cost on the calling thread.
``LeanStarter`` builds the same ``_Span`` field by field for the common case:
``CleanAttributes`` within the tracer's limits, on an SDK ``Tracer`` whose sampler is
``ParentBased`` with the default delegates and an always-on, always-off or trace-id-ratio
root. The span then starts, ends and reaches the span processors the SDK's way.

This mirrors SDK internals, so it is checked before use. At import, a span built the SDK's
way must have exactly the fields filled here, and the names the mirrored SDK functions use
must be the ones they used when this was written (``_MIRRORED``); per tracer, the tracer
and sampler types must be known. Any mismatch (another SDK release) means the SDK's own
``start_span`` for every span. Importing this module imports the SDK: import it only once
an SDK tracer exists.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Final

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, TraceFlags
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.clean_attributes import UNFIT, CleanAttributes

# The SDK code ``LeanStarter.start`` and ``_LeanSpan`` repeat, with a CRC of the names each
# function uses: a release that changes what one of them does almost surely changes those.
_MIRRORED: Final = (
    (sdk_trace.Tracer.start_span, 0xCFEE84EB),
    (sdk_trace.Span.__init__, 0x5CC29252),
    (sdk_trace.Span.start, 0x5DCD28F3),
    (sampling.ParentBased.should_sample, 0x98EDE7B3),
    (sampling.StaticSampler.should_sample, 0x425FDAEE),
    (sampling.TraceIdRatioBased.should_sample, 0x61BBD022),
)
# Every field of an SDK span: those of ``ReadableSpan``, then those ``Span`` adds.
_SPAN_FIELDS: Final = frozenset(
    (
        *("_name", "_context", "_kind", "_instrumentation_info", "_instrumentation_scope"),
        *("_parent", "_start_time", "_end_time", "_attributes", "_events", "_links"),
        *("_resource", "_status"),
        *("_sampler", "_trace_config", "_record_exception", "_set_status_on_exception"),
        *("_span_processor", "_limits", "_lock", "_record_end_metrics"),
    )
)
# What a tracer must have for ``LeanStarter`` to read it.
_TRACER_FIELDS: Final = (
    *("sampler", "resource", "span_processor", "id_generator", "instrumentation_info"),
    *("_span_limits", "_instrumentation_scope", "_tracer_config", "_tracer_metrics"),
)
_TRACE_ID_LIMIT: Final = sampling.TraceIdRatioBased.TRACE_ID_LIMIT
_SAMPLED: Final = sampling.Decision.RECORD_AND_SAMPLE
_DROPPED: Final = sampling.Decision.DROP
# One TraceFlags per (sampled, random trace id), shared: it is an immutable int, and the
# SDK building a new one for every span is measurable.
_FLAGS: Final = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (TraceFlags.RANDOM_TRACE_ID if random else TraceFlags.DEFAULT)
    )
    for sampled in (False, True)
    for random in (False, True)
}


def _names_crc(function: object) -> int:
    code = getattr(function, "__code__", None)
    return zlib.crc32(" ".join(getattr(code, "co_names", ())).encode())


def _sdk_template() -> sdk_trace.Span | None:
    """A span built by the SDK's own constructor; None if that fails (an unknown SDK)."""
    try:
        context = SpanContext(1, 1, is_remote=False)
        return sdk_trace._Span("template", context, resource=Resource.get_empty())  # noqa: SLF001
    except Exception:
        return None


def sdk_matches(template: object, mirrored: tuple[tuple[object, int], ...]) -> bool:
    """Whether ``template`` (an SDK-built span) and the ``mirrored`` code are as expected."""
    fields = frozenset(getattr(template, "__dict__", ()))
    return fields == _SPAN_FIELDS and all(_names_crc(code) == crc for code, crc in mirrored)


_TEMPLATE: Final = _sdk_template()
SDK_KNOWN: Final = sdk_matches(_TEMPLATE, _MIRRORED)
"""Whether the installed SDK is the one ``LeanStarter`` mirrors (decided at import)."""
# The status every new SDK span shares: ``ReadableSpan``'s default argument.
_UNSET: Final = _TEMPLATE.status if _TEMPLATE is not None else Status()


class _LeanSpan(sdk_trace._Span):  # noqa: SLF001 - the class the SDK's tracer makes
    """An SDK span whose fields are filled directly, as ``Span.__init__`` fills them."""

    def __init__(
        self,
        tracer: sdk_trace.Tracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: CleanAttributes,
        record_end_metrics: Callable[[], None],
    ) -> None:
        # No super().__init__(): it would clean the attributes again. Every field it sets
        # is set here (``_SPAN_FIELDS``), with what the SDK's tracer would pass.
        limits = tracer._span_limits  # noqa: SLF001
        bounded = BoundedAttributes(
            limits.max_span_attributes,
            immutable=False,
            max_value_len=limits.max_span_attribute_length,
        )
        # Cleaned already and within the limits (``LeanStarter`` checked): stored as is.
        bounded._dict.update(attributes)  # noqa: SLF001
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope  # noqa: SLF001
        self._parent = parent
        self._start_time = None
        self._end_time = None
        self._attributes = bounded
        self._events = BoundedList(limits.max_events)
        self._links = BoundedList(limits.max_links)
        self._resource = tracer.resource
        self._status = _UNSET
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = True
        self._set_status_on_exception = True
        self._span_processor = tracer.span_processor
        self._limits = limits
        self._lock = threading.Lock()
        self._record_end_metrics = record_end_metrics


def _always(sampler: object) -> sampling.Decision | None:
    """The decision of a sampler deciding alike for every span; None for any other."""
    if getattr(type(sampler), "should_sample", None) is not sampling.StaticSampler.should_sample:
        return None
    decision = getattr(sampler, "_decision", None)
    return decision if decision in (_SAMPLED, _DROPPED) else None


def root_bound(sampler: object) -> int | None:
    """Root spans whose trace id's low 64 bits are below this are sampled; None: unknown.

    Known: ``ParentBased`` following the parent's sampled flag (its default delegates)
    around an always-on, always-off or trace-id-ratio root, as ``init()``, the SDK's
    default and the ``OTEL_TRACES_SAMPLER`` values build it.
    """
    if getattr(type(sampler), "should_sample", None) is not sampling.ParentBased.should_sample:
        return None
    follows_parent = all(
        _always(getattr(sampler, f"_{origin}_parent_{state}", None)) is decision
        for origin in ("remote", "local")
        for state, decision in (("sampled", _SAMPLED), ("not_sampled", _DROPPED))
    )
    if not follows_parent:
        return None
    root = getattr(sampler, "_root", None)
    if getattr(type(root), "should_sample", None) is sampling.TraceIdRatioBased.should_sample:
        bound = getattr(root, "bound", None)
        return bound if isinstance(bound, int) else None
    decision = _always(root)
    if decision is None:
        return None
    return _TRACE_ID_LIMIT + 1 if decision is _SAMPLED else 0


class LeanStarter:
    """Starts spans on one SDK tracer; the SDK's way whenever the lean way does not apply."""

    __slots__ = ("_root_bound", "_sampler", "_tracer")

    def __init__(self, tracer: sdk_trace.Tracer, sampler: sampling.Sampler, bound: int) -> None:
        """Start spans on ``tracer`` while its sampler is ``sampler`` (``bound``: its root's)."""
        self._tracer = tracer
        self._sampler = sampler
        self._root_bound = bound

    def start(
        self, name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]
    ) -> trace_api.Span:
        """The span ``tracer.start_span(name, kind=kind, attributes=attributes)`` returns."""
        tracer = self._tracer
        limits = tracer._span_limits  # noqa: SLF001
        max_count = limits.max_span_attributes
        max_length = limits.max_span_attribute_length
        if max_length is None:
            max_length = UNFIT - 1  # no length limit, yet UNFIT attributes are over it
        parent = trace_api.get_current_span().get_span_context()
        if (
            type(attributes) is not CleanAttributes
            # Over a limit the SDK drops or truncates, with warnings: let it.
            or (max_count is not None and len(attributes) > max_count)
            or attributes.longest > max_length
            or tracer.sampler is not self._sampler
            or not tracer._tracer_config.is_enabled  # noqa: SLF001
            or type(parent) is not SpanContext
        ):
            return tracer.start_span(name, kind=kind, attributes=attributes)
        ids = tracer.id_generator
        # ParentBased with its default delegates: a child follows its parent's flag; a root
        # is sampled when its trace id is below the bound (always, for ALWAYS_ON).
        parent_context: SpanContext | None = None
        if parent.is_valid:
            parent_context = parent
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
            random = parent.trace_flags.random_trace_id
            trace_state = parent.trace_state
        else:
            trace_id = ids.generate_trace_id()
            sampled = trace_id & _TRACE_ID_LIMIT < self._root_bound
            random = ids.is_trace_id_random()
            trace_state = None
        context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[bool(sampled), bool(random)],
            trace_state=trace_state,
        )
        record_end_metrics = tracer._tracer_metrics.start_span(  # noqa: SLF001
            parent_context, _SAMPLED if sampled else _DROPPED
        )
        if not sampled:
            return NonRecordingSpan(context)
        span = _LeanSpan(
            tracer, name, context, parent_context, kind, attributes, record_end_metrics
        )
        span.start()
        return span


def lean_starter(tracer: object) -> LeanStarter | None:
    """A ``LeanStarter`` for ``tracer``; None when its spans must all take the SDK's path."""
    if not SDK_KNOWN or type(tracer) is not sdk_trace.Tracer:
        return None
    if not all(hasattr(tracer, field) for field in _TRACER_FIELDS):
        return None
    bound = root_bound(tracer.sampler)
    if bound is None:
        return None
    return LeanStarter(tracer, tracer.sampler, bound)
