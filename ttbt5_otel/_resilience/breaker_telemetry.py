"""Metrics, span events and logs of circuit breakers.

Calls through a breaker are hot, so each breaker keeps its call counts as plain integers and
one observable counter (``ObservedCounts``) reports them at collection time, keeping the
counts of collected breakers so the counter never goes backwards. Transitions are rare and
go through an ordinary counter.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Final, Protocol

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, ObservableCounter, ObservableGauge, Observation
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.guard import internal_error, own_logger
from ttbt5_otel._core.observed import ObservedCounts
from ttbt5_otel._core.otel import Lazy, meter
from ttbt5_otel._signals.metrics import counter

STATE: Final = "ttbt5.circuit_breaker.state"
TRANSITIONS: Final = "ttbt5.circuit_breaker.transitions"
CALLS: Final = "ttbt5.circuit_breaker.calls"
RESULTS: Final = ("success", "failure", "ignored", "rejected")
LOG: Final = own_logger("ttbt5_otel.resilience")


class CircuitState(StrEnum):
    """The state of a ``CircuitBreaker``; the value is the ``circuit_breaker.state`` attribute."""

    CLOSED = "closed"
    """Calls run; failures are counted."""
    OPEN = "open"
    """Calls are rejected until the recovery timeout has passed."""
    HALF_OPEN = "half_open"
    """A limited number of probe calls run; their results close or re-open the breaker."""


class Observed(Protocol):
    """What the collection callbacks read from a breaker."""

    @property
    def name(self) -> str:
        """The ``circuit_breaker.name`` attribute."""
        ...

    @property
    def state(self) -> CircuitState:
        """The current state."""
        ...


_live: weakref.WeakSet[Observed] = weakref.WeakSet()
# Collection runs on the exporter's thread; copying the set while another thread adds to it
# would fail with "set changed size during iteration".
_live_lock = threading.Lock()


def _live_breakers() -> list[Observed]:
    with _live_lock:
        return list(_live)


def _observe_state(options: CallbackOptions) -> Iterable[Observation]:
    del options
    # One read of each breaker's state, so a concurrent transition cannot report two 1s.
    current = [(breaker.name, breaker.state) for breaker in _live_breakers()]
    return [
        Observation(
            1 if state is now else 0,
            {"circuit_breaker.name": name, "circuit_breaker.state": state.value},
        )
        for name, now in current
        for state in CircuitState
    ]


def _call_attributes(key: tuple[str, str]) -> dict[str, AttributeValue]:
    name, result = key
    return {"circuit_breaker.name": name, "result": result}


# Two live breakers sharing a name report one attribute set: their counts are added up.
_calls: ObservedCounts[tuple[str, str]] = ObservedCounts(_call_attributes)


def _create_observables() -> tuple[ObservableGauge, ObservableCounter]:
    # Created once per provider generation: asking the same meter again for an instrument
    # returns the registered one, so each callback is registered exactly once.
    current = meter()
    return (
        current.create_observable_gauge(
            STATE,
            [_observe_state],
            unit="{state}",
            description="1 for the current state of each circuit breaker, 0 for the others.",
        ),
        current.create_observable_counter(
            CALLS,
            [_calls.observe],
            unit="{call}",
            description="Calls through circuit breakers, by result.",
        ),
    )


_observables: Lazy[tuple[ObservableGauge, ObservableCounter]] = Lazy(_create_observables)
_transitions = counter(
    TRANSITIONS, unit="{transition}", description="Circuit breaker state changes."
)


def ensure_instruments() -> None:
    """Register the observable instruments with the current providers (cheap when done)."""
    try:
        _observables.get()
    except Exception as exc:
        internal_error("circuit breaker instruments", exc)


def track(breaker: Observed, counts: Sequence[int]) -> None:
    """Report ``breaker``'s state while it lives and its call ``counts`` (by ``RESULTS``) ever.

    ``counts`` is the breaker's own list, read at collection time; once the breaker is
    collected its last counts stay in the reported totals.
    """
    with _live_lock:
        _live.add(breaker)
    name = breaker.name
    _calls.track(breaker, lambda: [((name, r), c) for r, c in zip(RESULTS, counts, strict=True)])
    ensure_instruments()


def report_transition(name: str, old: CircuitState, new: CircuitState, reason: str) -> None:
    """Counter, span event and log record of one state change."""
    try:
        _transitions.add(1, {"circuit_breaker.name": name, "from": old.value, "to": new.value})
        fields = {
            "circuit_breaker.name": name,
            "circuit_breaker.state.from": old.value,
            "circuit_breaker.state.to": new.value,
            "circuit_breaker.reason": reason,
        }
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("circuit_breaker.state_change", fields)
        if new is CircuitState.OPEN:
            LOG.warning("circuit breaker %r opened: %s", name, reason, extra=fields)
        elif new is CircuitState.CLOSED:
            LOG.info("circuit breaker %r closed: %s", name, reason, extra=fields)
        else:
            LOG.debug("circuit breaker %r half-open: %s", name, reason, extra=fields)
    except Exception as exc:
        internal_error(f"circuit breaker {name!r} transition", exc)


def report_rejection(name: str, state: CircuitState, retry_after: float) -> None:
    """Span event for a call the breaker rejected."""
    try:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "circuit_breaker.rejected",
                {
                    "circuit_breaker.name": name,
                    "circuit_breaker.state": state.value,
                    "circuit_breaker.retry_after": retry_after,
                },
            )
    except Exception as exc:
        internal_error(f"circuit breaker {name!r} rejection", exc)
