"""``init()``: one call that configures traces, metrics and logs for the process."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Unpack

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.types import Attributes

from ttbt5_otel._core import guard as _guard
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._core.limits import set_cardinality_limit
from ttbt5_otel._core.otel import bump_generation, meter
from ttbt5_otel._core.scrub import configure_scrubber
from ttbt5_otel._sdk import exporters as _exporters
from ttbt5_otel._sdk.accounting import CountingMetricExporter, Ledger
from ttbt5_otel._sdk.config import TelemetryConfig, TelemetryOptions, resolve_config
from ttbt5_otel._sdk.config_file import file_telemetry
from ttbt5_otel._sdk.instrumentors import Instrumentation, Instrumentors, prefer_stable_http_semconv
from ttbt5_otel._sdk.providers import (
    Providers,
    build_providers,
    new_instance_id,
    periodic_reader,
)
from ttbt5_otel._sdk.quiet import quiet_sdk_warnings
from ttbt5_otel._sdk.runtime import register_runtime_metrics
from ttbt5_otel._sdk.scrubbing import ScrubbingSpanExporter
from ttbt5_otel._sdk.spool import Spool, SpoolingLogExporter, SpoolingSpanExporter, otlp_sender
from ttbt5_otel._sdk.spool_files import SpoolDirectory
from ttbt5_otel._sdk.workers import flush_this_worker_at_exit, flush_workers_at_exit
from ttbt5_otel._signals.log_bridge import LogBridge, install_bridge, remove_bridge

_LOG = own_logger("ttbt5_otel")


@dataclass(eq=False)
class Telemetry:
    """Handle returned by ``init()``: the configuration in force and the providers it set up."""

    config: TelemetryConfig
    providers: Providers | None
    """``None`` when another component had already installed OpenTelemetry providers."""
    _span_exporter: ScrubbingSpanExporter | None = None
    _metric_exporter: _exporters.SwappableMetricExporter | None = None
    _log_exporter: _exporters.SwappableLogExporter | None = None
    _log_bridge: LogBridge | None = None
    _spool: Spool | None = None
    _instrumentors: Instrumentors = field(default_factory=Instrumentors)
    _closed: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def resource(self) -> Resource | None:
        """The resource all three signals carry (``None`` when attached to foreign providers)."""
        return None if self.providers is None else self.providers.resource

    @property
    def instrumentations(self) -> tuple[Instrumentation, ...]:
        """Each installed OpenTelemetry instrumentation: instrumented, or skipped and why."""
        return self._instrumentors.results

    @property
    def is_shut_down(self) -> bool:
        """True after ``shutdown()``."""
        return self._closed

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything buffered; True when every signal flushed within ``timeout`` s.

        Returns within ``timeout`` (default ``shutdown_timeout``) whatever the collector does.
        """
        budget = self._budget(timeout)
        return _within(budget, "flush", lambda: self._flush(_installed_providers(self), budget))

    def _budget(self, timeout: float | None) -> float:
        return self.config.shutdown_timeout if timeout is None else timeout

    def _flush(
        self,
        providers: Sequence[TracerProvider | MeterProvider | LoggerProvider],
        budget: float,
    ) -> bool:
        deadline = time.monotonic() + budget
        ok = True
        for provider in providers:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                ok = bool(provider.force_flush(remaining_ms)) and ok
            except Exception as exc:
                _guard.internal_error("force_flush", exc)
                ok = False
        return ok

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush and close traces, metrics and logs. Safe to call more than once.

        Returns within ``timeout`` (default ``shutdown_timeout``) seconds whatever the
        collector does: the SDK's exporters do not always honour their deadline against a
        dead or frozen endpoint, so the work runs on a helper thread that is abandoned at
        the deadline, and what was still queued is reported in one log line.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        remove_bridge(self._log_bridge)
        self._instrumentors.deactivate()
        budget = self._budget(timeout)
        if not _within(budget, "shutdown", lambda: self._close(budget)):
            _LOG.warning(
                "telemetry shutdown gave up after %.1f s; dropped %s",
                budget,
                _describe_abandoned(self),
            )

    def _close(self, budget: float) -> bool:
        # Spans and logs are flushed under the time budget first, so the provider shutdowns
        # below find empty queues; metrics are exported once, by the meter provider shutdown.
        started = time.monotonic()
        spans_and_logs = [p for p in _installed_providers(self) if not isinstance(p, MeterProvider)]
        self._flush(spans_and_logs, budget)
        if self.providers is None:
            return True
        for provider in (
            self.providers.tracer_provider,
            self.providers.logger_provider,
        ):
            try:
                provider.shutdown()
            except Exception as exc:
                _guard.internal_error("shutdown", exc)
        remaining = budget - (time.monotonic() - started)
        try:
            self.providers.meter_provider.shutdown(timeout_millis=max(0.0, remaining) * 1000)
        except Exception as exc:
            if remaining > 0:
                _guard.internal_error("shutdown", exc)
            # Past the budget the caller has already given up and said what was dropped;
            # the SDK's "deadline already exceeded" is that same outcome, not a bug.
            return False
        return True

    def _renew_after_fork(self) -> None:
        """In a forked child: new instance id and pid, fresh exporter channels."""
        if self.providers is not None:
            changes: dict[str, str | int] = {
                "service.instance.id": new_instance_id(),
                "process.pid": os.getpid(),
            }
            _rewrite_resource(self.providers.resource, changes)
            # Each SDK provider replaces its resource with a merged copy in its own at-fork
            # hook, which runs before this one; give those copies the child's identity too.
            for provider in _installed_providers(self):
                update = getattr(provider, "_update_resource", None)
                if update is not None:
                    update(Resource(changes))
        if self.config.exporter != "otlp":
            return
        otlp_spans, metric_exporter, otlp_logs = _exporters.otlp_exporters(self.config)
        spans, logs = _spooled(self._spool, otlp_spans, otlp_logs)
        if self._span_exporter is not None and spans is not None:
            self._span_exporter.inner = spans
        if self._metric_exporter is not None:
            self._metric_exporter.inner = metric_exporter
        if self._log_exporter is not None and logs is not None:
            self._log_exporter.inner = logs


def _within(budget: float, what: str, work: Callable[[], bool]) -> bool:
    """``work()`` on a helper thread; False if it did not finish within ``budget`` seconds."""
    outcome: list[bool] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # never let an export failure escape the helper thread
            _guard.internal_error(what, exc)
            outcome.append(False)

    helper = threading.Thread(target=run, name=f"ttbt5-{what}", daemon=True)
    helper.start()
    helper.join(budget)
    return bool(outcome) and outcome[0]


def _describe_abandoned(telemetry: Telemetry) -> str:
    """Count what the expired budget cost, in the ledger and in words."""
    if telemetry.providers is None:
        return "whatever the installed providers still held"
    spans, logs = telemetry.providers.ledger.abandon()
    return f"{spans} spans and {logs} log records still queued or in flight"


def _installed_providers(
    telemetry: Telemetry,
) -> list[TracerProvider | MeterProvider | LoggerProvider]:
    if telemetry.providers is not None:
        p = telemetry.providers
        return [p.tracer_provider, p.meter_provider, p.logger_provider]
    candidates = (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    )
    return [p for p in candidates if isinstance(p, TracerProvider | MeterProvider | LoggerProvider)]


def _rewrite_resource(resource: Resource, changes: Attributes) -> None:
    # Providers, tracers and meters all hold this one Resource object; rewriting it in place is
    # the only way to give a forked child its own identity without rebuilding the pipeline.
    from opentelemetry.attributes import BoundedAttributes  # noqa: PLC0415

    merged = {**dict(resource.attributes), **dict(changes or {})}
    resource._attributes = BoundedAttributes(attributes=merged, immutable=True)  # noqa: SLF001


_INIT_TWICE = "ttbt5_otel.init() was already called; options of later calls are ignored"
_current: Telemetry | None = None
_init_lock = threading.RLock()
_fork_hook_registered = False
# True under ``opentelemetry-instrument``: the agent activates the instrumentors itself.
_agent_instruments = False


def _ours_shut_down(previous: Telemetry | None) -> bool:
    """True when the installed global providers are those of an earlier, shut-down init()."""
    return (
        previous is not None
        and previous.is_shut_down
        and previous.providers is not None
        and trace.get_tracer_provider() is previous.providers.tracer_provider
    )


def _foreign_providers_installed() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _exporters_for(
    config: TelemetryConfig,
) -> tuple[SpanExporter | None, MetricExporter | None, LogRecordExporter | None]:
    if config.exporter == "otlp":
        return _exporters.otlp_exporters(config)
    if config.exporter == "console":
        return (
            _exporters.ConsoleSpanExporter(),
            _exporters.ConsoleMetricExporter(),
            _exporters.ConsoleLogExporter(),
        )
    return None, None, None


def _spool_for(config: TelemetryConfig, ledger: Ledger) -> Spool | None:
    if config.spool_dir is None or config.exporter != "otlp":
        return None
    directory = SpoolDirectory(config.spool_dir, int(config.spool_max_mb * 1024 * 1024))
    return Spool(
        directory,
        otlp_sender(config),
        {"traces": ledger.spans, "logs": ledger.logs},
        drain_timeout=config.shutdown_timeout,
    )


def _spooled(
    spool: Spool | None, spans: SpanExporter | None, logs: LogRecordExporter | None
) -> tuple[SpanExporter | None, LogRecordExporter | None]:
    if spool is None:
        return spans, logs
    return (
        SpoolingSpanExporter(spans, spool) if spans else None,
        SpoolingLogExporter(logs, spool) if logs else None,
    )


def _build(config: TelemetryConfig) -> Telemetry:
    ledger = Ledger()
    spool = _spool_for(config, ledger)
    spans, metric_exporter, logs = _exporters_for(config)
    spans, logs = _spooled(spool, spans, logs)
    swappable_metrics = (
        _exporters.SwappableMetricExporter(metric_exporter) if metric_exporter else None
    )
    swappable_logs = _exporters.SwappableLogExporter(logs) if logs else None
    readers = (
        [periodic_reader(config, CountingMetricExporter(swappable_metrics, ledger.metric_points))]
        if swappable_metrics
        else []
    )
    providers = build_providers(
        config,
        span_exporter=spans,
        metric_readers=readers,
        log_exporter=swappable_logs,
        # People watching a console want each span printed as it ends, not in batches.
        synchronous=config.exporter == "console",
        ledger=ledger,
    )
    return Telemetry(
        config=config,
        providers=providers,
        _span_exporter=providers.span_exporter,
        _metric_exporter=swappable_metrics,
        _log_exporter=swappable_logs,
        _spool=spool,
    )


def _install_globals(providers: Providers) -> None:
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    _logs.set_logger_provider(providers.logger_provider)
    bump_generation()


def _start_extras(telemetry: Telemetry) -> None:
    config = telemetry.config
    quiet_sdk_warnings()
    if config.logging_bridge:
        telemetry._log_bridge = install_bridge(  # noqa: SLF001
            config.log_level,
            config.log_file,
            log_file_max_bytes=int(config.log_file_max_mb * 1024 * 1024),
            log_file_backups=config.log_file_backups,
        )
    if config.runtime_metrics and telemetry.providers is not None:
        register_runtime_metrics(meter())
    if not _agent_instruments:
        prefer_stable_http_semconv()
        telemetry._instrumentors.activate(  # noqa: SLF001
            config.instrument, asyncio=config.instrument_asyncio
        )


def _after_fork_in_child() -> None:
    _guard.reset_reported()
    telemetry = _current
    if telemetry is not None and not telemetry.is_shut_down:
        try:
            telemetry._renew_after_fork()  # noqa: SLF001
        except Exception as exc:
            _guard.internal_error("after fork", exc)


def _at_exit() -> None:
    telemetry = _current
    if telemetry is not None:
        telemetry.shutdown()


def init(**options: Unpack[TelemetryOptions]) -> Telemetry:
    """Configure OpenTelemetry traces, metrics and logs for this process and return a handle.

    Keyword options are the fields of ``TelemetryConfig`` (``service_name``, ``endpoint``,
    ``protocol``, ``exporter``, ``sample_ratio``, ...), typed by ``TelemetryOptions``: a
    misspelt name is a type error, and a ``ConfigError`` naming it at run time. An explicit
    option beats its ``TTBT5_*`` variable, which beats the standard ``OTEL_*`` variable,
    which beats the ``telemetry`` section of the file named by ``TTBT5_CONFIG_FILE``, which
    beats the default. Invalid values raise ``ConfigError`` naming the option and its source.

    Idempotent: a second call returns the first handle and installs nothing twice. When
    OpenTelemetry providers were already installed by someone else (an auto-instrumentation
    agent, a test fixture), they are reused and only the logging bridge and instrumentation
    are added. Telemetry is flushed at interpreter exit within ``shutdown_timeout`` seconds.
    """
    global _current, _fork_hook_registered  # noqa: PLW0603 - one telemetry setup per process
    with _init_lock:
        if _current is not None and not _current.is_shut_down:
            if options:
                _guard.warn_once("init-twice", _INIT_TWICE)
            return _current
        file_values, file_source = file_telemetry(os.environ)
        config = resolve_config(dict(options), os.environ, file_values, file_source)
        configure_scrubber(
            config.scrub_patterns,
            config.scrub_allow,
            values=config.scrub_values,
            callback=config.scrub_callback,
        )
        set_cardinality_limit(config.metric_cardinality_limit)
        if _foreign_providers_installed():
            telemetry = Telemetry(config=config, providers=None)
            if _ours_shut_down(_current):
                # OpenTelemetry lets a process set its global providers once: the shut-down
                # ones stay, and nothing recorded from now on is exported. Say so plainly.
                _LOG.error(
                    "ttbt5_otel.init() after shutdown(): OpenTelemetry's global providers can "
                    "be set only once per process, so telemetry from now on is not exported; "
                    "shut down only at process exit"
                )
            else:
                _LOG.info("OpenTelemetry providers already installed; ttbt5_otel reuses them")
        else:
            telemetry = _build(config)
            assert telemetry.providers is not None
            _install_globals(telemetry.providers)
        _start_extras(telemetry)
        _current = telemetry
        flush_workers_at_exit(telemetry, telemetry.shutdown)
        flush_this_worker_at_exit(telemetry.shutdown)
        if not _fork_hook_registered:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            atexit.register(_at_exit)
            _fork_hook_registered = True
        return telemetry


def init_for_agent() -> Telemetry:
    """``init()`` from the environment for ``opentelemetry-instrument``, which instruments."""
    global _agent_instruments  # noqa: PLW0603 - set once, before the agent's instrumentors load
    _agent_instruments = True
    return init()


def current_telemetry() -> Telemetry | None:
    """The handle of the active ``init()``, if any."""
    return _current


def shutdown(timeout: float | None = None) -> None:
    """Flush and close the telemetry set up by ``init()``; a no-op without it."""
    if _current is not None:
        _current.shutdown(timeout)


def force_flush(timeout: float | None = None) -> bool:
    """Export everything buffered by the telemetry set up by ``init()``."""
    return True if _current is None else _current.force_flush(timeout)
