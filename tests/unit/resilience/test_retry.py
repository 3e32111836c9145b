"""Tests of ``retry``: outcomes, attempts, span events, tenacity policies, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import pytest
from tenacity import RetryError, retry_if_result, stop_after_attempt, wait_fixed

from ttbt5_otel._core.limits import set_cardinality_limit
from ttbt5_otel._exceptions import CircuitOpenError
from ttbt5_otel._resilience import retry_telemetry
from ttbt5_otel._resilience.breaker import CircuitBreaker
from ttbt5_otel._resilience.retry import retry
from ttbt5_otel._signals.tracing import span
from ttbt5_otel.testing import TelemetryCapture

ATTEMPT_EVENT = "retry.attempt_failed"
ATTEMPTS = "ttbt5.retry.attempts"
CALLS = "ttbt5.retry.calls"


class Flaky:
    """Raises ``exc`` for the first ``failures`` calls, then returns ``value``."""

    def __init__(self, failures: int, exc: type[BaseException] = ConnectionError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, value: Any = "ok") -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls}")
        return value


class Sleeps:
    """A fake ``sleep`` remembering what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def outcome(capture: TelemetryCapture, name: str, kind: str, **extra: Any) -> float:
    return capture.counter_value(CALLS, {"retry.name": name, "retry.outcome": kind, **extra})


def attempt_events(capture: TelemetryCapture, span_name: str = "outer") -> list[dict[str, Any]]:
    return [
        dict(e.attributes or {}) for e in capture.span(span_name).events if e.name == ATTEMPT_EVENT
    ]


def test_success_without_retry_is_counted_once(capture_telemetry: TelemetryCapture) -> None:
    """A first-try success: one call, one attempt, no events, no error.type attribute."""
    flaky = Flaky(0)
    fn = retry(name="first-try", sleep=Sleeps())(flaky)
    with span("outer"):
        assert fn() == "ok"
    assert outcome(capture_telemetry, "first-try", "success_without_retry") == 1
    assert capture_telemetry.counter_value(CALLS, {"retry.name": "first-try"}) == 1
    points = capture_telemetry.points(CALLS, {"retry.name": "first-try"})
    assert {tuple(sorted(p.attributes.items())) for p in points} == {
        (("retry.name", "first-try"), ("retry.outcome", "success_without_retry"))
    }
    assert capture_telemetry.histogram_count(ATTEMPTS, {"retry.name": "first-try"}) == 1
    assert capture_telemetry.histogram_sum(ATTEMPTS, {"retry.name": "first-try"}) == 1
    assert attempt_events(capture_telemetry) == []


def test_success_with_retry_records_attempts_and_events(
    capture_telemetry: TelemetryCapture,
) -> None:
    """Two failures then success: attempts=3, an event per failed attempt with its sleep."""
    sleeps = Sleeps()
    flaky = Flaky(2)
    fn = retry(attempts=5, wait=wait_fixed(0.25), name="flaky", sleep=sleeps)(flaky)
    with span("outer"):
        assert fn("v") == "v"
    assert sleeps.waits == [0.25, 0.25]
    assert outcome(capture_telemetry, "flaky", "success_with_retry") == 1
    assert capture_telemetry.counter_value(CALLS, {"retry.name": "flaky"}) == 1
    calls = capture_telemetry.points(CALLS, {"retry.name": "flaky"})
    successes = [p for p in calls if p.attributes["retry.outcome"].startswith("success")]
    assert successes
    assert all("error.type" not in p.attributes for p in successes)
    (hist,) = capture_telemetry.points(ATTEMPTS, {"retry.name": "flaky"})
    assert (hist.count, hist.sum) == (1, 3)
    assert hist.explicit_bounds == (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
    assert hist.unit == "{attempt}"
    assert attempt_events(capture_telemetry) == [
        {
            "retry.name": "flaky",
            "retry.attempt": n,
            "retry.will_retry": True,
            "retry.sleep": 0.25,
            "exception.type": "ConnectionError",
        }
        for n in (1, 2)
    ]


def test_exhaustion_reraises_last_exception(capture_telemetry: TelemetryCapture) -> None:
    """Out of attempts: the last attempt's exception, outcome failed_with_retry."""
    flaky = Flaky(10)
    fn = retry(attempts=3, name="down", sleep=Sleeps())(flaky)
    with span("outer"), pytest.raises(ConnectionError, match="attempt 3"):
        fn()
    assert flaky.calls == 3
    assert (
        outcome(capture_telemetry, "down", "failed_with_retry", **{"error.type": "ConnectionError"})
        == 1
    )
    assert capture_telemetry.counter_value(CALLS, {"retry.name": "down"}) == 1
    assert capture_telemetry.histogram_sum(ATTEMPTS, {"retry.name": "down"}) == 3
    events = attempt_events(capture_telemetry)
    assert [e["retry.attempt"] for e in events] == [1, 2, 3]
    assert [e["retry.will_retry"] for e in events] == [True, True, False]
    assert events[-1]["retry.sleep"] == 0.0


def test_reraise_false_raises_retry_error(capture_telemetry: TelemetryCapture) -> None:
    """reraise=False surfaces tenacity's RetryError; error.type names the real exception."""
    fn = retry(attempts=2, reraise=False, name="wrapped", sleep=Sleeps())(Flaky(10, OSError))
    with pytest.raises(RetryError) as caught:
        fn()
    assert isinstance(caught.value.last_attempt.exception(), OSError)
    assert (
        outcome(capture_telemetry, "wrapped", "failed_with_retry", **{"error.type": "OSError"}) == 1
    )


def test_exception_outside_filter_fails_without_retry(capture_telemetry: TelemetryCapture) -> None:
    """on= limits what is retried; anything else fails at once."""
    flaky = Flaky(10, KeyError)
    fn = retry(on=(ConnectionError, TimeoutError), name="filtered", sleep=Sleeps())(flaky)
    with span("outer"), pytest.raises(KeyError):
        fn()
    assert flaky.calls == 1
    assert (
        outcome(capture_telemetry, "filtered", "failed_without_retry", **{"error.type": "KeyError"})
        == 1
    )
    assert capture_telemetry.histogram_sum(ATTEMPTS, {"retry.name": "filtered"}) == 1
    (event,) = attempt_events(capture_telemetry)
    assert event["retry.will_retry"] is False
    assert event["exception.type"] == "KeyError"


def test_single_exception_class_for_on() -> None:
    """on= also takes one class."""
    flaky = Flaky(1, TimeoutError)
    assert retry(on=TimeoutError, sleep=Sleeps())(flaky)() == "ok"
    assert flaky.calls == 2


def test_tenacity_policies_are_used_as_given(capture_telemetry: TelemetryCapture) -> None:
    """stop/wait/retry objects from tenacity work unchanged, result predicates included."""
    results = iter([None, None, "done"])
    sleeps = Sleeps()
    fn = retry(
        stop=stop_after_attempt(4),
        wait=wait_fixed(1.5),
        retry=retry_if_result(lambda r: r is None),
        name="polling",
        sleep=sleeps,
    )(lambda: next(results))
    assert fn() == "done"
    assert sleeps.waits == [1.5, 1.5]
    assert outcome(capture_telemetry, "polling", "success_with_retry") == 1


def test_rejected_results_exhausted(capture_telemetry: TelemetryCapture) -> None:
    """Results rejected until the end: RetryError, whose type is then the error.type."""
    fn = retry(attempts=2, retry=retry_if_result(lambda r: True), name="never", sleep=Sleeps())(
        lambda: 1
    )
    with pytest.raises(RetryError):
        fn()
    assert (
        outcome(capture_telemetry, "never", "failed_with_retry", **{"error.type": "RetryError"})
        == 1
    )


def test_backoff_short_form_caps_and_jitters() -> None:
    """backoff=(first, cap): exponential from first, never above cap, jittered."""
    sleeps = Sleeps()
    fn = retry(attempts=6, backoff=(1.0, 3.0), sleep=sleeps)(Flaky(5))
    assert fn() == "ok"
    assert len(sleeps.waits) == 5
    assert 1.0 <= sleeps.waits[0] <= 2.0
    assert 2.0 <= sleeps.waits[1] <= 3.0
    assert all(w <= 3.0 for w in sleeps.waits)
    assert sleeps.waits[2:] == [3.0, 3.0, 3.0]


def test_bare_decorator_defaults() -> None:
    """@retry: three attempts and the name, docstring and signature of the function kept."""
    calls = []

    @retry
    def always_fails(x: int) -> int:
        """Doc."""
        calls.append(x)
        raise ConnectionError

    assert always_fails.__name__ == "always_fails"
    assert always_fails.__doc__ == "Doc."
    assert list(inspect.signature(always_fails).parameters) == ["x"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("time.sleep", lambda s: None)
        with pytest.raises(ConnectionError):
            always_fails(1)
    assert calls == [1, 1, 1]


def test_default_name_is_qualname(capture_telemetry: TelemetryCapture) -> None:
    """Without name=, retry.name is the function's qualified name."""

    @retry(sleep=Sleeps())
    def lookup() -> int:
        return 1

    lookup()
    assert outcome(capture_telemetry, lookup.__qualname__, "success_without_retry") == 1
    assert "test_default_name_is_qualname" in lookup.__qualname__


def test_circuit_open_error_is_not_retried(capture_telemetry: TelemetryCapture) -> None:
    """An open breaker ends the retries at once."""
    flaky = Flaky(10, lambda _msg: CircuitOpenError("db", 3.0))  # type: ignore[arg-type]
    fn = retry(attempts=5, name="via-breaker", sleep=Sleeps())(flaky)
    with pytest.raises(CircuitOpenError):
        fn()
    assert flaky.calls == 1
    assert (
        outcome(
            capture_telemetry,
            "via-breaker",
            "failed_without_retry",
            **{"error.type": "CircuitOpenError"},
        )
        == 1
    )


def test_circuit_open_error_retried_when_named() -> None:
    """on= naming CircuitOpenError opts back in."""
    flaky = Flaky(2, lambda _msg: CircuitOpenError("db", 0.0))  # type: ignore[arg-type]
    assert retry(attempts=5, on=CircuitOpenError, sleep=Sleeps())(flaky)() == "ok"
    assert flaky.calls == 3


def test_composition_retry_outside_breaker_inside(capture_telemetry: TelemetryCapture) -> None:
    """Each attempt goes through the breaker; once it opens the retries stop."""
    breaker = CircuitBreaker("retry-composition", failure_threshold=2, clock=lambda: 0.0)
    flaky = Flaky(100)

    @retry(attempts=5, name="composed", sleep=Sleeps())
    @breaker
    def fetch() -> Any:
        return flaky()

    with pytest.raises(CircuitOpenError):
        fetch()
    assert flaky.calls == 2
    assert breaker.calls["failure"] == 2
    assert breaker.calls["rejected"] == 1
    assert capture_telemetry.histogram_sum(ATTEMPTS, {"retry.name": "composed"}) == 3
    assert (
        outcome(
            capture_telemetry, "composed", "failed_with_retry", **{"error.type": "CircuitOpenError"}
        )
        == 1
    )


async def test_async_function_outcomes(capture_telemetry: TelemetryCapture) -> None:
    """Coroutine functions get an async wrapper; sync and async fake sleeps both work."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    flaky = Flaky(1)

    @retry(wait=wait_fixed(2), name="async-flaky", sleep=fake_sleep)
    async def fetch() -> Any:
        await asyncio.sleep(0)
        return flaky()

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch"
    with span("outer"):
        assert await fetch() == "ok"
    assert slept == [2]
    assert outcome(capture_telemetry, "async-flaky", "success_with_retry") == 1
    assert [e["retry.attempt"] for e in attempt_events(capture_telemetry)] == [1]

    sync_sleeps = Sleeps()
    down = Flaky(10, TimeoutError)

    @retry(attempts=2, wait=wait_fixed(1), name="async-down", sleep=sync_sleeps)
    async def broken() -> Any:
        return down()

    with pytest.raises(TimeoutError):
        await broken()
    assert sync_sleeps.waits == [1]
    assert (
        outcome(
            capture_telemetry, "async-down", "failed_with_retry", **{"error.type": "TimeoutError"}
        )
        == 1
    )


async def test_async_retry_predicate() -> None:
    """An async retry predicate is awaited for async functions."""
    seen: list[int] = []

    async def should_retry(state: Any) -> bool:
        seen.append(state.attempt_number)
        return bool(state.outcome.failed)

    flaky = Flaky(2)

    @retry(retry=should_retry, attempts=5, sleep=Sleeps())
    async def fetch() -> Any:
        return flaky()

    assert await fetch() == "ok"
    assert seen == [1, 2, 3]
    with pytest.raises(TypeError, match="async retry predicate"):
        retry(retry=should_retry)(lambda: None)


async def test_concurrent_async_calls_keep_their_own_counts(
    capture_telemetry: TelemetryCapture,
) -> None:
    """Interleaved calls of one decorated function: each outcome and attempt count is its own."""
    attempts_by_call: dict[int, int] = {}

    async def yielding_sleep(seconds: float) -> None:
        del seconds
        await asyncio.sleep(0)

    @retry(attempts=3, name="gathered", sleep=yielding_sleep)
    async def call(i: int) -> int:
        attempts_by_call[i] = attempts_by_call.get(i, 0) + 1
        await asyncio.sleep(0)
        fate = i % 3
        if fate == 1 and attempts_by_call[i] < 2:
            raise ConnectionError
        if fate == 2:
            raise TimeoutError
        return i

    with span("outer"):
        results = await asyncio.gather(*(call(i) for i in range(60)), return_exceptions=True)
    assert sum(isinstance(r, TimeoutError) for r in results) == 20
    name = {"retry.name": "gathered"}
    assert outcome(capture_telemetry, "gathered", "success_without_retry") == 20
    assert outcome(capture_telemetry, "gathered", "success_with_retry") == 20
    assert outcome(capture_telemetry, "gathered", "failed_with_retry") == 20
    assert capture_telemetry.counter_value(CALLS, name) == 60
    assert capture_telemetry.histogram_count(ATTEMPTS, name) == 60
    assert capture_telemetry.histogram_sum(ATTEMPTS, name) == 20 * 1 + 20 * 2 + 20 * 3
    (hist,) = capture_telemetry.points(ATTEMPTS, name)
    assert hist.bucket_counts[:3] == (20, 20, 20)
    assert len(attempt_events(capture_telemetry)) == 20 * 1 + 20 * 3


def test_concurrent_threads_keep_their_own_counts(capture_telemetry: TelemetryCapture) -> None:
    """Calls from many threads at once: totals match each call's own fate."""
    barrier = threading.Barrier(8)

    @retry(attempts=2, name="threaded", sleep=Sleeps())
    def call(flaky: Flaky) -> Any:
        return flaky()

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(25):
            with pytest.raises(ConnectionError) if i % 2 else contextlib.nullcontext():
                call(Flaky(5 if i % 2 else 1))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome(capture_telemetry, "threaded", "success_with_retry") == 4 * 25
    assert outcome(capture_telemetry, "threaded", "failed_with_retry") == 4 * 25
    assert capture_telemetry.histogram_sum(ATTEMPTS, {"retry.name": "threaded"}) == 8 * 25 * 2


def test_cancelled_during_sleep_is_counted_as_failure(
    capture_telemetry: TelemetryCapture,
) -> None:
    """A call interrupted while waiting is one failed call of the attempts it made."""

    def interrupted_sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    fn = retry(attempts=3, name="interrupted", sleep=interrupted_sleep)(Flaky(5))
    with span("outer"), pytest.raises(KeyboardInterrupt):
        fn()
    assert (
        outcome(
            capture_telemetry,
            "interrupted",
            "failed_without_retry",
            **{"error.type": "KeyboardInterrupt"},
        )
        == 1
    )
    assert len(attempt_events(capture_telemetry)) == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"attempts": 2, "stop": stop_after_attempt(2)}, ValueError),
        ({"backoff": 1.0, "wait": wait_fixed(1)}, ValueError),
        ({"on": ValueError, "retry": retry_if_result(bool)}, ValueError),
        ({"attempts": 0}, ValueError),
        ({"backoff": (2.0, 1.0)}, ValueError),
        ({"on": (ValueError, "x")}, TypeError),
    ],
)
def test_bad_options_fail_at_decoration(options: dict[str, Any], error: type[Exception]) -> None:
    """Conflicting or out-of-range options raise when decorating, naming the option."""
    with pytest.raises(error, match="retry"):
        retry(**options)(lambda: None)


def test_generators_are_refused() -> None:
    """Retrying a generator has no clear meaning; it is refused."""

    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    for fn in (gen, agen):
        with pytest.raises(TypeError, match="generator"):
            retry(fn)


def test_methods_keep_working() -> None:
    """Decorated methods bind self as usual."""

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(1)

        @retry(sleep=Sleeps())
        def get(self) -> Any:
            return self.flaky()

    assert Client().get() == "ok"


def test_partial_objects_can_be_decorated() -> None:
    """Callables without a __qualname__ fall back to their repr for the name."""
    fn: Callable[[], Any] = retry(sleep=Sleeps())(functools.partial(Flaky(0), "p"))
    assert fn() == "p"


def test_telemetry_failure_never_breaks_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside tests, a failing metric update is logged and the call's result stands."""
    monkeypatch.setenv("TTBT5_STRICT_INTERNAL", "0")

    def broken(*_: object) -> None:
        raise RuntimeError("metrics bug")

    monkeypatch.setattr(retry_telemetry.RetryTelemetry, "succeeded", broken)
    monkeypatch.setattr(retry_telemetry.RetryTelemetry, "failed", broken)
    assert retry(sleep=Sleeps())(Flaky(1))() == "ok"
    with pytest.raises(ConnectionError):
        retry(attempts=1, sleep=Sleeps())(Flaky(1))()


def test_new_attribute_sets_past_the_limit_overflow(
    capture_telemetry: TelemetryCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unbounded retry names or error types cannot grow the counts without limit."""
    fn = retry(name="known", sleep=Sleeps())(Flaky(0))
    fn()
    # What init(metric_cardinality_limit=N) sets: no room for one more attribute set.
    set_cardinality_limit(len(retry_telemetry._counts.totals()))
    try:
        fn()
        retry(name="one-too-many", sleep=Sleeps())(Flaky(0))()
    finally:
        set_cardinality_limit(2000)
    assert outcome(capture_telemetry, "known", "success_without_retry") == 2
    assert capture_telemetry.counter_value(CALLS, {"retry.name": "one-too-many"}) == 0
    assert capture_telemetry.counter_value(CALLS, {"otel.metric.overflow": True}) == 1


async def test_async_composition_with_breaker(capture_telemetry: TelemetryCapture) -> None:
    """The async wrappers compose the same way: the open breaker ends the retries."""
    breaker = CircuitBreaker("retry-async-composition", failure_threshold=2, clock=lambda: 0.0)
    flaky = Flaky(100)

    @retry(attempts=5, name="async-composed", sleep=Sleeps())
    @breaker
    async def fetch() -> Any:
        return flaky()

    assert inspect.iscoroutinefunction(fetch)
    with pytest.raises(CircuitOpenError):
        await fetch()
    assert flaky.calls == 2
    assert capture_telemetry.histogram_sum(ATTEMPTS, {"retry.name": "async-composed"}) == 3
