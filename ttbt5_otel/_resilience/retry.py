"""``retry``: tenacity retries that report each call's outcome, attempts and failed attempts.

tenacity decides *whether* and *when* to try again; this module only observes. Every call
gets its own ``Retrying`` (or ``AsyncRetrying``) whose hooks are bound to a fresh per-call
record, because tenacity keeps its ``statistics`` and iteration state on the retrying object,
where concurrent calls of the same function (threads or asyncio tasks) would overwrite each
other's numbers.

Recommended composition with a circuit breaker: ``@retry`` outside, ``@breaker`` inside, so
each attempt passes the breaker and an open breaker ends the retries at once (a
``CircuitOpenError`` is not retried unless ``on=`` names it explicitly).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec, TypeVar, overload

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.retry import RetryBaseT
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._exceptions import CircuitOpenError
from ttbt5_otel._resilience.retry_telemetry import RetryTelemetry

P = ParamSpec("P")
R = TypeVar("R")
RetryPredicate = RetryBaseT | Callable[[RetryCallState], Awaitable[bool]]
"""A tenacity retry policy; async predicates are accepted for coroutine functions."""

DEFAULT_ATTEMPTS: Final = 3
DEFAULT_BACKOFF: Final = (0.1, 10.0)


def _backoff(backoff: float | tuple[float, float]) -> WaitBaseT:
    first, cap = (backoff, DEFAULT_BACKOFF[1]) if isinstance(backoff, int | float) else backoff
    if first < 0 or cap < first:
        raise ValueError(f"retry: backoff needs 0 <= first delay <= cap, got {backoff!r}")
    # Jitter of up to one first delay spreads the retries of callers that failed together.
    return wait_exponential_jitter(multiplier=first, max=cap, jitter=first)


def _exception_of(exc: BaseException) -> BaseException | None:
    """The exception the last attempt raised (``None``: it returned a rejected result)."""
    if isinstance(exc, RetryError):
        last = exc.last_attempt
        return last.exception() if last.failed else None
    return exc


class _Policy:
    """What one ``@retry`` decoration was configured with, shared by all its calls."""

    __slots__ = ("name", "reraise", "retry", "retry_open", "stop", "telemetry", "wait")

    def __init__(
        self,
        name: str,
        stop: StopBaseT,
        wait: WaitBaseT,
        retry: RetryPredicate,
        reraise: bool,
        retry_open: bool,
    ) -> None:
        self.name = name
        self.stop = stop
        self.wait = wait
        self.retry = retry
        self.reraise = reraise
        self.retry_open = retry_open
        self.telemetry = RetryTelemetry(name)

    def finish(self, call: _Call, exc: BaseException | None) -> None:
        """Record the outcome of one call; ``exc`` is what the caller receives, if anything."""
        attempts = max(call.attempts, 1)
        if exc is None:
            self.telemetry.succeeded(attempts)
            return
        cause = _exception_of(exc)
        if call.reported < attempts:
            call.attempt_failed(attempts, cause, None)
        self.telemetry.failed(attempts, type(cause if cause is not None else exc).__qualname__)


class _Call:
    """Per-call record: tenacity's hooks of this call write here, and only here."""

    __slots__ = ("attempts", "policy", "reported")

    def __init__(self, policy: _Policy) -> None:
        self.policy = policy
        self.attempts = 0
        self.reported = 0

    def hooks(self) -> dict[str, Any]:
        """Options of a fresh tenacity retrying object for this call, but the predicate."""
        policy = self.policy
        return {
            "stop": policy.stop,
            "wait": policy.wait,
            "before": self.before,
            "before_sleep": self.before_sleep,
            "reraise": policy.reraise,
        }

    def before(self, state: RetryCallState) -> None:
        self.attempts = state.attempt_number

    def _declines(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        return (
            not self.policy.retry_open
            and outcome is not None
            and outcome.failed
            and isinstance(outcome.exception(), CircuitOpenError)
        )

    def should_retry(self, state: RetryCallState) -> bool:
        if self._declines(state):
            return False
        return bool(self.policy.retry(state))

    async def should_retry_async(self, state: RetryCallState) -> bool:
        if self._declines(state):
            return False
        verdict: Any = self.policy.retry(state)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)

    def before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        self.attempt_failed(state.attempt_number, exc, state.upcoming_sleep)

    def attempt_failed(self, number: int, exc: BaseException | None, sleep: float | None) -> None:
        self.reported = number
        self.policy.telemetry.attempt_failed(number, exc, sleep)


def _finish(policy: _Policy, call: _Call, exc: BaseException | None) -> None:
    try:
        policy.finish(call, exc)
    except Exception as hook_exc:
        internal_error(f"retry({policy.name})", hook_exc)


def _async_sleep(sleep: Callable[[float], object]) -> Callable[[float], Any]:
    async def pause(seconds: float) -> None:
        pending = sleep(seconds)
        if inspect.isawaitable(pending):
            await pending

    return pause


def _decorate(
    fn: Callable[..., Any], policy: _Policy, sleep: Callable[[float], object] | None
) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"retry cannot wrap generator function {policy.name}")
    if inspect.iscoroutinefunction(fn):
        pause = _async_sleep(sleep or asyncio.sleep)

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = _Call(policy)
            retrying = AsyncRetrying(sleep=pause, retry=call.should_retry_async, **call.hooks())
            try:
                result: Any = await retrying(fn, *args, **kwargs)
            except BaseException as exc:
                _finish(policy, call, exc)
                raise
            _finish(policy, call, None)
            return result

        return async_wrapper

    if inspect.iscoroutinefunction(policy.retry) or inspect.iscoroutinefunction(
        getattr(policy.retry, "__call__", None)  # noqa: B004 - an async __call__ counts too
    ):
        raise TypeError(f"retry: an async retry predicate needs an async function ({policy.name})")
    pause_sync: Callable[[float], Any] = sleep or time.sleep

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = _Call(policy)
        retrying = Retrying(sleep=pause_sync, retry=call.should_retry, **call.hooks())
        try:
            result = retrying(fn, *args, **kwargs)
        except BaseException as exc:
            _finish(policy, call, exc)
            raise
        _finish(policy, call, None)
        return result

    return wrapper


def _build_policy(
    name: str,
    *,
    stop: StopBaseT | None,
    wait: WaitBaseT | None,
    retry: RetryPredicate | None,
    attempts: int | None,
    backoff: float | tuple[float, float] | None,
    on: type[BaseException] | tuple[type[BaseException], ...] | None,
    reraise: bool,
) -> _Policy:
    if stop is not None and attempts is not None:
        raise ValueError("retry: pass either stop= or attempts=, not both")
    if wait is not None and backoff is not None:
        raise ValueError("retry: pass either wait= or backoff=, not both")
    if retry is not None and on is not None:
        raise ValueError("retry: pass either retry= or on=, not both")
    if attempts is not None and attempts < 1:
        raise ValueError(f"retry: attempts must be at least 1, got {attempts}")
    kinds = (on,) if isinstance(on, type) else tuple(on or ())
    if any(not (isinstance(k, type) and issubclass(k, BaseException)) for k in kinds):
        raise TypeError(f"retry: on= takes exception classes, got {on!r}")
    return _Policy(
        name,
        stop if stop is not None else stop_after_attempt(attempts or DEFAULT_ATTEMPTS),
        wait if wait is not None else _backoff(DEFAULT_BACKOFF if backoff is None else backoff),
        retry if retry is not None else retry_if_exception_type(kinds or Exception),
        reraise,
        retry_open=any(issubclass(k, CircuitOpenError) for k in kinds),
    )


@overload
def retry(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    *,
    attempts: int | None = None,
    backoff: float | tuple[float, float] | None = None,
    on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    stop: StopBaseT | None = None,
    wait: WaitBaseT | None = None,
    retry: RetryPredicate | None = None,
    reraise: bool = True,
    name: str | None = None,
    sleep: Callable[[float], object] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry(
    func: Callable[P, R] | None = None,
    /,
    *,
    attempts: int | None = None,
    backoff: float | tuple[float, float] | None = None,
    on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    stop: StopBaseT | None = None,
    wait: WaitBaseT | None = None,
    retry: RetryPredicate | None = None,
    reraise: bool = True,
    name: str | None = None,
    sleep: Callable[[float], object] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry a sync or async function with tenacity and report every call as telemetry.

    Bare (``@retry``: 3 attempts, exponential backoff from 0.1 s capped at 10 s, on any
    ``Exception``) or configured, either with short forms or with tenacity's own policy
    objects (``stop=stop_after_delay(5)``, ``wait=wait_fixed(1)``, ``retry=retry_if_result(...)``)
    used as they are. A coroutine function gets an ``async def`` wrapper.

    Telemetry, per call: ``ttbt5.retry.calls`` (``retry.name``, ``retry.outcome`` and, for
    failed calls only, ``error.type``: the qualified class name of the exception the last
    attempt raised, or ``RetryError`` when it returned a result the policy rejected) and
    ``ttbt5.retry.attempts``; per failed attempt, a ``retry.attempt_failed`` event on the
    current span (``retry.attempt``, ``exception.type``, ``retry.will_retry`` and
    ``retry.sleep``, the seconds waited before the next attempt).

    ``CircuitOpenError`` is never retried unless ``on=`` names it: retrying into an open
    breaker only adds load and latency. Put ``@retry`` outside and ``@breaker`` inside.

    Args:
        func: the function, when used bare.
        attempts: give up after this many attempts (default 3); excludes ``stop``.
        backoff: exponential backoff: the first delay in seconds, doubling per attempt up to
            10 s, or a ``(first, cap)`` pair; each delay adds up to ``first`` seconds of
            random jitter. Excludes ``wait``.
        on: exception class or tuple of classes to retry (default ``Exception``); excludes
            ``retry``.
        stop: a tenacity stop policy.
        wait: a tenacity wait policy.
        retry: a tenacity retry predicate (async predicates work for async functions).
        reraise: when attempts run out, raise the last attempt's exception (default);
            ``False`` raises tenacity's ``RetryError`` wrapping it instead.
        name: the ``retry.name`` attribute; defaults to the function's qualified name.
        sleep: how to wait between attempts (``time.sleep`` / ``asyncio.sleep`` by
            default); for async functions it may return an awaitable. Tests pass a fake.

    Raises:
        ValueError: a short form and the tenacity policy it replaces were both given, or
            ``attempts``/``backoff`` is out of range.
        TypeError: ``on`` is not exception classes, or the function is a generator.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        policy = _build_policy(
            name or getattr(fn, "__qualname__", None) or repr(fn),
            stop=stop,
            wait=wait,
            retry=retry,
            attempts=attempts,
            backoff=backoff,
            on=on,
            reraise=reraise,
        )
        wrapped: Callable[P, R] = _decorate(fn, policy, sleep)
        return wrapped

    if func is not None:
        return decorate(func)
    return decorate
