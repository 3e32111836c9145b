"""Spans from the lean path are the SDK's spans: same fields, limits, warnings and export.

Each case runs on twin pipelines (``lean_twins``): once through ``LeanStarter`` with
``CleanAttributes``, once through the SDK's ``Tracer.start_span`` with the raw attributes.
"""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, _Span
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from tests.unit.sdk.lean_twins import STATIC, facts, lean, run, sdk, twins
from ttbt5_otel._core import lean_spans
from ttbt5_otel._core.clean_attributes import clean_attributes


def test_the_pinned_sdk_is_the_one_mirrored():
    # Failing after an SDK upgrade: re-check lean_spans against the new SDK's Tracer,
    # Span and samplers, then update _MIRRORED; until then every span takes the SDK path.
    assert lean_spans.SDK_KNOWN


def test_a_root_span_is_the_sdks_in_every_respect(caplog):
    ours, theirs = twins()
    lean_run, sdk_run = run(ours, lean, caplog), run(theirs, sdk, caplog)
    assert lean_run == sdk_run
    assert lean_run[3], "the invalid changes were warned about"
    assert type(lean(ours)) is lean_spans._LeanSpan


@pytest.mark.parametrize(
    "parent",
    [
        SpanContext(5, 6, is_remote=False, trace_flags=TraceFlags(3)),
        SpanContext(5, 6, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState()),
        SpanContext(
            5, 6, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("v", "1")])
        ),
        SpanContext(5, 6, is_remote=True, trace_flags=TraceFlags(0)),
        SpanContext(5, 6, is_remote=False, trace_flags=TraceFlags(2)),
        trace.INVALID_SPAN_CONTEXT,
    ],
    ids=["local", "remote", "tracestate", "remote-unsampled", "local-unsampled", "invalid"],
)
def test_children_follow_their_parent_as_with_the_sdk(parent, caplog):
    ours, theirs = twins()
    with trace.use_span(NonRecordingSpan(parent)):
        lean_span, sdk_span = lean(ours), sdk(theirs)
    assert isinstance(lean_span, _Span) == isinstance(sdk_span, _Span)
    sampled = parent.trace_flags.sampled or not parent.is_valid  # invalid: a new root
    assert lean_span.is_recording() == sdk_span.is_recording() == sampled
    assert lean_span.get_span_context() == sdk_span.get_span_context()
    if sdk_span.is_recording():
        assert facts(lean_span) == facts(sdk_span)


@pytest.mark.parametrize("trace_id", [(1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64])
def test_ratio_sampling_decides_by_trace_id_as_the_sdk_does(trace_id):
    ours, theirs = twins(sampler=ParentBasedTraceIdRatio(0.5), ids=[trace_id])
    lean_span, sdk_span = lean(ours), sdk(theirs)
    assert lean_span.get_span_context() == sdk_span.get_span_context()
    assert lean_span.is_recording() == sdk_span.is_recording()


@pytest.mark.parametrize(
    "limits",
    [
        SpanLimits(max_span_attributes=2),  # over the count: the SDK drops, with warnings
        SpanLimits(max_span_attributes=4),  # exactly full: set_attribute then evicts
        SpanLimits(max_span_attributes=0),
        SpanLimits(max_span_attribute_length=4),  # "/checkout" is truncated
        SpanLimits(max_span_attribute_length=9, max_events=0, max_links=0),
    ],
)
def test_limits_are_honoured_as_by_the_sdk(limits, caplog):
    ours, theirs = twins(limits=limits)
    assert run(ours, lean, caplog) == run(theirs, sdk, caplog)


@pytest.mark.parametrize("limit", ["3", "5"])  # below the static attributes, above them
def test_the_attribute_count_limit_from_the_environment_is_honoured(limit, monkeypatch, caplog):
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", limit)
    ours, theirs = twins()
    lean_run = run(ours, lean, caplog)
    assert lean_run == run(theirs, sdk, caplog)
    assert len(lean_run[2]["attributes"]) == int(limit)
    assert lean_run[2]["dropped_attributes"] > 0


def test_span_attributes_are_mutable_until_the_end_and_private_to_each_span():
    ours, _ = twins()
    clean = clean_attributes(STATIC)
    starter = lean_spans.lean_starter(ours.tracer)
    first, second = (starter.start("op", SpanKind.INTERNAL, clean) for _ in range(2))
    first.set_attribute("user.id", 7)
    assert first.attributes["user.id"] == 7
    assert second.attributes["user.id"] == 42
    assert clean["user.id"] == 42
    first.end()
    first.set_attribute("user.id", 8)
    assert first.attributes["user.id"] == 7


@pytest.mark.parametrize(
    "attributes",
    [{"": 1}, {"d": {"nested": 1}}, {"o": object()}, {"r": range(2)}, {"ok": "plain"}],
)
def test_attributes_the_sdk_would_rework_take_its_path(attributes, caplog):
    ours, theirs = twins()
    lean_run, sdk_run = (
        run(ours, lambda t: lean(t, attributes), caplog),
        run(theirs, lambda t: sdk(t, attributes), caplog),
    )
    assert lean_run == sdk_run
    fit = attributes == {"ok": "plain"}
    assert (type(lean(ours, attributes)) is lean_spans._LeanSpan) == fit


def test_the_sdks_span_metrics_count_lean_spans_alike(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    unsampled = SpanContext(5, 6, is_remote=True, trace_flags=TraceFlags(0))
    points = []
    for twin, start in zip(twins(), (lean, sdk), strict=True):
        start(twin).end()
        open_span = start(twin)
        with trace.use_span(NonRecordingSpan(unsampled)):
            start(twin)
        data = twin.metrics.get_metrics_data()
        assert open_span.is_recording()
        points.append(
            sorted(
                (metric.name, tuple(sorted(point.attributes.items())), point.value)
                for resource in data.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
                for point in metric.data.data_points
            )
        )
    assert points[0] == points[1]
    # Started: two sampled roots, one dropped child; live: the one still open.
    assert [(name, value) for name, _, value in points[0]] == [
        ("otel.sdk.span.live", 1),
        ("otel.sdk.span.started", 2),
        ("otel.sdk.span.started", 1),
    ]
