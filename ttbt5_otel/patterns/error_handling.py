"""The guide's ``src.patterns.error_handling``, over ``ttbt5_otel.handle_errors``.

``@handle_errors(error_manager)`` is the native ``handle_errors``: each error that escapes
the function becomes an exception event on the current span, one count in ``ttbt5.errors``
(``error.type``, ``error.severity``, ``error.category``) and a log record at the severity's
level, and then propagates. The manager's handlers plug into that path:

* ``LoggingErrorHandler(logger)`` names the logger that record goes to (without one it goes
  to ``ttbt5_otel.errors``); it does not log a second record.
* ``RetryErrorHandler(max_retries)`` retries the function with the native tenacity ``retry``
  before an error counts as escaped: retried attempts are span events and
  ``ttbt5.retry.*`` points; only the error left after the last retry is recorded above.
* ``AlertingErrorHandler`` and handlers of your own (``ErrorHandler`` subclasses) are called
  by the native path right after the three signals, inside the span, with the severity and
  category that were recorded.

What the guide did that OpenTelemetry does instead: the manager keeps no error history or
statistics (query ``ttbt5_errors_total`` by its labels in Prometheus), and a handler's
return value never replaces the function's result (pass ``fallback=`` to
``handle_errors`` for that). ``ApplicationError``, ``ValidationError``, ``ErrorSeverity``,
``ErrorCategory`` and ``Validator`` are the native ones.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, ParamSpec, TypeVar, cast, overload

import tenacity
from opentelemetry import trace

from ttbt5_otel._app.settings import load_settings
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._exceptions import (
    ApplicationError,
    ErrorCategory,
    ErrorSeverity,
    ValidationError,
)
from ttbt5_otel._resilience.retry import retry
from ttbt5_otel._signals.handle_errors import ErrorListener, record_error
from ttbt5_otel._signals.handle_errors import handle_errors as _native_handle_errors
from ttbt5_otel._signals.logger import StructuredLogger
from ttbt5_otel._signals.validation import Validator

__all__ = [
    "AlertingErrorHandler",
    "ApplicationError",
    "ErrorCategory",
    "ErrorContext",
    "ErrorHandler",
    "ErrorManager",
    "ErrorSeverity",
    "LoggingErrorHandler",
    "RetryErrorHandler",
    "ValidationError",
    "Validator",
    "handle_errors",
]

P = ParamSpec("P")
R = TypeVar("R")
_LOG = own_logger("ttbt5_otel.errors")
_ORDER = list(ErrorSeverity)


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Where an error was handled and how it was recorded (passed to ``ErrorHandler.handle``)."""

    function_name: str = ""
    module_name: str = ""
    severity: ErrorSeverity = ErrorSeverity.HIGH
    category: ErrorCategory = ErrorCategory.UNKNOWN
    additional_data: dict[str, Any] = field(default_factory=dict)


class ErrorHandler:
    """A handler the ``ErrorManager`` calls for each recorded error it ``can_handle``.

    ``handle`` may be plain or ``async``; its return value is ignored. A handler that
    raises is logged and the other handlers still run.
    """

    def can_handle(self, error: BaseException) -> bool:
        """Whether ``handle`` wants ``error`` (default: every error)."""
        del error
        return True

    def handle(self, error: BaseException, context: ErrorContext) -> Awaitable[None] | None:
        """React to ``error``, already recorded on the span, the metric and the log."""
        del error, context
        return None


class LoggingErrorHandler(ErrorHandler):
    """Send the error's log record to ``logger`` (stdlib or ``StructuredLogger``).

    The native path writes one record per error, at the severity's level, with trace and
    span ids, severity, category, context and recovery suggestions as attributes; this
    handler chooses its logger. It writes nothing itself, so nothing is logged twice.
    """

    def __init__(self, logger: logging.Logger | StructuredLogger) -> None:
        """Records of the manager's errors go to ``logger``."""
        self.logger = logger.logger if isinstance(logger, StructuredLogger) else logger


class RetryErrorHandler(ErrorHandler):
    """Retry the decorated function up to ``max_retries`` times before its error escapes.

    Applied by ``@handle_errors(manager)`` with the native tenacity ``retry`` (so
    ``max_retries + 1`` attempts): every failed attempt is a ``retry.attempt_failed`` span
    event, every call a ``ttbt5.retry.calls`` point; the ``Ttbt5RetriesExhausted`` alert
    watches the calls that failed after retrying. Retried: the ``retry_on`` errors (default
    ``ApplicationError``) except ``ValidationError`` (the same input fails the same way).
    Waits grow as ``backoff_factor * 2**n`` seconds like the guide's; without
    ``backoff_factor`` they follow the ``retry`` settings (``TTBT5_RETRY_BACKOFF``...).
    Register it before decorating: the decorator reads it once.
    """

    def __init__(
        self,
        max_retries: int = 3,
        backoff_factor: float | None = None,
        *,
        retry_on: tuple[type[BaseException], ...] = (ApplicationError,),
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """Up to ``max_retries`` retries of ``retry_on`` errors; ``sleep`` is for tests."""
        if max_retries < 0:
            raise ValueError(f"RetryErrorHandler: max_retries must be >= 0, got {max_retries}")
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.retry_on = retry_on
        self._sleep = sleep

    def can_handle(self, error: BaseException) -> bool:
        """Whether ``error`` is retried."""
        return isinstance(error, self.retry_on) and not isinstance(error, ValidationError)

    def wrap(self, func: Callable[P, R]) -> Callable[P, R]:
        """``func`` under the native ``retry`` with this handler's policy."""

        def retried(state: tenacity.RetryCallState) -> bool:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None and outcome.failed else None
            return error is not None and self.can_handle(error)

        attempts = self.max_retries + 1
        if self.backoff_factor is None:
            policy = load_settings().retry.policy(
                attempts=attempts, retry=retried, sleep=self._sleep
            )
            return policy(func)
        wait = tenacity.wait_exponential(multiplier=self.backoff_factor)
        return retry(attempts=attempts, retry=retried, wait=wait, sleep=self._sleep)(func)


class AlertingErrorHandler(ErrorHandler):
    """Mark errors of at least ``min_severity`` as alerts, and call ``notify`` for them.

    A process cannot page anyone by itself in OpenTelemetry terms: alerts are Prometheus
    rules over ``ttbt5_errors_total{error_severity=...}`` (every error is already counted
    there with its severity) routed by Alertmanager. This handler adds a ``ttbt5.alert``
    event (``error.type``, ``error.severity``, ``error.category``) to the failing span, so
    the trace an alert links to shows which error raised it, and calls ``notify(error,
    severity)`` (plain or async) for an in-process channel of your own.
    """

    def __init__(
        self,
        min_severity: ErrorSeverity = ErrorSeverity.HIGH,
        notify: Callable[[BaseException, ErrorSeverity], object] | None = None,
    ) -> None:
        """Alert on errors recorded at ``min_severity`` or above."""
        self.min_severity = ErrorSeverity(min_severity)
        self.notify = notify

    def handle(self, error: BaseException, context: ErrorContext) -> Awaitable[None] | None:
        """Mark the span and notify when the recorded severity is high enough."""
        if _ORDER.index(context.severity) < _ORDER.index(self.min_severity):
            return None
        trace.get_current_span().add_event(
            "ttbt5.alert",
            {
                "error.type": type(error).__qualname__,
                "error.severity": context.severity.value,
                "error.category": context.category.value,
            },
        )
        if self.notify is None:
            return None
        result = self.notify(error, context.severity)
        return _awaited(result) if inspect.isawaitable(result) else None


async def _awaited(result: Awaitable[object]) -> None:
    await result


class ErrorManager:
    """The handlers ``@handle_errors(manager)`` applies, in registration order."""

    def __init__(self) -> None:
        """No handlers: errors are still recorded on every signal."""
        self.handlers: list[ErrorHandler] = []
        self._decorated = False

    def register_handler(self, handler: ErrorHandler) -> None:
        """Add ``handler``; logging and retry handlers must come before decorating.

        Raises:
            RuntimeError: a logging or retry handler after the manager decorated a function.
            ValueError: a second logging or retry handler (there is one record, one policy).
        """
        if isinstance(handler, LoggingErrorHandler | RetryErrorHandler):
            kind = type(handler).__name__
            if self._decorated:
                raise RuntimeError(
                    f"register {kind} before @handle_errors(manager) decorates a function: "
                    "the decorator reads it once"
                )
            if any(type(h) is type(handler) for h in self.handlers):
                raise ValueError(f"this ErrorManager already has a {kind}")
        self.handlers.append(handler)

    @property
    def logger(self) -> logging.Logger | None:
        """The logger of the ``LoggingErrorHandler``, if one is registered."""
        found = self._first(LoggingErrorHandler)
        return None if found is None else found.logger

    def _first(self, kind: type[_H]) -> _H | None:
        return next((h for h in self.handlers if isinstance(h, kind)), None)

    async def handle_error(self, error: BaseException, context: ErrorContext | None = None) -> None:
        """Record ``error`` on every signal (once) and run the handlers, awaiting async ones."""
        pending: list[Awaitable[None]] = []
        token = _PENDING.set(pending)
        try:
            record_error(error, logger=self.logger, listener=self.listener(context))
        finally:
            _PENDING.reset(token)
        for awaitable in pending:
            await _contained(awaitable)

    def listener(self, where: ErrorContext | None = None) -> ErrorListener:
        """The native ``on_error`` hook: run the handlers with the recorded classification."""
        base = where or ErrorContext()

        def dispatch(error: BaseException, severity: ErrorSeverity, cat: ErrorCategory) -> None:
            context = replace(base, severity=severity, category=cat)
            for handler in self.handlers:
                try:
                    result = handler.handle(error, context) if handler.can_handle(error) else None
                except Exception:
                    _LOG.exception("error handler %s failed", type(handler).__name__)
                    continue
                if inspect.isawaitable(result):
                    _schedule(result)

        return dispatch


_H = TypeVar("_H", bound=ErrorHandler)
_PENDING: ContextVar[list[Awaitable[None]] | None] = ContextVar("ttbt5_pending", default=None)
"""Async handler results of the current call, awaited before its error leaves it."""
_TASKS: set[asyncio.Task[None]] = set()


async def _contained(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception:
        _LOG.exception("async error handler failed")


def _schedule(awaitable: Awaitable[None]) -> None:
    """Run an async handler: awaited by the failing call when it is async, else now or soon."""
    pending = _PENDING.get()
    if pending is not None:
        pending.append(awaitable)
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a plain function outside any event loop
        asyncio.run(_contained(awaitable))
        return
    # A plain function called from async code: the loop is busy with our caller.
    task = loop.create_task(_contained(awaitable))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


@overload
def handle_errors(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def handle_errors(
    error_manager: ErrorManager | None = None, /, **options: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def handle_errors(
    error_manager: ErrorManager | Callable[P, R] | None = None, /, **options: Any
) -> Callable[[Callable[P, R]], Callable[P, R]] | Callable[P, R]:
    """The guide's decorator: the native ``handle_errors`` calling the manager's handlers.

    ``@handle_errors(manager)`` on a plain or ``async`` function (``@handle_errors()`` and
    bare ``@handle_errors`` use a manager without handlers). ``options`` are the native
    keyword options (``fallback=``, ``reraise=``, ``errors=``, ``severity=``,
    ``category=``); without them the error propagates once handled, as in the guide.
    """
    if error_manager is not None and not isinstance(error_manager, ErrorManager):
        return handle_errors(None, **options)(error_manager)
    manager = error_manager or ErrorManager()

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        manager._decorated = True  # noqa: SLF001 - the manager's own flag, set by its decorator
        retrying = manager._first(RetryErrorHandler)  # noqa: SLF001
        target = func if retrying is None else retrying.wrap(func)
        where = ErrorContext(func.__qualname__, func.__module__)
        scoped = _native_handle_errors(
            logger=manager.logger, on_error=manager.listener(where), **options
        )(target)
        if not inspect.iscoroutinefunction(func):
            return scoped
        return cast("Callable[P, R]", _awaiting_handlers(scoped))  # type: ignore[arg-type]

    return decorate


def _awaiting_handlers(
    scoped: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """An async function's async handlers finish before its error reaches the caller."""

    @functools.wraps(scoped)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        pending: list[Awaitable[None]] = []
        token = _PENDING.set(pending)
        try:
            return await scoped(*args, **kwargs)
        finally:
            _PENDING.reset(token)
            for awaitable in pending:
                await _contained(awaitable)

    return wrapper
