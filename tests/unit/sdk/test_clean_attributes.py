"""Attributes cleaned once at decoration, and the samplers the lean span path recognises."""

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import sampling
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from ttbt5_otel._core.clean_attributes import UNFIT, clean_attributes
from ttbt5_otel._core.lean_spans import root_bound
from ttbt5_otel._sdk.providers import parent_based_sampler


@pytest.mark.parametrize(
    "given",
    [
        {"route": "/checkout", "ids": [1, 2.5], "tags": ["ab", "abcdef"], "ok": True},
        {"route": "/checkout", "n": 3, "x": 0.5, "ok": False, "raw": b"\x00", "none": None},
        {"nested": [["/checkout"], ("a",)], "empty": []},
        {},
    ],
)
def test_clean_attributes_are_what_the_sdk_cleaner_makes_of_them(given):
    cleaned = clean_attributes(given)
    sdk_cleaned = BoundedAttributes(None, given).copy()
    assert list(cleaned.items()) == list(sdk_cleaned.items())
    assert [type(v) for v in cleaned.values()] == [type(v) for v in sdk_cleaned.values()]
    assert cleaned.longest == (len("/checkout") if given else 0)


@pytest.mark.parametrize(
    "given",
    [{"": 1}, {7: "int key"}, {"d": {"k": 1}}, {"o": object()}, {"r": range(3)}, {"l": [{}]}],
)
def test_what_the_sdk_would_rework_is_kept_as_given_and_unfit(given):
    cleaned = clean_attributes(given)
    assert cleaned.longest == UNFIT
    assert list(cleaned.items()) == list(given.items())


def test_strings_join_after_or_before_the_cleaned_attributes():
    cleaned = clean_attributes({"a": "x", "code.function": "mine"})
    after = cleaned.with_strings({"code.function": "f", "arg": "a" * 20})
    before = cleaned.with_strings({"code.function": "f", "z": ""}, before=True)
    assert after == {"a": "x", "code.function": "f", "arg": "a" * 20}
    assert after.longest == 20
    assert list(before.items()) == [("code.function", "mine"), ("z", ""), ("a", "x")]
    assert before.longest == 4
    assert clean_attributes({"": 1}).with_strings({"b": "c"}).longest == UNFIT


PARENTS = [
    None,
    SpanContext(9, 9, is_remote=False, trace_flags=TraceFlags(1)),
    SpanContext(9, 9, is_remote=True, trace_flags=TraceFlags(0)),
]


@pytest.mark.parametrize("parent", PARENTS)
@pytest.mark.parametrize("trace_id", [1, 1 << 63, (1 << 64) - 1, (1 << 128) - 1])
def test_the_full_ratio_sampler_is_always_on_parent_based(parent, trace_id):
    context = None if parent is None else set_span_in_context(NonRecordingSpan(parent))
    ours = parent_based_sampler(1.0).should_sample(context, trace_id, "op")
    ratio = sampling.ParentBasedTraceIdRatio(1.0).should_sample(context, trace_id, "op")
    assert (ours.decision, ours.trace_state) == (ratio.decision, ratio.trace_state)


def test_a_partial_ratio_keeps_the_ratio_sampler():
    description = parent_based_sampler(0.25).get_description()
    assert description.startswith("ParentBased{root:TraceIdRatioBased{0.25},")
    assert parent_based_sampler(1.0).get_description().startswith("ParentBased{root:AlwaysOn")


class Custom(sampling.ParentBased):
    def should_sample(self, *args, **kwargs):
        return super().should_sample(*args, **kwargs)


@pytest.mark.parametrize(
    ("sampler", "bound"),
    [
        (sampling.DEFAULT_ON, 1 << 64),
        (sampling.DEFAULT_OFF, 0),
        (sampling._ParentBasedAlwaysOn(None), 1 << 64),  # OTEL_TRACES_SAMPLER's class
        (sampling.ParentBasedTraceIdRatio(0.25), 1 << 62),
        (parent_based_sampler(1.0), 1 << 64),
        (sampling.ALWAYS_ON, None),  # ignores the parent
        (sampling.TraceIdRatioBased(0.5), None),
        (
            sampling.ParentBased(sampling.ALWAYS_ON, remote_parent_not_sampled=sampling.ALWAYS_ON),
            None,
        ),
        (sampling.ParentBased(sampling.StaticSampler(sampling.Decision.RECORD_ONLY)), None),
        (Custom(sampling.ALWAYS_ON), None),
    ],
)
def test_only_parent_following_samplers_are_mirrored(sampler, bound):
    assert root_bound(sampler) == bound
