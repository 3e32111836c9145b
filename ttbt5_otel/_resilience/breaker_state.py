"""The circuit breaker's state machine, without the ways of calling through it.

States: *closed* (calls run, failures counted) → *open* after ``failure_threshold``
consecutive failures or a failure rate of at least ``failure_rate_threshold`` over the last
``window_size`` calls (once ``minimum_calls`` were made) → *half-open* on the first call after
``recovery_timeout`` seconds (checked lazily, with the injected clock) → *closed* after
``success_threshold`` successful probes, or *open* again on a failed probe.

Half-open admits at most ``half_open_max_calls`` probes at a time. Admission is decided and
the probe slot taken under one lock with no ``await`` in between, so concurrent threads and
asyncio tasks cannot overshoot the limit; the lock is never held while the protected call
runs. Every transition starts a new *epoch*: a call admitted before it still counts in the
metrics, but its result no longer moves the state (a slow call from the closed period must
not re-open a breaker that has since recovered).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._exceptions import CircuitOpenError
from ttbt5_otel._resilience.breaker_telemetry import (
    CircuitState,
    ensure_instruments,
    report_rejection,
    report_transition,
)

SUCCESS: Final = 0
FAILURE: Final = 1
IGNORED: Final = 2
REJECTED: Final = 3
# Enum members looked up on the class cost a dictionary walk each time; the hot path reads
# these module constants instead.
_CLOSED: Final = CircuitState.CLOSED
_OPEN: Final = CircuitState.OPEN
_HALF_OPEN: Final = CircuitState.HALF_OPEN

Ticket = tuple[int, bool]
"""(epoch the call was admitted in, whether it holds a half-open probe slot)."""
_Change = tuple[CircuitState, CircuitState, str]


class BreakerCore:
    """State, counters and transitions of one breaker; thread-safe, never blocks on calls."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int | None,
        failure_rate_threshold: float | None,
        window_size: int,
        minimum_calls: int,
        recovery_timeout: float,
        half_open_max_calls: int,
        success_threshold: int,
        failure_exceptions: tuple[type[BaseException], ...],
        exclude: tuple[type[BaseException], ...],
        clock: Callable[[], float],
        on_state_change: Callable[[Any, CircuitState, CircuitState], object] | None,
    ) -> None:
        """Store the (already validated) settings; the breaker starts closed."""
        self._name = name
        self._failure_threshold = failure_threshold
        self._rate_threshold = failure_rate_threshold
        self._minimum_calls = minimum_calls
        self._recovery_timeout = recovery_timeout
        self._half_open_max_calls = half_open_max_calls
        self._success_threshold = success_threshold
        self._failure_exceptions = failure_exceptions
        self._exclude = exclude
        self._clock = clock
        self._on_state_change = on_state_change
        self._lock = threading.Lock()
        # State and epoch change together and are read together without the lock, so they
        # live in one tuple that is replaced, never mutated.
        self._status: tuple[CircuitState, int] = (_CLOSED, 0)
        self._opened_at = 0.0
        self._consecutive = 0
        self._window: deque[bool] = deque(maxlen=window_size)
        self._window_failures = 0
        self._probes = 0
        self._probe_successes = 0
        self._counts = [0, 0, 0, 0]

    def _move(self, new: CircuitState, reason: str) -> _Change | None:
        """Switch to ``new`` (lock held); the caller announces the change after unlocking."""
        old, epoch = self._status
        self._status = (new, epoch + 1)
        self._consecutive = 0
        self._window.clear()
        self._window_failures = 0
        self._probes = 0
        self._probe_successes = 0
        if new is _OPEN:
            self._opened_at = self._clock()
        return None if old is new else (old, new, reason)

    def _acquire(self) -> Ticket:
        """Admit one call or raise ``CircuitOpenError``."""
        state, epoch = self._status
        if state is _CLOSED:
            # Closed admits everything: no lock needed, the snapshot is consistent.
            return (epoch, False)
        return self._acquire_slow()

    def _acquire_slow(self) -> Ticket:
        change: _Change | None = None
        retry_after = 0.0
        ticket: Ticket = (-1, False)
        with self._lock:
            state, epoch = self._status
            if state is _OPEN:
                retry_after = self._opened_at + self._recovery_timeout - self._clock()
                if retry_after <= 0:
                    change = self._move(_HALF_OPEN, "recovery timeout elapsed")
                    state, epoch = self._status
            if state is _CLOSED:
                ticket = (epoch, False)
            elif state is _HALF_OPEN and self._probes < self._half_open_max_calls:
                self._probes += 1
                ticket = (epoch, True)
            else:
                self._counts[REJECTED] += 1
        admitted = ticket[0] >= 0
        try:
            self._announce(change)
        except BaseException:
            # Only reachable where internal errors are raised (tests): free the probe slot.
            if admitted:
                self._release(ticket, IGNORED)
            raise
        if not admitted:
            retry_after = max(retry_after, 0.0)
            report_rejection(self._name, state, retry_after)
            raise CircuitOpenError(self._name, retry_after)
        return ticket

    def _release(self, ticket: Ticket, result: int) -> None:
        """Count the result of an admitted call and apply it to the state."""
        change: _Change | None = None
        with self._lock:
            self._counts[result] += 1
            epoch, probe = ticket
            if epoch != self._status[1]:
                pass  # admitted before the last transition: counted, but no say in the state
            elif probe:
                change = self._probe_done(result)
            elif result != IGNORED:
                change = self._closed_done(result == FAILURE)
        if change is not None:
            self._announce(change)

    def _probe_done(self, result: int) -> _Change | None:
        self._probes -= 1
        if result == FAILURE:
            return self._move(_OPEN, "a probe call failed")
        if result == SUCCESS:
            self._probe_successes += 1
            if self._probe_successes >= self._success_threshold:
                return self._move(_CLOSED, "probe calls succeeded")
        return None

    def _closed_done(self, failed: bool) -> _Change | None:
        window = self._window
        if len(window) == window.maxlen and window[0]:
            self._window_failures -= 1
        window.append(failed)
        if not failed:
            self._consecutive = 0
            return None
        self._window_failures += 1
        self._consecutive += 1
        if self._failure_threshold is not None and self._consecutive >= self._failure_threshold:
            return self._move(_OPEN, f"{self._consecutive} consecutive failures")
        rate = self._rate_threshold
        if rate is not None and len(window) >= self._minimum_calls:
            observed = self._window_failures / len(window)
            if observed >= rate:
                return self._move(_OPEN, f"failure rate {observed:.0%} over {len(window)} calls")
        return None

    def _announce(self, change: _Change | None) -> None:
        if change is None:
            return
        ensure_instruments()
        old, new, reason = change
        report_transition(self._name, old, new, reason)
        listener = self._on_state_change
        if listener is not None:
            try:
                listener(self, old, new)
            except Exception as exc:
                internal_error(f"circuit breaker {self._name!r} on_state_change", exc)

    def _classify(self, exc: BaseException) -> int:
        if isinstance(exc, self._exclude):
            return IGNORED
        if isinstance(exc, self._failure_exceptions):
            return FAILURE
        return IGNORED
