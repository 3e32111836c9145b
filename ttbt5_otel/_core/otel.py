"""The package's tracer, meter and logger, resolved lazily and cached per provider generation.

OpenTelemetry hands out proxy objects until a provider is installed. Caching those would add
an indirection to every call; re-creating them on every call would grow the proxy's
bookkeeping without bound. So objects are cached together with the provider *generation*,
which ``init()`` and the test plugin bump after installing providers.

The decorators' spans start through ``start_span``, which on an SDK tracer takes the lean
path of ``lean_spans`` (chosen once per generation too).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Generic, TypeAlias, TypeVar

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import Logger
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._version import __version__

SCOPE = "ttbt5_otel"
_T = TypeVar("_T")


class _State:
    generation = 0


def bump_generation() -> None:
    """Invalidate every cached tracer, meter and instrument (providers changed)."""
    _State.generation += 1


def current_generation() -> int:
    """The provider generation cached objects are compared against."""
    return _State.generation


class Lazy(Generic[_T]):
    """A value built from the current providers, rebuilt when they change."""

    __slots__ = ("_factory", "_generation", "_value")

    def __init__(self, factory: Callable[[], _T]) -> None:
        """Build with ``factory`` on first use and after every provider change."""
        self._factory = factory
        self._value: _T | None = None
        self._generation = -1

    def get(self) -> _T:
        """The cached value, rebuilt if the providers changed since it was built."""
        if self._generation != _State.generation or self._value is None:
            self._value = self._factory()
            self._generation = _State.generation
        return self._value


_tracer: Lazy[Tracer] = Lazy(lambda: trace.get_tracer(SCOPE, __version__))
_meter: Lazy[Meter] = Lazy(lambda: metrics.get_meter(SCOPE, __version__))
_logger: Lazy[Logger] = Lazy(lambda: _logs.get_logger(SCOPE, __version__))


def tracer() -> Tracer:
    """This package's tracer."""
    return _tracer.get()


StartSpan: TypeAlias = Callable[[str, SpanKind, Mapping[str, AttributeValue]], Span]


def _lean_start(current: Tracer) -> StartSpan | None:
    # ``import ttbt5_otel`` does not load the SDK, and the lean path imports it: an SDK
    # tracer means it is loaded already, so only then is that path looked at.
    if "opentelemetry.sdk.trace" not in sys.modules:
        return None
    try:
        from ttbt5_otel._core.lean_spans import lean_starter  # noqa: PLC0415
    except (ImportError, AttributeError):  # an SDK release without what it mirrors
        return None
    starter = lean_starter(current)
    return None if starter is None else starter.start


def _span_starter() -> StartSpan:
    current = tracer()
    lean = _lean_start(current)
    if lean is not None:
        return lean

    def start(name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]) -> Span:
        return current.start_span(name, kind=kind, attributes=attributes)

    return start


_starter: Lazy[StartSpan] = Lazy(_span_starter)


def start_span(name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]) -> Span:
    """A span of this package's tracer, not yet current.

    Pass attributes from ``clean_attributes`` (cleaned when a decorator is applied) for the
    lean path of ``lean_spans``; any other mapping gets the tracer's ``start_span``.
    """
    return _starter.get()(name, kind, attributes)


def meter() -> Meter:
    """This package's meter."""
    return _meter.get()


def otel_logger() -> Logger:
    """This package's OpenTelemetry logger (log records, not stdlib logging)."""
    return _logger.get()
