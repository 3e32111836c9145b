"""When the lean path does not apply, spans take the SDK's path, unchanged."""

from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer, _Span
from opentelemetry.sdk.trace import _disable_tracer_configurator as disable_all
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from tests.unit.sdk.lean_twins import STATIC, lean, sdk, twins
from ttbt5_otel import traced
from ttbt5_otel._core import lean_spans
from ttbt5_otel._core.clean_attributes import clean_attributes


def test_other_mappings_samplers_and_tracers_take_the_sdk_path():
    ours, _ = twins()
    starter = lean_spans.lean_starter(ours.tracer)
    assert type(starter.start("op", SpanKind.INTERNAL, dict(STATIC))) is _Span
    ours.tracer.sampler = ALWAYS_OFF  # swapped after the starter was made: obeyed
    assert not starter.start("op", SpanKind.INTERNAL, clean_attributes(STATIC)).is_recording()
    assert lean_spans.lean_starter(ours.tracer) is None  # not ParentBased
    assert lean_spans.lean_starter(trace.NoOpTracer()) is None
    subclassed = type("Subclassed", (Tracer,), {})
    tracer = subclassed.__new__(subclassed)
    vars(tracer).update(vars(twins()[0].tracer))
    assert lean_spans.lean_starter(tracer) is None  # it may start spans its own way


def test_a_disabled_tracer_gives_the_sdks_non_recording_span():
    ours, theirs = twins()
    for twin in (ours, theirs):
        twin.provider._set_tracer_configurator(tracer_configurator=disable_all)
    parent = SpanContext(5, 6, is_remote=False, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(parent)):
        lean_span, sdk_span = lean(ours), sdk(theirs)
    assert lean_span.get_span_context() == sdk_span.get_span_context() == parent


def test_an_unknown_sdk_means_no_lean_path(monkeypatch):
    template = lean_spans._TEMPLATE
    assert lean_spans.sdk_matches(template, lean_spans._MIRRORED)
    assert not lean_spans.sdk_matches(template, ((Tracer.start_as_current_span, 0x0),))
    template.new_field = 1
    try:
        assert not lean_spans.sdk_matches(template, lean_spans._MIRRORED)
    finally:
        del template.new_field
    ours, _ = twins()
    monkeypatch.setattr(lean_spans, "SDK_KNOWN", False)
    assert lean_spans.lean_starter(ours.tracer) is None


def test_decorated_spans_are_lean_and_other_libraries_spans_the_sdks(capture_telemetry):
    @traced(name="ours", attributes={"k": "v"})
    def ours():
        return trace.get_current_span()

    @traced(capture_args=True)
    def with_args(order_id, password):
        return trace.get_current_span()

    live = ours()
    with_args_span = with_args("o-1", password="hunter2")
    with trace.get_tracer("other.library").start_as_current_span("theirs") as theirs:
        pass
    assert type(live) is type(with_args_span) is lean_spans._LeanSpan
    assert with_args_span.attributes["code.argument.order_id"] == "'o-1'"
    assert with_args_span.attributes["code.argument.password"] != "'hunter2'"
    assert type(theirs) is _Span
    assert [s.name for s in capture_telemetry.spans][::2] == ["ours", "theirs"]
    assert capture_telemetry.span("ours").attributes["k"] == "v"
