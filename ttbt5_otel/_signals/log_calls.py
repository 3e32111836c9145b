"""``log_calls``: a log record when a function starts and when it ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from ttbt5_otel._core.attributes import argument_repr, short_repr
from ttbt5_otel._core.wrap import RERAISE, wrap
from ttbt5_otel._signals.logger import FIELDS_ATTR

P = ParamSpec("P")
R = TypeVar("R")


class _LogHooks:
    __slots__ = ("_function", "_level", "_log_args", "_log_result", "_logger")

    def __init__(
        self, logger: logging.Logger, level: int, function: str, log_args: bool, log_result: bool
    ) -> None:
        self._logger = logger
        self._level = level
        self._function = function
        self._log_args = log_args
        self._log_result = log_result

    def _emit(self, level: int, message: str, fields: dict[str, Any], *args: object) -> None:
        self._logger.log(
            level,
            message,
            self._function,
            *args,
            extra={FIELDS_ATTR: {"code.function": self._function, **fields}},
        )

    def enter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        if self._logger.isEnabledFor(self._level):
            fields: dict[str, Any] = {"event": "call"}
            if self._log_args:
                fields["code.args"] = [short_repr(a) for a in args]
                for key, value in kwargs.items():
                    fields[f"code.kwargs.{key}"] = argument_repr(key, value)
            self._emit(self._level, "calling %s", fields)
        return time.perf_counter()

    def resume(self, state: float) -> object:
        del state
        return None

    def suspend(self, state: float, token: object) -> None:
        del state, token

    def success(self, state: float, result: object) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        duration_ms = round((time.perf_counter() - state) * 1000, 3)
        fields: dict[str, Any] = {"event": "return", "duration_ms": duration_ms}
        if self._log_result:
            fields["code.return"] = short_repr(result)
        self._emit(self._level, "%s returned after %.3f ms", fields, duration_ms)

    def failure(self, state: float, exc: BaseException) -> object:
        duration_ms = round((time.perf_counter() - state) * 1000, 3)
        level = max(self._level, logging.WARNING)
        if self._logger.isEnabledFor(level):
            fields = {
                "event": "raise",
                "duration_ms": duration_ms,
                "exception.type": type(exc).__qualname__,
            }
            self._emit(level, "%s raised after %.3f ms", fields, duration_ms)
        return RERAISE


@overload
def log_calls(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def log_calls(
    *,
    level: int = logging.DEBUG,
    logger: logging.Logger | str | None = None,
    log_args: bool = False,
    log_result: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def log_calls(
    func: Callable[P, R] | None = None,
    /,
    *,
    level: int = logging.DEBUG,
    logger: logging.Logger | str | None = None,
    log_args: bool = False,
    log_result: bool = False,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Log entry and exit of each call at ``level``, correlated with the current span.

    The exit record carries ``duration_ms``; an exception is logged at WARNING or above with
    its type (the traceback belongs to ``handle_errors`` or the caller). Arguments and the
    return value are logged only when asked, as short reprs with secret-looking keyword
    names redacted. ``logger`` defaults to the function's module logger.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        target = (
            logger
            if isinstance(logger, logging.Logger)
            else logging.getLogger(logger or fn.__module__)
        )
        hooks = _LogHooks(target, level, fn.__qualname__, log_args, log_result)
        return wrap(fn, hooks, f"log_calls({fn.__qualname__})")

    if func is not None:
        return decorate(func)
    return decorate
