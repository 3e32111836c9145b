"""Stdlib logging → OpenTelemetry log records, and the structured logger.

One bridge handler sits on the root logger, so a record becomes exactly one OTel log record
however many of the user's own handlers also print it.

Fields follow the structlog and loguru conventions: ``log.bind(k=v)`` returns a new logger
carrying them and changes nothing else; ``with log.contextualize(k=v):`` adds them to every
record logged in the current context, by any logger. Contextualized fields live in a
``ContextVar``: they follow the asyncio task (and threads started with a copied context) and
never leak into sibling tasks.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import traceback
from collections.abc import Generator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self, final

from opentelemetry._logs import SeverityNumber

from ttbt5_otel._core.attributes import attribute_value
from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._core.otel import otel_logger

FIELDS_ATTR: Final = "ttbt5_fields"
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "ttbt5_log_context", default=_EMPTY
)
_reentry = threading.local()

_SEVERITY: Final = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
)
_STANDARD_RECORD_KEYS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
) | {"message", "asctime", "taskName", FIELDS_ATTR}
# The SDK's own loggers report export failures; bridging them would feed an outage back
# into the exporter that is failing.
_SKIP_PREFIXES: Final = ("opentelemetry", "grpc", "urllib3")


def severity_of(levelno: int) -> SeverityNumber:
    """OpenTelemetry severity number for a stdlib level."""
    for threshold, severity in _SEVERITY:
        if levelno >= threshold:
            return severity
    return SeverityNumber.TRACE


def bound_context() -> Mapping[str, Any]:
    """Fields added to the current context with ``StructuredLogger.contextualize``."""
    return _bound.get()


class OTelLogHandler(logging.Handler):
    """Turns stdlib log records into OTel log records correlated with the current span."""

    def emit(self, record: logging.LogRecord) -> None:
        """Emit ``record`` as an OTel log record; never raises into the logging call."""
        if record.name.startswith(_SKIP_PREFIXES) or getattr(_reentry, "active", False):
            return
        _reentry.active = True
        try:
            otel_logger().emit(
                timestamp=int(record.created * 1e9),
                severity_number=severity_of(record.levelno),
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes=self._attributes(record),
            )
        except Exception as exc:
            internal_error("logging bridge", exc)
        finally:
            _reentry.active = False

    @staticmethod
    def _attributes(record: logging.LogRecord) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            key: attribute_value(value) for key, value in _bound.get().items()
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS:
                attributes[key] = attribute_value(value)
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            attributes.update({k: attribute_value(v) for k, v in fields.items()})
        attributes["logger.name"] = record.name
        attributes["code.function.name"] = record.funcName
        attributes["code.file.path"] = record.pathname
        attributes["code.line.number"] = record.lineno
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            attributes["exception.type"] = type(exc).__qualname__
            attributes["exception.message"] = str(exc)
            attributes["exception.stacktrace"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            )
        return attributes


class Binding:
    """Fields added to the current context; leaving its ``with`` block restores what was before.

    Returned by ``StructuredLogger.contextualize``. Without ``with`` the fields stay for the
    rest of the current context (the request's task, say).
    """

    __slots__ = ("_token",)

    def __init__(self, token: contextvars.Token[Mapping[str, Any]]) -> None:
        """Remember how to undo the binding."""
        self._token = token

    def __enter__(self) -> Self:
        """Use the binding for the ``with`` block only."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the fields bound before."""
        _bound.reset(self._token)


@final
class Logged:
    """What a ``StructuredLogger`` logging call returns: the record is already logged.

    Awaiting it is a no-op that never suspends, so ``await log.info(...)`` (the TTBT5 guide's
    asynchronous form) and ``log.info(...)`` log the same record at the same moment, and a
    forgotten ``await`` loses nothing (it is not a coroutine, so no "never awaited" warning).
    """

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        """Complete at once: logging already happened when the call returned."""
        yield from ()

    def __repr__(self) -> str:
        """``<logged>``."""
        return "<logged>"


LOGGED: Final = Logged()


class StructuredLogger:
    """A stdlib logger whose keyword fields become log attributes.

    ``logger.info("charged", order_id=o.id, amount=12.5)`` logs "charged" with ``order_id``
    and ``amount`` as attributes of the OTel log record (and as ``record.ttbt5_fields`` for
    stdlib formatters). ``bind(**fields)`` returns a new logger adding ``fields`` to each of
    its records; ``contextualize(**fields)`` adds them to every record logged in the current
    context, by any logger. Each logging method returns ``LOGGED``, which may be awaited.
    """

    __slots__ = ("_fields", "logger")

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        """Wrap ``logger``; ``fields`` are added to every record of this instance."""
        self.logger = logger
        self._fields: Mapping[str, Any] = dict(fields or {})

    @property
    def name(self) -> str:
        """Name of the underlying stdlib logger."""
        return self.logger.name

    @property
    def fields(self) -> Mapping[str, Any]:
        """The fields this logger adds to each of its records."""
        return MappingProxyType(dict(self._fields))

    def bind(self, **fields: Any) -> Self:
        """A new logger adding ``fields`` (and this one's) to each of its records.

        ``log = log.bind(order_id=7)``; this logger and the context are left unchanged.
        """
        # type(self): a subclass (the guide's adapter) keeps its own methods when bound.
        return type(self)(self.logger, {**self._fields, **fields})

    def unbind(self, *keys: str) -> Self:
        """A new logger without the bound fields ``keys``."""
        return type(self)(self.logger, {k: v for k, v in self._fields.items() if k not in keys})

    def contextualize(self, **fields: Any) -> Binding:
        """Add ``fields`` to every record logged in the current context, by any logger.

        ``with log.contextualize(request_id=rid): ...`` scopes them to the block; they follow
        the asyncio task and tasks it starts, never its siblings.
        """
        return Binding(_bound.set({**_bound.get(), **fields}))

    def _log(
        self, level: int, msg: str, args: tuple[Any, ...], fields: dict[str, Any], exc: bool
    ) -> None:
        if not self.logger.isEnabledFor(level):
            return
        merged = {**self._fields, **fields} if self._fields else fields
        self.logger.log(
            level, msg, *args, extra={FIELDS_ATTR: merged}, exc_info=exc or None, stacklevel=3
        )

    def debug(self, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at DEBUG with ``fields`` as attributes."""
        self._log(logging.DEBUG, msg, args, fields, exc=False)
        return LOGGED

    def info(self, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at INFO with ``fields`` as attributes."""
        self._log(logging.INFO, msg, args, fields, exc=False)
        return LOGGED

    def warning(self, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at WARNING with ``fields`` as attributes."""
        self._log(logging.WARNING, msg, args, fields, exc=False)
        return LOGGED

    def error(self, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at ERROR with ``fields`` as attributes."""
        self._log(logging.ERROR, msg, args, fields, exc=False)
        return LOGGED

    def exception(self, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at ERROR with the exception being handled and ``fields`` as attributes."""
        self._log(logging.ERROR, msg, args, fields, exc=True)
        return LOGGED

    def critical(self, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at CRITICAL with ``fields`` as attributes."""
        self._log(logging.CRITICAL, msg, args, fields, exc=False)
        return LOGGED

    def log(self, level: int, msg: str, *args: Any, **fields: Any) -> Logged:
        """Log at ``level`` with ``fields`` as attributes."""
        self._log(level, msg, args, fields, exc=False)
        return LOGGED


def get_logger(name: str) -> StructuredLogger:
    """A ``StructuredLogger`` over ``logging.getLogger(name)``."""
    return StructuredLogger(logging.getLogger(name))
