"""``CircuitBreaker``: stop calling a failing dependency, probe it, resume when it recovers.

The state machine lives in ``_circuit_state``; this module adds the ways of calling through a
breaker (decorator, context managers, ``call``/``call_async``), validation and the registry.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar, cast

from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._resilience.breaker_state import SUCCESS, BreakerCore, Ticket
from ttbt5_otel._resilience.breaker_telemetry import RESULTS, CircuitState, track

P = ParamSpec("P")
R = TypeVar("R")

StateListener = Callable[["CircuitBreaker", CircuitState, CircuitState], object]
"""``on_state_change(breaker, old_state, new_state)``."""
_registry: weakref.WeakValueDictionary[str, CircuitBreaker] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


class CircuitBreaker(BreakerCore):
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

    With ``retry``, put ``@retry`` outside and ``@breaker`` inside: every attempt then
    passes the breaker, and ``retry`` does not retry the ``CircuitOpenError`` of an open one.
    """

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
        super().__init__(
            name,
            failure_threshold=failure_threshold,
            failure_rate_threshold=failure_rate_threshold,
            window_size=window_size,
            minimum_calls=minimum_calls,
            recovery_timeout=recovery_timeout,
            half_open_max_calls=half_open_max_calls,
            success_threshold=success_threshold,
            failure_exceptions=failure_exceptions,
            exclude=exclude,
            clock=clock,
            on_state_change=on_state_change,
        )
        self._tickets: ContextVar[tuple[Ticket, ...]] = ContextVar(f"ttbt5_circuit_breaker_{name}")
        with _registry_lock:
            if _registry.get(name) is not None:
                warn_once(
                    f"circuit breaker name:{name}",
                    "a second live circuit breaker is named %r; their metrics share "
                    "attributes and CircuitBreaker.get returns the newest",
                    name,
                )
            _registry[name] = self
        track(self, self._counts)

    # -- registry and inspection -----------------------------------------------------------
    @staticmethod
    def get(name: str) -> CircuitBreaker | None:
        """The live breaker named ``name``, if any."""
        with _registry_lock:
            return _registry.get(name)

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._name

    @property
    def state(self) -> CircuitState:
        """The current state (an expired open state turns half-open on the next call)."""
        return self._status[0]

    @property
    def calls(self) -> Mapping[str, int]:
        """Calls so far by result: ``success``, ``failure``, ``ignored``, ``rejected``."""
        return dict(zip(RESULTS, self._counts, strict=True))

    def __repr__(self) -> str:
        """Name and state."""
        return f"<CircuitBreaker {self._name!r} {self._status[0].value}>"

    def reset(self) -> None:
        """Close the breaker now and forget the failures counted so far."""
        with self._lock:
            change = self._move(CircuitState.CLOSED, "reset")
        self._announce(change)

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
        self._release(ticket, SUCCESS)
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
        self._release(ticket, SUCCESS)
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

            return cast("Callable[P, R]", async_wrapper)

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
        self._release(stack[-1], SUCCESS if exc is None else self._classify(exc))

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
    with _registry_lock:
        live = list(_registry.items())
    return {name: breaker.state for name, breaker in live}


def _check(ok: bool, option: str, expected: str) -> None:
    if not ok:
        raise ValueError(f"CircuitBreaker {option} must be {expected}")
