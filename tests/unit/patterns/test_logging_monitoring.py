"""The guide's ``logging_monitoring`` names produce the native API's spans, metrics and logs."""

import asyncio
import inspect
import logging
import warnings

import pytest
from opentelemetry._logs import SeverityNumber

import ttbt5_otel
from ttbt5_otel import get_logger, load_settings, span
from ttbt5_otel._sdk import setup as _setup
from ttbt5_otel._signals.log_bridge import installed_bridge
from ttbt5_otel._signals.logger import LOGGED
from ttbt5_otel.patterns import logging_monitoring as lm
from ttbt5_otel.patterns.logging_monitoring import (
    LogLevel,
    MonitoringSystem,
    StructuredLogger,
    log_calls,
    monitor_performance,
)
from ttbt5_otel.testing import reset_application_context

HEALTH = "ttbt5.health.status"
DURATION = "ttbt5.operation.duration"
# Attributes that name the calling line; they differ between two calls by construction.
_WHERE = {"code.line.number", "code.function.name"}


def _records(capture, logger_name):
    """Records of one logger (an async test's loop logs at DEBUG on "asyncio" first)."""
    return [r for r in capture.logs if r.log_record.attributes["logger.name"] == logger_name]


def _comparable(record):
    otel = record.log_record
    attributes = {k: v for k, v in otel.attributes.items() if k not in _WHERE}
    return (otel.body, otel.severity_number, otel.trace_id, otel.span_id, attributes)


@pytest.fixture
def context(capture_telemetry):
    ctx = reset_application_context(load_settings(environ={}, telemetry={"runtime_metrics": False}))
    yield ctx
    if ctx.health.running:
        asyncio.run(ctx.health.stop())
    _setup._current = None
    reset_application_context()


@pytest.fixture
def restore_levels():
    """set_min_level changes process-wide logger and bridge levels: put them back."""
    bridge = installed_bridge()
    before = bridge.level if bridge else None
    touched: list[str] = []
    yield touched
    for name in touched:
        logging.getLogger(name).setLevel(logging.NOTSET)
    if bridge is not None:
        bridge.level = before


# -- StructuredLogger ----------------------------------------------------------------------


async def test_awaited_and_plain_calls_log_the_native_record(capture_telemetry):
    """``await logger.info`` and ``logger.info`` log what native ``bind`` + ``info`` logs."""
    guide = StructuredLogger("guide.service")
    guide.set_context(user_id="123", session_id="abc")
    native = get_logger("guide.service").bind(user_id="123", session_id="abc")
    with span("request") as current:
        await guide.info("Operation completed", operation="data_processing")
        guide.info("Operation completed", operation="data_processing")
        native.info("Operation completed", operation="data_processing")
    awaited, plain, reference = _records(capture_telemetry, "guide.service")
    assert _comparable(awaited) == _comparable(plain) == _comparable(reference)
    otel = awaited.log_record
    assert otel.body == "Operation completed"
    assert otel.severity_number is SeverityNumber.INFO
    assert otel.trace_id == current.get_span_context().trace_id
    assert otel.span_id == current.get_span_context().span_id
    assert otel.attributes["user_id"] == "123"
    # A session id is a credential by name: redacted unless listed in TTBT5_SCRUB_ALLOW.
    assert otel.attributes["session_id"] == "[REDACTED]"
    assert otel.attributes["operation"] == "data_processing"
    assert otel.attributes["logger.name"] == "guide.service"
    # The caller's line, not the adapter's, as with the native logger.
    assert (
        otel.attributes["code.function.name"]
        == "test_awaited_and_plain_calls_log_the_native_record"
    )


async def test_logging_calls_return_a_done_awaitable_that_never_suspends(capture_telemetry):
    """Nothing waits on ``await``; an un-awaited call warns about nothing and loses nothing."""
    log = StructuredLogger("guide.awaitable")
    for method in (log.debug, log.info, log.warning, log.error, log.critical):
        result = method("x")
        assert result is LOGGED
        assert inspect.isawaitable(result)
        step = result.__await__()
        with pytest.raises(StopIteration):
            next(step)
    assert get_logger("guide.native").info("native too") is LOGGED
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log.log(logging.INFO, "not awaited")
    assert "not awaited" in capture_telemetry.log_bodies()
    try:
        raise ValueError("boom")
    except ValueError:
        await log.exception("failed", step="parse")
    record = capture_telemetry.logs[-1].log_record
    assert record.attributes["exception.type"] == "ValueError"
    assert record.attributes["step"] == "parse"


def test_set_context_is_in_place_and_bind_keeps_the_guide_type(capture_telemetry):
    log = StructuredLogger("guide.context")
    bound_before = log.bind(request="r1")
    log.set_context(user_id="u1")
    log.set_context(session_id="s1")
    bound_after = log.bind(request="r2")
    assert isinstance(bound_after, StructuredLogger)
    assert isinstance(log, ttbt5_otel.StructuredLogger)
    assert dict(log.fields) == {"user_id": "u1", "session_id": "s1"}
    assert dict(bound_before.fields) == {"request": "r1"}
    assert dict(bound_after.fields) == {"user_id": "u1", "session_id": "s1", "request": "r2"}
    log.clear_context()
    log.info("plain")
    assert "user_id" not in capture_telemetry.logs[-1].log_record.attributes
    assert StructuredLogger(logging.getLogger("guide.context")).logger is log.logger


def test_log_level_values_are_the_stdlib_levels():
    assert [int(level) for level in LogLevel] == [10, 20, 30, 40, 50]
    assert LogLevel.DEBUG == logging.DEBUG


def test_set_min_level_debug_exports_this_loggers_debug_records(capture_telemetry, restore_levels):
    """The guide's debug mode: DEBUG records of that logger leave, other loggers' do not."""
    bridge = installed_bridge()
    bridge.level = logging.INFO  # as init() sets it at the default LOG_LEVEL
    log = StructuredLogger("guide.debugmode")
    other = logging.getLogger("guide.other")
    restore_levels.extend(["guide.debugmode", "guide.other"])
    other.setLevel(logging.INFO)
    log.debug("hidden")
    log.set_min_level(LogLevel.DEBUG)
    assert bridge.level == logging.DEBUG
    assert log.logger.level == logging.DEBUG
    log.debug("shown", step=1)
    other.debug("not this one")
    assert capture_telemetry.log_bodies() == ["shown"]
    [record] = capture_telemetry.logs
    assert record.log_record.severity_number is SeverityNumber.DEBUG
    log.set_min_level("warning")
    log.info("dropped")
    assert bridge.level == logging.DEBUG  # raising one logger's level leaves the export floor
    assert capture_telemetry.log_bodies() == ["shown"]


def test_set_min_level_rejects_unknown_names(restore_levels):
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        StructuredLogger("guide.bad").set_min_level("loud")


def test_set_min_level_before_init_says_how_to_export(
    capture_telemetry, restore_levels, monkeypatch
):
    """Without a bridge there is nothing to lower: a warning names LOG_LEVEL, once."""
    monkeypatch.setattr(lm, "installed_bridge", lambda: None)
    restore_levels.append("guide.early")
    log = StructuredLogger("guide.early")
    log.set_min_level(LogLevel.DEBUG)
    log.set_min_level(LogLevel.DEBUG)
    warned = [b for b in capture_telemetry.log_bodies() if "guide.early" in b]
    assert len(warned) == 1
    assert "LOG_LEVEL" in warned[0]
    assert log.logger.level == logging.DEBUG


# -- decorators ----------------------------------------------------------------------------


async def test_monitor_performance_called_form_is_the_native_histogram(capture_telemetry):
    assert monitor_performance is ttbt5_otel.monitor_performance

    @monitor_performance()
    async def important_operation() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert inspect.iscoroutinefunction(important_operation)
    assert await important_operation() == "done"
    [point] = capture_telemetry.points(
        DURATION, {"code.function": important_operation.__qualname__}
    )
    assert point.count == 1
    assert point.sum >= 0.005
    assert point.attributes["outcome"] == "success"


async def test_log_calls_called_form_logs_at_info_like_native_at_info(capture_telemetry):
    """The guide's ``@log_calls()`` is the native decorator at INFO (native default: DEBUG)."""

    @monitor_performance()
    @log_calls()
    async def important_operation() -> None:
        await asyncio.sleep(0)

    @ttbt5_otel.log_calls(level=logging.INFO)
    async def native_operation() -> None:
        await asyncio.sleep(0)

    assert inspect.iscoroutinefunction(important_operation)
    with span("job"):
        await important_operation()
    await native_operation()
    entry, exit_, native_entry, native_exit = _records(capture_telemetry, __name__)
    assert entry.log_record.severity_number is SeverityNumber.INFO
    assert entry.log_record.body.startswith("calling ")
    assert entry.log_record.attributes["event"] == "call"
    assert exit_.log_record.attributes["event"] == "return"
    assert exit_.log_record.attributes["duration_ms"] >= 0
    assert exit_.log_record.trace_id == capture_telemetry.span("job").context.trace_id
    assert set(native_exit.log_record.attributes) == set(exit_.log_record.attributes)
    assert native_entry.log_record.severity_number is SeverityNumber.INFO
    assert capture_telemetry.histogram_count(DURATION) == 1


def test_log_calls_accepts_a_structured_logger_and_the_bare_form(capture_telemetry):
    target = StructuredLogger("guide.calls")

    @log_calls(logger=target, level=LogLevel.WARNING)
    def step() -> int:
        return 1

    @log_calls
    def bare() -> int:
        return 2

    assert step() == 1
    assert bare() == 2
    names = [r.log_record.attributes["logger.name"] for r in capture_telemetry.logs]
    assert names == ["guide.calls", "guide.calls", __name__, __name__]
    assert capture_telemetry.logs[0].log_record.severity_number is SeverityNumber.WARN


# -- MonitoringSystem ----------------------------------------------------------------------


async def test_health_checks_are_the_contexts_and_report_the_gauge(context, capture_telemetry):
    monitoring = MonitoringSystem()
    monitoring.add_health_check("database", lambda: True)

    async def cache_check() -> bool:
        return False

    monitoring.add_health_check("cache", lambda: cache_check())  # noqa: PLW0108 - the guide's form
    assert context.health.names == ["database", "cache"]
    results = await monitoring.check_health()
    assert results["database"].healthy
    assert not results["cache"].healthy
    assert capture_telemetry.gauge_value(HEALTH, {"health.check": "database"}) == 1
    assert capture_telemetry.gauge_value(HEALTH, {"health.check": "cache"}) == 0
    assert monitoring.context is context
    assert isinstance(monitoring.logger, ttbt5_otel.StructuredLogger)
    assert monitoring.logger.name == "monitoring"


async def test_start_monitoring_inits_runs_once_then_periodically_and_stops(
    context, capture_telemetry
):
    runs: list[int] = []
    monitoring = MonitoringSystem(context=context)
    monitoring.add_health_check("database", lambda: runs.append(1) or True)
    assert _setup.current_telemetry() is None
    await monitoring.start_monitoring(interval_seconds=0.01)
    telemetry = _setup.current_telemetry()
    assert telemetry is not None  # init() ran, with the context's settings
    assert telemetry.config.runtime_metrics is False
    assert runs == [1]  # the first run is done when start_monitoring returns
    assert capture_telemetry.gauge_value(HEALTH, {"health.check": "database"}) == 1
    assert monitoring.is_monitoring
    await monitoring.start_monitoring(interval_seconds=0.01)  # running: changes nothing
    for _ in range(200):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(runs) >= 3
    await monitoring.stop_monitoring()
    assert not monitoring.is_monitoring
    stopped_at = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == stopped_at
    await monitoring.shutdown()
    assert telemetry.is_shut_down


async def test_start_monitoring_keeps_telemetry_someone_else_set_up(context, monkeypatch):
    calls: list[dict] = []

    class Running:
        is_shut_down = False

    monkeypatch.setattr(lm, "current_telemetry", Running)
    monkeypatch.setattr(lm, "init", lambda **options: calls.append(options))
    monitoring = MonitoringSystem()
    await monitoring.start_monitoring(interval_seconds=60)
    assert calls == []
    await monitoring.shutdown()  # did not start telemetry: does not close it
    assert not monitoring.is_monitoring


async def test_start_monitoring_rejects_a_bad_interval(context):
    with pytest.raises(ValueError, match="interval_seconds must be positive"):
        await MonitoringSystem().start_monitoring(interval_seconds=0)


def test_setup_default_handlers_adds_the_lifecycles_console_handler(context, monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    handler = MonitoringSystem().setup_default_handlers()
    assert handler is not None
    assert handler.get_name() == "ttbt5-console"
    assert MonitoringSystem().setup_default_handlers() is None  # once
    root.removeHandler(handler)
