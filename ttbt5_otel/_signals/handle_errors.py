"""``handle_errors``: one exception becomes a span event, a metric count and a log record."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, ParamSpec, Self, TypeVar, overload

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ttbt5_otel._core.attributes import attributes_of
from ttbt5_otel._core.guard import internal_error, own_logger
from ttbt5_otel._core.wrap import RERAISE, wrap
from ttbt5_otel._exceptions import ApplicationError, ErrorCategory, ErrorSeverity
from ttbt5_otel._signals.logger import FIELDS_ATTR
from ttbt5_otel._signals.metrics import counter

P = ParamSpec("P")
R = TypeVar("R")
ERRORS_METRIC: Final = "ttbt5.errors"
_UNSET: Final = object()
_RECORDED_MARK: Final = "__ttbt5_recorded__"
RECORDED_ON_SPAN: Final = "__ttbt5_recorded_on_span__"
"""Set on an exception already recorded as an event of that span (id), to avoid a second."""
ErrorListener = Callable[[BaseException, ErrorSeverity, ErrorCategory], object]
"""Told of each exception once it is recorded, with the severity and category recorded."""
_errors_counter = counter(ERRORS_METRIC, unit="{error}", description="Errors handled, by kind.")
_default_logger = own_logger("ttbt5_otel.errors")


def record_error(
    exc: BaseException,
    *,
    severity: ErrorSeverity | None = None,
    category: ErrorCategory | None = None,
    logger: logging.Logger | None = None,
    handled: bool = False,
    listener: ErrorListener | None = None,
) -> None:
    """Report ``exc`` once on every signal: span event, ``ttbt5.errors`` count, log record.

    An exception that already passed through ``handle_errors`` further down the stack is
    not reported again, so nesting never double-counts. ``listener`` is called after the
    three signals with the severity and category they carry (not for a repeat), still
    inside the failing call's span.
    """
    if getattr(exc, _RECORDED_MARK, False):
        return
    # Exceptions with __slots__ refuse the mark: they are reported, just without the dedup.
    with contextlib.suppress(AttributeError):
        setattr(exc, _RECORDED_MARK, True)
    own_severity, own_category = classify(exc)
    if not isinstance(exc, ApplicationError):
        own_severity = severity or own_severity
        own_category = category or own_category
    error_type = type(exc).__qualname__
    labels = {
        "error.type": error_type,
        "error.severity": own_severity.value,
        "error.category": own_category.value,
    }
    current = trace.get_current_span()
    if current.is_recording():
        with contextlib.suppress(AttributeError):
            setattr(exc, RECORDED_ON_SPAN, current.get_span_context().span_id)
        current.record_exception(exc, attributes={**labels, "error.handled": handled})
        if not handled:
            current.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
    _errors_counter.add(1, labels)
    fields: dict[str, Any] = dict(labels)
    if isinstance(exc, ApplicationError):
        fields.update(attributes_of({f"error.context.{k}": v for k, v in exc.context.items()}))
        if exc.recovery_suggestions:
            fields["error.recovery_suggestions"] = list(exc.recovery_suggestions)
    (logger or _default_logger).log(
        own_severity.log_level,
        "%s: %s",
        error_type,
        exc,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={FIELDS_ATTR: fields},
    )
    if listener is not None:
        listener(exc, own_severity, own_category)


class ErrorScope:
    """Decorator and context manager returned by ``handle_errors(...)``."""

    __slots__ = (
        "_category",
        "_errors",
        "_fallback",
        "_logger",
        "_on_error",
        "_reraise",
        "_severity",
    )

    def __init__(
        self,
        errors: tuple[type[BaseException], ...],
        fallback: Any,
        reraise: bool | None,
        severity: ErrorSeverity | None,
        category: ErrorCategory | None,
        logger: logging.Logger | None,
        on_error: ErrorListener | None = None,
    ) -> None:
        """See ``handle_errors``."""
        self._errors = errors
        self._fallback = fallback
        self._reraise = (fallback is _UNSET) if reraise is None else reraise
        self._severity = severity
        self._category = category
        self._logger = logger
        self._on_error = on_error

    def _handle(self, exc: BaseException) -> bool:
        """Record ``exc`` if it is one of ours; True when it should propagate."""
        if not isinstance(exc, self._errors):
            return True
        try:
            record_error(
                exc,
                severity=self._severity,
                category=self._category,
                logger=self._logger,
                handled=not self._reraise,
                listener=self._on_error,
            )
        except Exception as hook_exc:
            internal_error("handle_errors", hook_exc)
        return self._reraise

    # -- decorator -----------------------------------------------------------------------
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func``: handled errors return the fallback (or ``None``) unless re-raised."""
        return wrap(func, _ErrorHooks(self), f"handle_errors({func.__qualname__})")

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> Self:
        """Handle errors raised inside the block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Record the exception; suppress it unless it must propagate."""
        if exc is None:
            return False
        return not self._handle(exc)

    async def __aenter__(self) -> Self:
        """Same as ``with``."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Same as ``with``."""
        return self.__exit__(exc_type, exc, tb)


class _ErrorHooks:
    __slots__ = ("_scope",)

    def __init__(self, scope: ErrorScope) -> None:
        self._scope = scope

    def enter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        del args, kwargs
        return True

    def resume(self, state: bool) -> object:
        del state
        return None

    def suspend(self, state: bool, token: object) -> None:
        del state, token

    def success(self, state: bool, result: object) -> None:
        del state, result

    def failure(self, state: bool, exc: BaseException) -> object:
        del state
        if self._scope._handle(exc):  # noqa: SLF001
            return RERAISE
        fallback = self._scope._fallback  # noqa: SLF001
        if fallback is _UNSET:
            return None
        return fallback() if callable(fallback) else fallback


@overload
def handle_errors(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def handle_errors(
    *,
    errors: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    fallback: Any = _UNSET,
    reraise: bool | None = None,
    severity: ErrorSeverity | None = None,
    category: ErrorCategory | None = None,
    logger: logging.Logger | None = None,
    on_error: ErrorListener | None = None,
) -> ErrorScope: ...


def handle_errors(
    func: Callable[P, R] | None = None,
    /,
    *,
    errors: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    fallback: Any = _UNSET,
    reraise: bool | None = None,
    severity: ErrorSeverity | None = None,
    category: ErrorCategory | None = None,
    logger: logging.Logger | None = None,
    on_error: ErrorListener | None = None,
) -> Callable[P, R] | ErrorScope:
    """Turn an exception into every signal at once, then re-raise it or fall back.

    For each exception of type ``errors``: an exception event (with severity and category)
    on the current span, one count in ``ttbt5.errors{error.type, error.severity,
    error.category}`` and a log record at the severity's level (LOW=INFO, MEDIUM=WARNING,
    HIGH=ERROR, CRITICAL=CRITICAL). ``ApplicationError`` brings its own severity and
    category; ``severity``/``category`` set them for other exceptions.

    With ``fallback`` (a value, or a zero-argument callable producing one) the decorated
    function returns it instead of raising; otherwise the exception propagates, unless
    ``reraise=False``, in which case a decorated function returns ``None`` and a ``with``
    block swallows the exception. Works bare (``@handle_errors``), called, and as a ``with``
    / ``async with`` block, on plain, async and generator functions.

    ``on_error(exc, severity, category)`` is called once per recorded exception, right after
    the three signals, inside the span: the place for handlers that page someone or count
    something of their own. Its return value is ignored; an exception it raises is logged
    as an internal error and never replaces the application's.
    """
    error_types = errors if isinstance(errors, tuple) else (errors,)
    scope = ErrorScope(error_types, fallback, reraise, severity, category, logger, on_error)
    if func is not None:
        return scope(func)
    return scope


def classify(exc: BaseException) -> tuple[ErrorSeverity, ErrorCategory]:
    """Severity and category of any exception (defaults for non-application errors)."""
    if isinstance(exc, ApplicationError):
        return exc.severity, exc.category
    if isinstance(exc, TimeoutError | ConnectionError):
        return ErrorSeverity.HIGH, ErrorCategory.NETWORK
    if isinstance(exc, PermissionError):
        return ErrorSeverity.HIGH, ErrorCategory.AUTHORIZATION
    return ErrorSeverity.HIGH, ErrorCategory.UNKNOWN
