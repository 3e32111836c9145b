"""``traced`` and ``span``: spans from decorators and context managers."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.attributes import argument_repr, attributes_of, short_repr
from ttbt5_otel._core.clean_attributes import CleanAttributes, clean_attributes
from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._core.otel import start_span
from ttbt5_otel._core.wrap import RERAISE, code_attributes, wrap
from ttbt5_otel._signals.handle_errors import RECORDED_ON_SPAN

P = ParamSpec("P")
R = TypeVar("R")


def _is_cancellation(exc: BaseException) -> bool:
    # Without asyncio imported there is no CancelledError to catch, and importing asyncio
    # only for this check would double the package's import time.
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def record_failure(span: Span, exc: BaseException) -> None:
    """Exception event plus error status; cancellation and closing are not errors."""
    if isinstance(exc, GeneratorExit):
        return
    if isinstance(exc, KeyboardInterrupt | SystemExit) or _is_cancellation(exc):
        span.set_attribute("ttbt5.interrupted", type(exc).__name__)
        return
    if getattr(exc, RECORDED_ON_SPAN, None) != span.get_span_context().span_id:
        span.record_exception(exc, escaped=True)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__qualname__}: {exc}"))


class _SpanHooks:
    __slots__ = ("_attributes", "_capture_args", "_kind", "_name", "_record_return", "_signature")

    def __init__(
        self,
        name: str,
        attributes: CleanAttributes,
        kind: SpanKind,
        record_return: bool,
        capture_args: bool,
        signature: inspect.Signature | None,
    ) -> None:
        self._name = name
        self._attributes = attributes
        self._kind = kind
        self._record_return = record_return
        self._capture_args = capture_args
        self._signature = signature

    def enter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
        attributes = self._attributes
        if self._capture_args:
            attributes = attributes.with_strings(self._arguments(args, kwargs))
        return start_span(self._name, self._kind, attributes)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, str]:
        if self._signature is None:
            return {}
        try:
            bound = self._signature.bind_partial(*args, **kwargs)
        except TypeError:
            return {}
        return {
            f"code.argument.{name}": argument_repr(name, value)
            for name, value in bound.arguments.items()
            if name not in ("self", "cls")
        }

    def resume(self, state: Span) -> object:
        return otel_context.attach(trace.set_span_in_context(state))

    def suspend(self, state: Span, token: object) -> None:
        del state
        otel_context.detach(token)  # type: ignore[arg-type]

    def success(self, state: Span, result: object) -> None:
        if self._record_return:
            state.set_attribute("code.return", short_repr(result))
        state.end()

    def failure(self, state: Span, exc: BaseException) -> object:
        record_failure(state, exc)
        state.end()
        return RERAISE


@overload
def traced(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    *,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    record_return: bool = False,
    capture_args: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    record_return: bool = False,
    capture_args: bool = False,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Trace every call of the decorated function as a span.

    Works bare (``@traced``) or with options (``@traced(name="charge")``) on plain, async,
    generator and async-generator functions; the wrapper keeps the function's name,
    signature and kind. A raised exception becomes an exception event and error status on
    the span and propagates unchanged.

    Args:
        func: the function, when used bare.
        name: span name; defaults to the function's qualified name.
        attributes: static span attributes.
        kind: span kind (INTERNAL by default; SERVER/CLIENT for request boundaries).
        record_return: add the return value's short repr as ``code.return``.
        capture_args: add each argument's short repr as ``code.argument.<name>``;
            secret-looking argument names are redacted. Off by default.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        code = code_attributes(fn)
        # Cleaned once here, so the SDK need not clean them again for every call's span.
        static = clean_attributes({**code, **attributes_of(attributes or {})})
        signature = None
        if capture_args:
            try:
                signature = inspect.signature(fn)
            except (TypeError, ValueError):
                signature = None
        hooks = _SpanHooks(
            name or code["code.function"], static, kind, record_return, capture_args, signature
        )
        return wrap(fn, hooks, f"traced({hooks._name})")  # noqa: SLF001

    if func is not None:
        return decorate(func)
    return decorate


# The spans opened by ``SpanScope`` blocks in this context, innermost first, as a linked
# list of (scope, span, context token, rest): pushing and popping the innermost is O(1).
_Open = tuple["SpanScope", Span, object, "_Open | None"]
_open_spans: ContextVar[_Open | None] = ContextVar("ttbt5_open_spans", default=None)


def _close(scope: SpanScope) -> tuple[Span, object] | None:
    """Remove the innermost span ``scope`` opened in this context; None when there is none."""
    node = _open_spans.get()
    skipped: list[_Open] = []
    while node is not None and node[0] is not scope:
        skipped.append(node)
        node = node[3]
    if node is None:
        return None
    rest = node[3]
    for scope_, span_, token_, _ in reversed(skipped):  # blocks left out of order: rare
        rest = (scope_, span_, token_, rest)
    _open_spans.set(rest)
    return node[1], node[2]


class SpanScope:
    """A span as ``with``, ``async with`` or decorator; returned by ``span()``.

    Each ``with`` block opens its own span and yields it, so attributes can be added. Used
    as a decorator, every call of the function gets its own span. One object may be entered
    by many tasks or threads at once: the open spans live in a ``ContextVar``, so each
    block ends the span it started.
    """

    __slots__ = ("_attributes", "_kind", "_name")

    def __init__(self, name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]) -> None:
        """Describe the span to open; nothing starts until entered or called."""
        self._name = name
        self._kind = kind
        # Cleaned once here, so the SDK need not clean them again for every span.
        self._attributes = clean_attributes(attributes)

    def __enter__(self) -> Span:
        """Start the span and make it current."""
        try:
            current = start_span(self._name, self._kind, self._attributes)
            token = otel_context.attach(trace.set_span_in_context(current))
        except Exception as exc:
            internal_error(f"span({self._name})", exc)
            return trace.INVALID_SPAN
        _open_spans.set((self, current, token, _open_spans.get()))
        return current

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the span; an exception is recorded and keeps propagating."""
        found = _close(self)
        if found is None:
            return
        current, token = found
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
            if exc is not None:
                record_failure(current, exc)
            current.end()
        except Exception as hook_exc:
            internal_error(f"span({self._name})", hook_exc)

    async def __aenter__(self) -> Span:
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

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func``: each call runs in a new span of this name and attributes."""
        hooks = _SpanHooks(
            self._name,
            self._attributes.with_strings(code_attributes(func), before=True),
            self._kind,
            record_return=False,
            capture_args=False,
            signature=None,
        )
        return wrap(func, hooks, f"span({self._name})")


def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> SpanScope:
    """A span named ``name`` with ``attributes``, for ``with``, ``async with`` or ``@``.

    ``with span("load-cart", cart_size=3) as s: s.set_attribute("hit", True)``
    """
    return SpanScope(name, kind, attributes_of(attributes))
