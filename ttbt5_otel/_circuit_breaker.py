"""``CircuitBreaker``: stop calling a failing dependency, probe it, resume when it recovers.

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

import functools
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ClassVar, Final, ParamSpec, Self, TypeVar

from ttbt5_otel._circuit_telemetry import (
    RESULTS,
    CircuitState,
    ensure_instruments,
    report_rejection,
    report_transition,
    track,
)
from ttbt5_otel._exceptions import CircuitOpenError
from ttbt5_otel._guard import internal_error, warn_once

P = ParamSpec("P")
R = TypeVar("R")

_SUCCESS: Final = 0
_FAILURE: Final = 1
_IGNORED: Final = 2
_REJECTED: Final = 3

StateListener = Callable[["CircuitBreaker", CircuitState, CircuitState], object]
"""``on_state_change(breaker, old_state, new_state)``."""
_Ticket = tuple[int, bool]
"""(epoch the call was admitted in, whether it holds a half-open probe slot)."""
_Change = tuple[CircuitState, CircuitState, str]


class CircuitBreaker:
    """A circuit breaker: decorator, context manager, or ``call``/``call_async`` wrapper.

    ``@breaker`` works on sync and async functions; ``with breaker:`` and
    ``async with breaker:`` guard a block; ``breaker.call(fn, *args)`` and
    ``await breaker.call_async(fn, *args)`` guard one call. A rejected call raises
    ``CircuitOpenError`` without running. Breakers register themselves by name
    (``CircuitBreaker.get(name)``, ``circuit_breakers()``) for as long as they are referenced
    elsewhere; keep one breaker per dependency, created once.

    Telemetry: ``ttbt5.circuit_breaker.state`` (1/0 per state), ``.transitions`` and
    ``.calls`` metrics; span events ``circuit_breaker.state_change`` and
    ``circuit_breaker.rejected`` on the current span; a WARNING log record on
    ``ttbt5_otel.resilience`` when a breaker opens and INFO when it closes.
    """

    _registry: ClassVar[weakref.WeakValueDictionary[str, CircuitBreaker]] = (
        weakref.WeakValueDictionary()
    )
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int | None = 5,
        failure_rate_threshold: float | None = None,
        window_size: int = 20,
        minimum_calls: int = 10,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        success_threshold: int | None = None,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        exclude: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateListener | None = None,
    ) -> None:
        """Create a closed breaker named ``name``.

        Args:
            name: the ``circuit_breaker.name`` attribute and registry key.
            failure_threshold: open after this many consecutive failures; ``None`` disables.
            failure_rate_threshold: open when the failure rate (0-1) over the last
                ``window_size`` calls reaches this value; ``None`` (default) disables.
            window_size: calls the failure rate is computed over.
            minimum_calls: calls the window must hold before the rate can open the breaker.
            recovery_timeout: seconds an open breaker rejects calls before probing.
            half_open_max_calls: probe calls admitted at the same time while half-open.
            success_threshold: successful probes needed to close; defaults to
                ``half_open_max_calls``.
            failure_exceptions: exceptions that count as failures.
            exclude: exceptions that never count as failures (checked first), such as a
                "not found" that proves the dependency works. Other exceptions, including
                cancellation, are *ignored*: counted, but neither success nor failure.
            clock: monotonic seconds; inject a fake in tests.
            on_state_change: called as ``(breaker, old, new)`` after each transition; its
                exceptions are logged, never raised into the call.

        Raises:
            ValueError: a threshold or size is out of range.
        """
        success_threshold = half_open_max_calls if success_threshold is None else success_threshold
        _check(failure_threshold is None or failure_threshold >= 1, "failure_threshold", ">= 1")
        _check(
            failure_rate_threshold is None or 0.0 < failure_rate_threshold <= 1.0,
            "failure_rate_threshold",
            "in (0, 1]",
        )
        _check(window_size >= 1, "window_size", ">= 1")
        _check(1 <= minimum_calls <= window_size, "minimum_calls", "in [1, window_size]")
        _check(recovery_timeout >= 0, "recovery_timeout", ">= 0")
        _check(half_open_max_calls >= 1, "half_open_max_calls", ">= 1")
        _check(success_threshold >= 1, "success_threshold", ">= 1")
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
        self._state = CircuitState.CLOSED
        self._epoch = 0
        self._opened_at = 0.0
        self._consecutive = 0
        self._window: deque[bool] = deque(maxlen=window_size)
        self._window_failures = 0
        self._probes = 0
        self._probe_successes = 0
        self._counts = [0, 0, 0, 0]
        self._tickets: ContextVar[tuple[_Ticket, ...]] = ContextVar(f"ttbt5_circuit_breaker_{name}")
        with CircuitBreaker._registry_lock:
            if CircuitBreaker._registry.get(name) is not None:
                warn_once(
                    f"circuit breaker name:{name}",
                    "a second live circuit breaker is named %r; their metrics share "
                    "attributes and CircuitBreaker.get returns the newest",
                    name,
                )
            CircuitBreaker._registry[name] = self
        track(self)

    # -- registry and inspection -----------------------------------------------------------
    @classmethod
    def get(cls, name: str) -> CircuitBreaker | None:
        """The live breaker named ``name``, if any."""
        return cls._registry.get(name)

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._name

    @property
    def state(self) -> CircuitState:
        """The current state (an expired open state turns half-open on the next call)."""
        return self._state

    @property
    def calls(self) -> Mapping[str, int]:
        """Calls so far by result: ``success``, ``failure``, ``ignored``, ``rejected``."""
        return dict(zip(RESULTS, self._counts, strict=True))

    def __repr__(self) -> str:
        """Name and state."""
        return f"<CircuitBreaker {self._name!r} {self._state.value}>"

    def reset(self) -> None:
        """Close the breaker now and forget the failures counted so far."""
        with self._lock:
            change = self._move(CircuitState.CLOSED, "reset")
        self._announce(change)

    # -- state machine ---------------------------------------------------------------------
    def _move(self, new: CircuitState, reason: str) -> _Change | None:
        """Switch to ``new`` (lock held); the caller announces the change after unlocking."""
        old = self._state
        self._epoch += 1
        self._state = new
        self._consecutive = 0
        self._window.clear()
        self._window_failures = 0
        self._probes = 0
        self._probe_successes = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        return None if old is new else (old, new, reason)

    def _acquire(self) -> _Ticket:
        ensure_instruments()
        change: _Change | None = None
        retry_after = 0.0
        with self._lock:
            state = self._state
            if state is CircuitState.OPEN:
                retry_after = self._opened_at + self._recovery_timeout - self._clock()
                if retry_after <= 0:
                    change = self._move(CircuitState.HALF_OPEN, "recovery timeout elapsed")
                    state = CircuitState.HALF_OPEN
            admitted = state is CircuitState.CLOSED or (
                state is CircuitState.HALF_OPEN and self._probes < self._half_open_max_calls
            )
            if admitted:
                probe = state is CircuitState.HALF_OPEN
                self._probes += probe
                ticket = (self._epoch, probe)
            else:
                self._counts[_REJECTED] += 1
        try:
            self._announce(change)
        except BaseException:
            # Only reachable where internal errors are raised (tests): free the probe slot.
            if admitted:
                self._release(ticket, _IGNORED)
            raise
        if not admitted:
            retry_after = max(retry_after, 0.0)
            report_rejection(self._name, state, retry_after)
            raise CircuitOpenError(self._name, retry_after)
        return ticket

    def _release(self, ticket: _Ticket, result: int) -> None:
        change: _Change | None = None
        with self._lock:
            self._counts[result] += 1
            epoch, probe = ticket
            if epoch != self._epoch or result == _REJECTED:
                pass
            elif probe:
                change = self._probe_done(result)
            elif result != _IGNORED:
                change = self._closed_done(result == _FAILURE)
        self._announce(change)

    def _probe_done(self, result: int) -> _Change | None:
        self._probes -= 1
        if result == _FAILURE:
            return self._move(CircuitState.OPEN, "a probe call failed")
        if result == _SUCCESS:
            self._probe_successes += 1
            if self._probe_successes >= self._success_threshold:
                return self._move(CircuitState.CLOSED, "probe calls succeeded")
        return None

    def _closed_done(self, failed: bool) -> _Change | None:
        window = self._window
        if window.maxlen is not None and len(window) == window.maxlen and window[0]:
            self._window_failures -= 1
        window.append(failed)
        if not failed:
            self._consecutive = 0
            return None
        self._window_failures += 1
        self._consecutive += 1
        if self._failure_threshold is not None and self._consecutive >= self._failure_threshold:
            return self._move(CircuitState.OPEN, f"{self._consecutive} consecutive failures")
        rate = self._rate_threshold
        if rate is not None and len(window) >= self._minimum_calls:
            observed = self._window_failures / len(window)
            if observed >= rate:
                return self._move(
                    CircuitState.OPEN, f"failure rate {observed:.0%} over {len(window)} calls"
                )
        return None

    def _announce(self, change: _Change | None) -> None:
        if change is None:
            return
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
            return _IGNORED
        if isinstance(exc, self._failure_exceptions):
            return _FAILURE
        return _IGNORED

    # -- ways to call through the breaker --------------------------------------------------
    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: the breaker rejected the call; ``fn`` did not run.
        """
        ticket = self._acquire()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._release(ticket, self._classify(exc))
            raise
        self._release(ticket, _SUCCESS)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: the breaker rejected the call; ``fn`` did not run.
        """
        ticket = self._acquire()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._release(ticket, self._classify(exc))
            raise
        self._release(ticket, _SUCCESS)
        return result

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function; every call goes through the breaker."""
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(f"CircuitBreaker cannot wrap generator function {func!r}")
        if inspect.iscoroutinefunction(func):
            run: Callable[..., Any] = func

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(run, *args, **kwargs)

            wrapped: Callable[P, R] = async_wrapper  # type: ignore[assignment]
            return wrapped

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(func, *args, **kwargs)

        return wrapper

    def __enter__(self) -> Self:
        """Admit the block or raise ``CircuitOpenError``."""
        # A context variable keeps each thread's and task's tickets apart; a stack of them
        # lets the same breaker guard nested blocks.
        ticket = self._acquire()
        self._tickets.set((*self._tickets.get(()), ticket))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the block's result; an exception keeps propagating."""
        stack = self._tickets.get(())
        if not stack:
            return
        self._tickets.set(stack[:-1])
        self._release(stack[-1], _SUCCESS if exc is None else self._classify(exc))

    async def __aenter__(self) -> Self:
        """Same as ``with``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Same as ``with``."""
        self.__exit__(exc_type, exc, tb)


def circuit_breakers() -> dict[str, CircuitState]:
    """The state of every live breaker, by name."""
    return {name: breaker.state for name, breaker in list(CircuitBreaker._registry.items())}  # noqa: SLF001


def _check(ok: bool, option: str, expected: str) -> None:
    if not ok:
        raise ValueError(f"CircuitBreaker {option} must be {expected}")
