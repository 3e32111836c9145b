"""Tests of ``CircuitBreaker``: state machine, probes, call styles, registry, telemetry."""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttbt5_otel._core.guard import reset_reported
from ttbt5_otel._exceptions import CircuitOpenError, Ttbt5Error
from ttbt5_otel._resilience.breaker import CircuitBreaker, circuit_breakers
from ttbt5_otel._resilience.breaker_telemetry import CircuitState
from ttbt5_otel._signals.tracing import span
from ttbt5_otel.testing import TelemetryCapture

CALLS = "ttbt5.circuit_breaker.calls"
STATE = "ttbt5.circuit_breaker.state"
TRANSITIONS = "ttbt5.circuit_breaker.transitions"

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_names = itertools.count()


class Clock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def name() -> str:
    # Breakers report cumulative counts by name: a fresh name keeps tests apart.
    return f"cb-{next(_names)}"


def ok() -> str:
    return "ok"


def boom() -> None:
    raise ConnectionError("down")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.call(boom)


def test_opens_after_consecutive_failures(name: str, clock: Clock) -> None:
    """N consecutive failures open it; a success in between starts the count again."""
    breaker = CircuitBreaker(name, failure_threshold=3, clock=clock)
    fail(breaker, 2)
    assert breaker.call(ok) == "ok"
    fail(breaker, 2)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.calls == {"success": 1, "failure": 5, "ignored": 0, "rejected": 0}


def test_rejects_while_open_with_retry_after(name: str, clock: Clock) -> None:
    """Open: the function does not run and the error says when to come back."""
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=10, clock=clock)
    fail(breaker)
    clock.advance(4)
    ran: list[int] = []
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(ran.append, 1)
    assert ran == []
    assert caught.value.name == name
    assert caught.value.retry_after == pytest.approx(6)
    assert isinstance(caught.value, Ttbt5Error)
    assert breaker.calls["rejected"] == 1


def test_failure_rate_needs_minimum_calls(name: str, clock: Clock) -> None:
    """The rate rule waits for minimum_calls, then looks at the last window_size calls."""
    breaker = CircuitBreaker(
        name,
        failure_threshold=None,
        failure_rate_threshold=0.5,
        window_size=6,
        minimum_calls=4,
        clock=clock,
    )
    fail(breaker, 3)
    assert breaker.state is CLOSED  # 3 of 3 failed, but fewer than minimum_calls
    for _ in range(5):
        breaker.call(ok)
    assert breaker.state is CLOSED  # window: F S S S S S -> 1/6
    fail(breaker, 2)
    assert breaker.state is CLOSED  # S S S S F F -> 2/6
    fail(breaker)
    assert breaker.state is OPEN  # S S S F F F -> 3/6 = threshold


def test_failure_rate_window_slides(name: str, clock: Clock) -> None:
    """Failures that left the window no longer count."""
    breaker = CircuitBreaker(
        name,
        failure_threshold=None,
        failure_rate_threshold=0.75,
        window_size=4,
        minimum_calls=4,
        clock=clock,
    )
    fail(breaker, 2)
    for _ in range(4):
        breaker.call(ok)
    fail(breaker, 2)
    assert breaker.state is CLOSED  # S S F F -> 0.5
    fail(breaker)
    assert breaker.state is OPEN  # S F F F -> 0.75


def test_recovery_closes_after_successful_probe(
    name: str, clock: Clock, capture_telemetry: TelemetryCapture
) -> None:
    """After the timeout the next call is a probe; its success closes the breaker."""
    breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=30, clock=clock)
    fail(breaker, 2)
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    clock.advance(0.1)
    assert breaker.state is OPEN  # lazily: nothing changes until a call arrives
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED
    transitions = {
        (str(a["from"]), str(a["to"])) for a in capture_telemetry.attribute_sets(TRANSITIONS)
    }
    assert transitions == {("closed", "open"), ("open", "half_open"), ("half_open", "closed")}
    for source, target in transitions:
        attributes = {"circuit_breaker.name": name, "from": source, "to": target}
        assert capture_telemetry.counter_value(TRANSITIONS, attributes) == 1


def test_failed_probe_reopens(name: str, clock: Clock) -> None:
    """A failing probe re-opens the breaker for a full recovery timeout."""
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=5, clock=clock)
    fail(breaker)
    clock.advance(5)
    fail(breaker)
    assert breaker.state is OPEN
    clock.advance(4.9)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(ok)
    assert caught.value.retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED


def test_success_threshold_counts_probes_across_rounds(name: str, clock: Clock) -> None:
    """With one probe at a time and success_threshold=3, three probes in a row close it."""
    breaker = CircuitBreaker(
        name, failure_threshold=1, recovery_timeout=1, success_threshold=3, clock=clock
    )
    fail(breaker)
    clock.advance(1)
    breaker.call(ok)
    breaker.call(ok)
    assert breaker.state is HALF_OPEN
    breaker.call(ok)
    assert breaker.state is CLOSED


async def test_half_open_admits_exactly_the_probe_limit(
    name: str, clock: Clock, capture_telemetry: TelemetryCapture
) -> None:
    """50 concurrent callers while half-open: exactly half_open_max_calls probes run."""
    breaker = CircuitBreaker(
        name, failure_threshold=1, recovery_timeout=1, half_open_max_calls=3, clock=clock
    )
    fail(breaker)
    clock.advance(1)
    release = asyncio.Event()
    running = 0
    peak = 0

    async def probe() -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return "ok"

    tasks = [asyncio.create_task(breaker.call_async(probe)) for _ in range(50)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert running == 3
    assert breaker.state is HALF_OPEN
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == 3
    rejected = [r for r in results if isinstance(r, CircuitOpenError)]
    assert len(rejected) == 47
    assert all(r.retry_after == 0.0 for r in rejected)
    assert peak == 3
    assert breaker.state is CLOSED
    assert capture_telemetry.counter_value(CALLS, {"circuit_breaker.name": name}) == 51
    assert (
        capture_telemetry.counter_value(CALLS, {"circuit_breaker.name": name, "result": "rejected"})
        == 47
    )


async def test_cancelled_probe_frees_its_slot(name: str, clock: Clock) -> None:
    """A cancelled probe is ignored, not lost: the next caller may probe."""
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=1, clock=clock)
    fail(breaker)
    clock.advance(1)
    never = asyncio.Event()
    task = asyncio.create_task(breaker.call_async(never.wait))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await breaker.call_async(asyncio.sleep, 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.calls["ignored"] == 1
    await breaker.call_async(asyncio.sleep, 0)
    assert breaker.state is CLOSED


def test_excluded_and_unlisted_exceptions_are_ignored(name: str, clock: Clock) -> None:
    """exclude= and exceptions outside failure_exceptions neither fail nor succeed."""
    breaker = CircuitBreaker(
        name,
        failure_threshold=2,
        failure_exceptions=(ConnectionError,),
        exclude=(ConnectionRefusedError,),
        clock=clock,
    )
    fail(breaker)
    for exc in (ConnectionRefusedError, KeyError):
        with pytest.raises(exc):
            breaker.call(_raise, exc)
    assert breaker.state is CLOSED
    assert breaker.calls == {"success": 0, "failure": 1, "ignored": 2, "rejected": 0}
    fail(breaker)  # still consecutive: ignored calls do not reset the count
    assert breaker.state is OPEN


def _raise(exc: type[BaseException]) -> None:
    raise exc


def test_result_of_a_call_from_before_a_transition_is_not_held_against_the_new_state(
    name: str, clock: Clock
) -> None:
    """A slow call admitted while closed cannot re-open a breaker that recovered since."""
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=1, clock=clock)
    slow = breaker.__enter__()
    fail(breaker)  # nested: opens the breaker while the slow call is in flight
    clock.advance(1)
    breaker.call(ok)
    assert breaker.state is CLOSED
    with pytest.raises(ConnectionError):
        slow.__exit__(ConnectionError, ConnectionError(), None)
        raise ConnectionError
    assert breaker.state is CLOSED
    assert breaker.calls["failure"] == 2


def test_decorator_sync_and_async_keep_identity(name: str, clock: Clock) -> None:
    """@breaker keeps name, docstring and kind; generators are refused."""
    breaker = CircuitBreaker(name, clock=clock)

    @breaker
    def get(x: int) -> int:
        """Get."""
        return x

    @breaker
    async def aget(x: int) -> int:
        """Async get."""
        return x

    assert get(2) == 2
    assert (get.__name__, get.__doc__) == ("get", "Get.")
    assert inspect.iscoroutinefunction(aget)
    assert aget.__name__ == "aget"
    assert asyncio.run(aget(3)) == 3
    assert breaker.calls["success"] == 2

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        breaker(gen)


async def test_context_managers(name: str, clock: Clock) -> None:
    """with / async with record the block's result and let exceptions through."""
    breaker = CircuitBreaker(name, failure_threshold=2, clock=clock)
    with breaker:
        pass
    async with breaker:
        pass
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    with breaker, breaker:  # nesting the same breaker
        pass
    assert breaker.calls == {"success": 4, "failure": 1, "ignored": 0, "rejected": 0}
    async with breaker:
        fail(breaker, 2)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        async with breaker:
            pytest.fail("must not run")


async def test_context_manager_tickets_are_per_task(name: str, clock: Clock) -> None:
    """Concurrent tasks using ``async with`` each release their own ticket."""
    breaker = CircuitBreaker(
        name, failure_threshold=1, recovery_timeout=1, half_open_max_calls=2, clock=clock
    )
    fail(breaker)
    clock.advance(1)
    gate = asyncio.Event()

    async def probe(fails: bool) -> None:
        async with breaker:
            await gate.wait()
            if fails:
                raise ConnectionError

    succeeding = asyncio.create_task(probe(fails=False))
    failing = asyncio.create_task(probe(fails=True))
    await asyncio.sleep(0)
    gate.set()
    await succeeding
    with pytest.raises(ConnectionError):
        await failing
    assert breaker.state is OPEN
    assert breaker.calls["success"] == 1
    assert breaker.calls["failure"] == 2


def test_state_change_callback(name: str, clock: Clock) -> None:
    """on_state_change gets (breaker, old, new) for every transition."""
    seen: list[tuple[CircuitBreaker, CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        name,
        failure_threshold=1,
        recovery_timeout=1,
        clock=clock,
        on_state_change=lambda b, old, new: seen.append((b, old, new)),
    )
    fail(breaker)
    clock.advance(1)
    breaker.call(ok)
    breaker.reset()  # already closed: no transition
    assert seen == [
        (breaker, CLOSED, OPEN),
        (breaker, OPEN, HALF_OPEN),
        (breaker, HALF_OPEN, CLOSED),
    ]


def test_failing_callback_does_not_break_the_call(
    name: str, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback is logged once; the call and the transition still happen."""
    monkeypatch.setenv("TTBT5_STRICT_INTERNAL", "0")
    reset_reported()

    def broken(*_: object) -> None:
        raise RuntimeError("callback bug")

    breaker = CircuitBreaker(name, failure_threshold=1, clock=clock, on_state_change=broken)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        fail(breaker)
    assert breaker.state is OPEN
    assert any("on_state_change" in r.getMessage() for r in caplog.records)


def test_callback_errors_surface_under_pytest_without_leaking_a_probe(
    name: str, clock: Clock
) -> None:
    """Strict mode re-raises the callback's error; the probe slot is given back."""
    calls = []

    def broken(_b: CircuitBreaker, _old: CircuitState, new: CircuitState) -> None:
        calls.append(new)
        if new is HALF_OPEN and len(calls) == 2:
            raise RuntimeError("callback bug")

    breaker = CircuitBreaker(
        name, failure_threshold=1, recovery_timeout=1, clock=clock, on_state_change=broken
    )
    fail(breaker)
    clock.advance(1)
    with pytest.raises(RuntimeError, match="callback bug"):
        breaker.call(ok)
    assert breaker.state is HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED


def test_registry_is_weak(name: str) -> None:
    """Breakers are found by name while referenced and vanish when dropped."""
    breaker = CircuitBreaker(name)
    assert CircuitBreaker.get(name) is breaker
    assert circuit_breakers()[name] is CLOSED
    del breaker
    gc.collect()
    assert CircuitBreaker.get(name) is None
    assert name not in circuit_breakers()


def test_duplicate_name_warns_and_newest_wins(name: str, caplog: pytest.LogCaptureFixture) -> None:
    """Two live breakers with one name: a warning, and get() returns the newer."""
    first = CircuitBreaker(name)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        second = CircuitBreaker(name)
    assert CircuitBreaker.get(name) is second
    assert first is not second
    assert any("second live circuit breaker" in r.getMessage() for r in caplog.records)


def test_state_gauge_and_call_counts(
    name: str, clock: Clock, capture_telemetry: TelemetryCapture
) -> None:
    """The state gauge reports 1 for the current state and 0 for the others."""
    breaker = CircuitBreaker(name, failure_threshold=1, clock=clock)
    breaker.call(ok)

    def states() -> dict[str, float | None]:
        return {
            s.value: capture_telemetry.gauge_value(
                STATE, {"circuit_breaker.name": name, "circuit_breaker.state": s.value}
            )
            for s in CircuitState
        }

    assert states() == {"closed": 1, "open": 0, "half_open": 0}
    fail(breaker)
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    assert states() == {"closed": 0, "open": 1, "half_open": 0}
    for result, expected in {"success": 1, "failure": 1, "rejected": 1, "ignored": 0}.items():
        attributes = {"circuit_breaker.name": name, "result": result}
        assert capture_telemetry.counter_value(CALLS, attributes) == expected


def test_span_events_and_logs(name: str, clock: Clock, capture_telemetry: TelemetryCapture) -> None:
    """State changes and rejections are span events; open/close are WARNING/INFO logs."""
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=2, clock=clock)
    with span("outer"):
        fail(breaker)
        with pytest.raises(CircuitOpenError):
            breaker.call(ok)
        clock.advance(2)
        breaker.call(ok)
    events = [(e.name, dict(e.attributes or {})) for e in capture_telemetry.span("outer").events]
    names = [n for n, _ in events if n.startswith("circuit_breaker")]
    assert names == [
        "circuit_breaker.state_change",
        "circuit_breaker.rejected",
        "circuit_breaker.state_change",
        "circuit_breaker.state_change",
    ]
    rejected = next(a for n, a in events if n == "circuit_breaker.rejected")
    assert rejected["circuit_breaker.name"] == name
    assert rejected["circuit_breaker.retry_after"] == 2.0
    opened = events[0][1]
    assert (opened["circuit_breaker.state.from"], opened["circuit_breaker.state.to"]) == (
        "closed",
        "open",
    )
    records = [
        (r.log_record.severity_text, str(r.log_record.body))
        for r in capture_telemetry.logs
        if (r.log_record.attributes or {}).get("logger.name") == "ttbt5_otel.resilience"
        and r.log_record.severity_text in ("WARNING", "INFO")
    ]
    assert [level for level, _ in records] == ["WARNING", "INFO"]
    assert name in records[0][1]
    assert "opened" in records[0][1]
    assert "closed" in records[1][1]


def test_threads_share_one_breaker(name: str, clock: Clock) -> None:
    """Counts stay exact when many threads call through one breaker."""
    breaker = CircuitBreaker(name, failure_threshold=None, clock=clock)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(500):
            if i % 5:
                breaker.call(ok)
            else:
                with pytest.raises(ConnectionError):
                    breaker.call(boom)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.calls == {"success": 3200, "failure": 800, "ignored": 0, "rejected": 0}


@pytest.mark.parametrize(
    "options",
    [
        {"failure_threshold": 0},
        {"failure_rate_threshold": 0.0},
        {"failure_rate_threshold": 1.5},
        {"window_size": 0},
        {"window_size": 5, "minimum_calls": 6},
        {"recovery_timeout": -1},
        {"half_open_max_calls": 0},
        {"success_threshold": 0},
    ],
)
def test_bad_options(name: str, options: dict[str, Any]) -> None:
    """Out-of-range options raise ValueError naming the option."""
    option = next(iter(options)) if len(options) == 1 else "minimum_calls"
    with pytest.raises(ValueError, match=option):
        CircuitBreaker(name, **options)


_ops = st.lists(
    st.one_of(
        st.sampled_from(["call_ok", "call_fail", "begin", "end_ok", "end_fail", "end_ignored"]),
        st.floats(min_value=0.0, max_value=3.0).map(lambda dt: ("advance", dt)),
    ),
    max_size=60,
)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    # The mutation check runs this once per mutant of the breaker: fewer examples there.
    max_examples=int(os.environ.get("TTBT5_PROPERTY_EXAMPLES", "150")),
    deadline=None,
)
@given(
    ops=_ops,
    max_probes=st.integers(min_value=1, max_value=3),
    threshold=st.integers(min_value=1, max_value=3),
)
def test_property_probe_limit_and_call_counts(
    capture_telemetry: TelemetryCapture, ops: list[Any], max_probes: int, threshold: int
) -> None:
    """Random calls, in-flight calls and time: probes never exceed the limit, counts add up."""
    capture_telemetry.clear()
    clock = Clock()
    half_open_periods = itertools.count()
    period = [-1]

    def on_change(_b: CircuitBreaker, _old: CircuitState, new: CircuitState) -> None:
        if new is HALF_OPEN:
            period[0] = next(half_open_periods)

    name = f"prop-{next(_names)}"
    breaker = CircuitBreaker(
        name,
        failure_threshold=threshold,
        recovery_timeout=1.0,
        half_open_max_calls=max_probes,
        success_threshold=max_probes + 1,
        exclude=(KeyError,),
        clock=clock,
        on_state_change=on_change,
    )
    in_flight: list[int | None] = []  # half-open period a probe was admitted in, else None
    made = {"success": 0, "failure": 0, "ignored": 0, "rejected": 0}

    def live_probes() -> int:
        return sum(1 for p in in_flight if p is not None and p == period[0])

    def admit() -> bool:
        try:
            breaker.__enter__()
        except CircuitOpenError:
            made["rejected"] += 1
            if breaker.state is HALF_OPEN:
                assert live_probes() == max_probes  # rejected only when the slots are taken
            return False
        in_flight.append(period[0] if breaker.state is HALF_OPEN else None)
        if breaker.state is HALF_OPEN:
            assert live_probes() <= max_probes
        return True

    def finish(result: str) -> None:
        in_flight.pop()
        exc = {"success": None, "failure": ConnectionError(), "ignored": KeyError()}[result]
        breaker.__exit__(type(exc) if exc else None, exc, None)
        made[result] += 1

    for op in ops:
        if isinstance(op, tuple):
            clock.advance(op[1])
        elif op.startswith("call_"):
            if admit():
                finish("success" if op == "call_ok" else "failure")
        elif op == "begin":
            admit()
        elif in_flight:
            finish({"end_ok": "success", "end_fail": "failure", "end_ignored": "ignored"}[op])
    while in_flight:
        finish("success")

    assert breaker.calls == made
    for result, count in made.items():
        attributes = {"circuit_breaker.name": name, "result": result}
        assert capture_telemetry.counter_value(CALLS, attributes) == count
    assert capture_telemetry.counter_value(CALLS, {"circuit_breaker.name": name}) == sum(
        made.values()
    )


def test_repr_and_unmatched_exit(name: str) -> None:
    """repr names the breaker and its state; a stray __exit__ is harmless."""
    breaker = CircuitBreaker(name)
    assert repr(breaker) == f"<CircuitBreaker {name!r} closed>"
    breaker.__exit__(None, None, None)
    assert breaker.calls["success"] == 0


def test_reset_closes_an_open_breaker(name: str, clock: Clock) -> None:
    """reset() closes at once, without waiting for a probe."""
    breaker = CircuitBreaker(name, failure_threshold=1, clock=clock)
    fail(breaker)
    breaker.reset()
    assert breaker.state is CLOSED
    assert breaker.call(ok) == "ok"


def test_state_changes_say_why(name: str, clock: Clock, capture_telemetry: TelemetryCapture):
    """Each state-change event carries the reason, in words an operator can act on."""
    breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=1, clock=clock)
    with span("reasons"):
        fail(breaker, 2)
        clock.advance(1)
        fail(breaker)  # the probe fails: open again
        clock.advance(1)
        breaker.call(ok)  # the probe succeeds: closed
    reasons = [
        (e.attributes or {}).get("circuit_breaker.reason")
        for e in capture_telemetry.span("reasons").events
        if e.name == "circuit_breaker.state_change"
    ]
    assert reasons == [
        "2 consecutive failures",
        "recovery timeout elapsed",
        "a probe call failed",
        "recovery timeout elapsed",
        "probe calls succeeded",
    ]


def test_rate_mode_reason_names_the_rate(name: str, clock: Clock, capture_telemetry):
    breaker = CircuitBreaker(
        name, failure_rate_threshold=0.5, window_size=4, minimum_calls=4, clock=clock
    )
    with span("rate"):
        breaker.call(ok)
        breaker.call(ok)
        fail(breaker, 2)
    [event] = [e for e in capture_telemetry.span("rate").events if e.name.endswith("change")]
    assert event.attributes["circuit_breaker.reason"] == "failure rate 50% over 4 calls"


def test_a_recovered_breaker_starts_counting_from_zero(name: str, clock: Clock) -> None:
    """Failures from before the outage do not count towards the next one."""
    breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=1, clock=clock)
    fail(breaker, 2)
    clock.advance(1)
    breaker.call(ok)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is CLOSED, "one failure after recovery must not re-open it"
    fail(breaker)
    assert breaker.state is OPEN


def test_a_recovered_rate_breaker_starts_a_new_window(name: str, clock: Clock) -> None:
    breaker = CircuitBreaker(
        name, failure_rate_threshold=0.5, window_size=4, minimum_calls=4, recovery_timeout=1,
        clock=clock,
    )  # fmt: skip
    for _ in range(2):
        breaker.call(ok)
    fail(breaker, 2)
    assert breaker.state is OPEN
    clock.advance(1)
    breaker.call(ok)
    assert breaker.state is CLOSED
    fail(breaker, 2)
    breaker.call(ok)
    assert breaker.state is CLOSED, "the window restarted: 2 of 3 calls is under minimum_calls"


def test_probe_slots_are_released_one_by_one(name: str, clock: Clock) -> None:
    """Two probe slots: while one probe runs, one more is admitted, then none."""
    breaker = CircuitBreaker(
        name, failure_threshold=1, recovery_timeout=1, half_open_max_calls=2,
        success_threshold=3, clock=clock,
    )  # fmt: skip
    fail(breaker)
    clock.advance(1)
    assert breaker.call(ok) == "ok"  # probe 1 of 3 needed successes; its slot is free again
    assert breaker.state is HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED
