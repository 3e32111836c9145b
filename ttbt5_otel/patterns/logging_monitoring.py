"""The guide's ``logging_monitoring`` names, as thin adapters over the native OpenTelemetry core.

============================  ==============================================================
guide                         native (what it does in OpenTelemetry terms)
============================  ==============================================================
``StructuredLogger(name)``    ``ttbt5_otel.get_logger(name)`` (a subclass): records leave as
                              OTel log records with the trace/span ids and fields as
                              attributes; ``set_context`` is an in-place ``bind``
``await logger.info(...)``    the same call: logging methods return an already-done awaitable
``LogLevel``                  the stdlib levels; ``set_min_level`` sets the stdlib level
``MonitoringSystem``          the application context's health checks (``ttbt5.health.status``
                              gauge, ``/readyz``) plus ``init()`` when nothing called it
``monitor_performance()``     ``ttbt5_otel.monitor_performance`` itself
                              (``ttbt5.operation.duration`` histogram)
``log_calls()``               ``ttbt5_otel.log_calls`` logging at INFO (see ``log_calls``)
============================  ==============================================================

What has no in-process counterpart, by design:

* **Metrics collection and retention** (the guide's ``metrics_retention_hours``): metrics are
  OpenTelemetry instruments (``monitor_performance``, ``counter``, ``histogram``, ``gauge``,
  runtime metrics) exported over OTLP to the collector, which exposes them to Prometheus;
  history and its retention are Prometheus' (``--storage.tsdb.retention.time``). Nothing is
  kept in the process to query.
* **Alert management**: the guide's thresholds are Prometheus rules shipped in
  ``dashboards/prometheus/rules/ttbt5-alerts.yml`` (``Ttbt5HighErrorRatio``,
  ``Ttbt5HighMemoryUsage``, ``Ttbt5LowCacheHitRatio``, ``Ttbt5HighLatency``,
  ``Ttbt5HealthCheckFailing`` on ``ttbt5_health_status == 0``), routed by Alertmanager
  (``dashboards/alertmanager/alertmanager.yml``). Alert handlers are Alertmanager receivers.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, ParamSpec, TypeVar, overload

from ttbt5_otel._app.context import ApplicationContext, _options_of, get_application_context
from ttbt5_otel._app.health import HealthCheck, HealthResult
from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._sdk.setup import Telemetry, current_telemetry, init
from ttbt5_otel._signals.log_bridge import add_console_handler, installed_bridge
from ttbt5_otel._signals.log_calls import log_calls as native_log_calls
from ttbt5_otel._signals.logger import StructuredLogger as NativeStructuredLogger
from ttbt5_otel._signals.metrics import monitor_performance

__all__ = ["LogLevel", "MonitoringSystem", "StructuredLogger", "log_calls", "monitor_performance"]

P = ParamSpec("P")
R = TypeVar("R")

_EXPORT_FLOOR: Final = (
    "set_min_level(%s) on logger %r: its records reach its handlers, but OpenTelemetry export "
    "starts at init()'s log_level, and init() has not installed the logging bridge yet; "
    "set LOG_LEVEL / TTBT5_LOG_LEVEL (or init(log_level=...)) to export them too"
)


class LogLevel(enum.IntEnum):
    """The guide's log levels; the values are the stdlib's, so either can be passed anywhere."""

    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = logging.CRITICAL


def _levelno(level: LogLevel | int | str) -> int:
    if isinstance(level, int):
        return int(level)
    try:
        return int(LogLevel[level.upper()])
    except KeyError:
        names = ", ".join(LogLevel.__members__)
        raise ValueError(f"unknown log level {level!r}; use one of {names}") from None


class StructuredLogger(NativeStructuredLogger):
    """The guide's logger: ``StructuredLogger("my_service")`` is ``get_logger("my_service")``.

    Every logging method logs at once and returns an already-completed awaitable, so both
    ``logger.info("done", operation="x")`` and ``await logger.info(...)`` work and produce the
    same OTel log record (body, severity, trace and span ids, fields as attributes).
    ``set_context(**fields)`` adds fields to every later record of this logger, in place (the
    native ``bind`` returns a new logger instead; both are available here).
    """

    __slots__ = ()

    def __init__(self, name: str | logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        """A logger over ``logging.getLogger(name)`` (or the given stdlib logger)."""
        super().__init__(logging.getLogger(name) if isinstance(name, str) else name, fields)

    def set_context(self, **fields: Any) -> None:
        """Add ``fields`` to every later record of this logger (and loggers bound from it)."""
        # A new mapping, not an update: loggers bound earlier keep the fields they had.
        self._fields = {**self._fields, **fields}

    def clear_context(self) -> None:
        """Forget the fields added with ``set_context``."""
        self._fields = {}

    def set_min_level(self, level: LogLevel | int | str) -> None:
        """Make this logger emit records at ``level`` and above (the guide's debug mode).

        Sets the stdlib logger's level. When that is below the level the OpenTelemetry bridge
        exports from (``log_level``, default INFO), the running bridge is lowered to it, so
        the records are exported too; other loggers still stop at their own levels. Before
        ``init()`` there is no bridge to lower: a warning says to set ``LOG_LEVEL``.
        """
        levelno = _levelno(level)
        self.logger.setLevel(levelno)
        bridge = installed_bridge()
        if bridge is None:
            if levelno < logging.INFO:
                warn_once(f"set_min_level:{self.name}", _EXPORT_FLOOR, level, self.name)
        elif bridge.level > levelno:
            bridge.level = levelno


class MonitoringSystem:
    """The guide's monitoring facade over the application context and ``init()``.

    Health checks are the application context's (``get_application_context()``): each result
    is the ``ttbt5.health.status`` gauge (1 healthy, 0 not, attribute ``health.check``) and
    the ``/readyz`` endpoint, and the ``Ttbt5HealthCheckFailing`` rule alerts on it. Metrics
    and alerts are not kept in the process: see this module's docstring.
    """

    def __init__(
        self, name: str = "monitoring", *, context: ApplicationContext | None = None
    ) -> None:
        """A facade whose ``logger`` is ``StructuredLogger(name)``.

        ``context`` defaults to the process's application context, looked up at each use so a
        context replaced in tests is followed.
        """
        self.logger = StructuredLogger(name)
        self._context = context
        self._telemetry: Telemetry | None = None

    @property
    def context(self) -> ApplicationContext:
        """The application context whose health checks this facade manages."""
        return self._context if self._context is not None else get_application_context()

    def setup_default_handlers(self) -> logging.Handler | None:
        """Add the console log handler the lifecycle adds, unless the app configured logging.

        Format and level come from the settings (``LOG_FORMAT``: text or json, ``LOG_LEVEL``).
        Records need no handler to leave the process: ``init()`` exports every record as an
        OTel log record, and writes the guide's ``LOG_FILE`` (setting ``log_file``) when set.
        The guide's alert handlers are Alertmanager receivers. Call it before
        ``start_monitoring()``, as the guide does. Returns the handler added, or ``None`` when
        the app already had its own.
        """
        settings = self.context.settings
        return add_console_handler(settings.logging.format, settings.telemetry.log_level)

    def add_health_check(
        self, name: str, check: HealthCheck, *, timeout: float | None = None, critical: bool = True
    ) -> None:
        """Register a sync or async check returning truthy/``None`` (healthy) or falsy/raising.

        Same as ``get_application_context().add_health_check``: the check runs in a worker
        thread (sync) or on the loop (async) with a timeout, on every monitoring interval.
        """
        self.context.add_health_check(name, check, timeout=timeout, critical=critical)

    async def check_health(self) -> dict[str, HealthResult]:
        """Run every check now and return the results (the gauge reports them too)."""
        return await self.context.health.run_once()

    @property
    def is_monitoring(self) -> bool:
        """True while the periodic health checks are scheduled."""
        return self.context.health.running

    async def start_monitoring(self, interval_seconds: float | None = None) -> None:
        """Set up telemetry if nothing has, run the checks once, then every interval.

        Returns after the first run; later runs happen in a background task until
        ``stop_monitoring()`` or ``shutdown()`` (or the application context's shutdown).
        ``interval_seconds`` defaults to the ``MONITORING_INTERVAL`` setting (60). Telemetry is
        ``init()`` with the context's settings unless ``init()`` is already in force. Calling
        it while monitoring is running changes nothing.
        """
        health = self.context.health
        interval = self.context.settings.monitoring.interval
        if interval_seconds is not None:
            if not interval_seconds > 0:
                raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
            interval = float(interval_seconds)
        active = current_telemetry()
        if active is None or active.is_shut_down:
            self._telemetry = init(**_options_of(self.context.settings))
        if health.running:
            return
        await health.run_once()
        health.start(interval, delay=interval)

    async def stop_monitoring(self) -> None:
        """Stop the periodic health checks (their last results stay on the gauge)."""
        await self.context.health.stop()

    async def shutdown(self) -> None:
        """Stop monitoring; flush and close telemetry if ``start_monitoring`` set it up."""
        await self.stop_monitoring()
        telemetry, self._telemetry = self._telemetry, None
        if telemetry is not None:
            telemetry.shutdown()


@overload
def log_calls(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def log_calls(
    *,
    level: int = logging.INFO,
    logger: logging.Logger | NativeStructuredLogger | str | None = None,
    log_args: bool = False,
    log_result: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def log_calls(
    func: Callable[P, R] | None = None,
    /,
    *,
    level: int = logging.INFO,
    logger: logging.Logger | NativeStructuredLogger | str | None = None,
    log_args: bool = False,
    log_result: bool = False,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """``ttbt5_otel.log_calls`` at INFO by default, bare or called (``@log_calls()``).

    The native default is DEBUG, which the default ``LOG_LEVEL`` (INFO) neither shows nor
    exports; the guide's decorator is meant to be seen, so here it logs at INFO. Records are
    the native ones ("calling f" / "f returned after N ms" with ``duration_ms``, correlated
    with the current span). ``logger`` may also be a ``StructuredLogger``.
    """
    target = logger.logger if isinstance(logger, NativeStructuredLogger) else logger
    decorate: Callable[[Callable[P, R]], Callable[P, R]] = native_log_calls(
        level=level, logger=target, log_args=log_args, log_result=log_result
    )
    return decorate if func is None else decorate(func)
