"""The guide's error handling: the same signals as the native ``handle_errors``, plus handlers."""

import asyncio
import logging

import pytest
from opentelemetry import trace

import ttbt5_otel
from ttbt5_otel import traced
from ttbt5_otel.patterns.error_handling import (
    AlertingErrorHandler,
    ApplicationError,
    ErrorCategory,
    ErrorContext,
    ErrorHandler,
    ErrorManager,
    ErrorSeverity,
    LoggingErrorHandler,
    RetryErrorHandler,
    ValidationError,
    Validator,
    handle_errors,
)

ERRORS = "ttbt5.errors"
HIGH = {"error.type": "ApplicationError", "error.severity": "high", "error.category": "unknown"}


def _failure() -> ApplicationError:
    return ApplicationError(
        "Operation failed",
        severity=ErrorSeverity.HIGH,
        context={"order_id": "o-1"},
        recovery_suggestions=["Try again", "Check input data"],
    )


def _error_logs(capture):
    """Records of errors (an async test also captures asyncio's debug lines)."""
    return [r for r in capture.logs if "error.type" in (r.log_record.attributes or {})]


def _signals(capture):
    """What a test can compare: span events, error points and log records, ids left out."""
    spans = [
        (s.name, s.status.status_code, [(e.name, dict(e.attributes)) for e in s.events])
        for s in capture.spans
    ]
    points = [(p.attributes, p.value) for p in capture.points(ERRORS)]
    logs = [
        (
            r.log_record.body,
            r.log_record.severity_text,
            {k: v for k, v in r.log_record.attributes.items() if not k.startswith("exception.")},
            r.log_record.span_id != 0,
        )
        for r in _error_logs(capture)
    ]
    return spans, points, logs


def _strip_stack(signals):
    spans, points, logs = signals
    cleaned = [
        (name, status, [(n, {k: v for k, v in a.items() if k != "exception.stacktrace"})])
        for name, status, events in spans
        for n, a in events
    ]
    return cleaned, points, logs


def test_signals_equal_the_native_handle_errors(capture_telemetry):
    """Guide decorator + LoggingErrorHandler: the native handle_errors(logger=...) signals."""
    logger = logging.getLogger("app.errors")

    @traced(name="op")
    @ttbt5_otel.handle_errors(logger=logger)
    def native():
        raise _failure()

    manager = ErrorManager()
    manager.register_handler(LoggingErrorHandler(logger))

    @traced(name="op")
    @handle_errors(manager)
    def guide():
        raise _failure()

    with pytest.raises(ApplicationError):
        native()
    expected = _strip_stack(_signals(capture_telemetry))
    capture_telemetry.clear()
    with pytest.raises(ApplicationError):
        guide()
    assert _strip_stack(_signals(capture_telemetry)) == expected
    assert capture_telemetry.counter_value(ERRORS, HIGH) == 1
    [record] = capture_telemetry.logs
    assert record.log_record.attributes["error.context.order_id"] == "o-1"
    assert record.log_record.severity_text == "ERROR"


async def test_guide_example_async_retries_then_records_once(capture_telemetry):
    """The guide's example: 3 retries through the native retry, one error recorded at the end."""
    sleeps = []
    manager = ErrorManager()
    manager.register_handler(LoggingErrorHandler(logging.getLogger("app")))
    manager.register_handler(RetryErrorHandler(max_retries=3, sleep=sleeps.append))
    calls = []

    @traced(name="risky")
    @handle_errors(manager)
    async def risky_operation(data: str):
        calls.append(data)
        Validator.validate_length(data, min_length=1, max_length=100)
        if "fail" in data:
            raise _failure()
        return "Success"

    assert asyncio.iscoroutinefunction(risky_operation)
    assert await risky_operation("ok") == "Success"
    with pytest.raises(ApplicationError, match="Operation failed"):
        await risky_operation("fail")
    assert len(calls) == 1 + 4
    assert len(sleeps) == 3
    assert capture_telemetry.counter_value(ERRORS, HIGH) == 1
    for outcome in ("success_without_retry", "failed_with_retry"):
        assert capture_telemetry.counter_value("ttbt5.retry.calls", {"retry.outcome": outcome}) == 1
    failed = capture_telemetry.spans[-1]
    names = [e.name for e in failed.events]
    assert names.count("retry.attempt_failed") == 4
    assert names.count("exception") == 1
    assert [r.log_record.severity_text for r in _error_logs(capture_telemetry)] == ["ERROR"]


def test_validation_errors_are_not_retried_and_validator_call_form(capture_telemetry):
    """``Validator.validate_length(data, min_length=1, max_length=100)`` as the guide calls it."""
    manager = ErrorManager()
    manager.register_handler(RetryErrorHandler(max_retries=3, sleep=lambda _s: None))
    calls = []

    @handle_errors(manager)
    def check(data: str):
        calls.append(data)
        return Validator.validate_length(data, min_length=1, max_length=100)

    assert check("x") == "x"
    with pytest.raises(ValidationError, match="at most 100"):
        check("y" * 101)
    with pytest.raises(ValidationError, match="at least 1"):
        check("")
    assert calls == ["x", "y" * 101, ""]
    labels = {
        "error.type": "ValidationError",
        "error.severity": "low",
        "error.category": "validation",
    }
    assert capture_telemetry.counter_value(ERRORS, labels) == 2


def test_a_retry_that_succeeds_records_no_error(capture_telemetry):
    """Transient failures absorbed by the retry are retry telemetry, not ``ttbt5.errors``."""
    manager = ErrorManager()
    manager.register_handler(RetryErrorHandler(max_retries=2, backoff_factor=0))
    attempts = []

    @handle_errors(manager)
    def flaky():
        attempts.append(1)
        if len(attempts) < 2:
            raise _failure()
        return "ok"

    assert flaky() == "ok"
    assert capture_telemetry.counter_value(ERRORS) == 0
    assert (
        capture_telemetry.counter_value(
            "ttbt5.retry.calls", {"retry.outcome": "success_with_retry"}
        )
        == 1
    )


class Recorder(ErrorHandler):
    def __init__(self):
        self.seen = []

    def handle(self, error, context):
        self.seen.append((error, context, trace.get_current_span().get_span_context().span_id))


def test_handlers_run_in_the_native_path_with_the_recorded_classification(capture_telemetry):
    """Handlers see the severity/category recorded, inside the span, once for nested scopes."""
    recorder = Recorder()
    manager = ErrorManager()
    manager.register_handler(recorder)

    @handle_errors(manager)
    def inner():
        raise TimeoutError("upstream")

    @traced(name="outer")
    @handle_errors(manager)
    def outer():
        inner()

    with pytest.raises(TimeoutError):
        outer()
    [(error, context, span_id)] = recorder.seen
    assert isinstance(error, TimeoutError)
    assert context == ErrorContext(
        "test_handlers_run_in_the_native_path_with_the_recorded_classification.<locals>.inner",
        __name__,
        ErrorSeverity.HIGH,
        ErrorCategory.NETWORK,
    )
    assert span_id == capture_telemetry.span("outer").context.span_id
    labels = {"error.type": "TimeoutError", "error.severity": "high", "error.category": "network"}
    assert capture_telemetry.counter_value(ERRORS, labels) == 1


async def test_async_handlers_finish_before_the_error_leaves_the_call(capture_telemetry):
    """An ``async def handle`` is awaited before the caller sees the exception."""
    done = []

    class Slow(ErrorHandler):
        async def handle(self, error, context):
            await asyncio.sleep(0)
            done.append(context.severity)

    manager = ErrorManager()
    manager.register_handler(Slow())

    @handle_errors(manager)
    async def op():
        raise _failure()

    with pytest.raises(ApplicationError):
        await op()
    assert done == [ErrorSeverity.HIGH]


def test_async_handler_of_a_plain_function_runs_outside_a_loop(capture_telemetry):
    """Without a running loop an async handler of a plain function runs before it returns."""
    done = []

    class Slow(ErrorHandler):
        async def handle(self, error, context):
            done.append(type(error).__name__)

    manager = ErrorManager()
    manager.register_handler(Slow())

    @handle_errors(manager)
    def op():
        raise KeyError("k")

    with pytest.raises(KeyError):
        op()
    assert done == ["KeyError"]


def test_alerting_handler_marks_the_span_and_notifies_from_min_severity(capture_telemetry):
    """Errors at or above the threshold get a ``ttbt5.alert`` event and a notification."""
    notified = []
    manager = ErrorManager()
    manager.register_handler(
        AlertingErrorHandler(ErrorSeverity.HIGH, notify=lambda e, s: notified.append(s))
    )

    @traced(name="op")
    @handle_errors(manager)
    def op(severity):
        raise ApplicationError("boom", severity=severity)

    for severity in (ErrorSeverity.MEDIUM, ErrorSeverity.CRITICAL):
        with pytest.raises(ApplicationError):
            op(severity)
    assert notified == [ErrorSeverity.CRITICAL]
    alerts = [
        (s.name, dict(e.attributes))
        for s in capture_telemetry.spans
        for e in s.events
        if e.name == "ttbt5.alert"
    ]
    assert alerts == [
        (
            "op",
            {
                "error.type": "ApplicationError",
                "error.severity": "critical",
                "error.category": "unknown",
            },
        )
    ]


def test_a_failing_handler_is_logged_and_the_others_run(capture_telemetry):
    """A handler that raises never replaces the application's exception."""

    class Broken(ErrorHandler):
        def handle(self, error, context):
            raise RuntimeError("handler bug")

    recorder = Recorder()
    manager = ErrorManager()
    manager.register_handler(Broken())
    manager.register_handler(recorder)

    @handle_errors(manager)
    def op():
        raise _failure()

    with pytest.raises(ApplicationError):
        op()
    assert len(recorder.seen) == 1
    assert any("error handler Broken failed" in b for b in capture_telemetry.log_bodies())


def test_registration_rules():
    """One logging and one retry handler, registered before the manager decorates."""
    manager = ErrorManager()
    manager.register_handler(LoggingErrorHandler(ttbt5_otel.get_logger("app")))
    assert manager.logger is logging.getLogger("app")
    with pytest.raises(ValueError, match="already has a LoggingErrorHandler"):
        manager.register_handler(LoggingErrorHandler(logging.getLogger("other")))
    handle_errors(manager)(lambda: None)
    with pytest.raises(RuntimeError, match="register RetryErrorHandler before"):
        manager.register_handler(RetryErrorHandler())
    manager.register_handler(AlertingErrorHandler())  # called per error: fine at any time
    with pytest.raises(ValueError, match="max_retries"):
        RetryErrorHandler(max_retries=-1)


def test_native_options_pass_through_and_bare_form(capture_telemetry):
    """``fallback=`` recovers as in the native API; bare ``@handle_errors`` records too."""

    @handle_errors(ErrorManager(), fallback="cached")
    def recovered():
        raise _failure()

    @handle_errors
    def bare():
        raise _failure()

    assert recovered() == "cached"
    with pytest.raises(ApplicationError):
        bare()
    assert capture_telemetry.counter_value(ERRORS, HIGH) == 2


async def test_handle_error_called_directly(capture_telemetry):
    """``await manager.handle_error(exc)`` records on every signal and runs the handlers."""
    recorder = Recorder()
    manager = ErrorManager()
    manager.register_handler(recorder)
    await manager.handle_error(_failure())
    assert capture_telemetry.counter_value(ERRORS, HIGH) == 1
    assert len(_error_logs(capture_telemetry)) == 1
    assert recorder.seen[0][1].severity is ErrorSeverity.HIGH


def test_native_on_error_hook_once_per_exception(capture_telemetry):
    """``ttbt5_otel.handle_errors(on_error=...)``: called after recording, never for a repeat."""
    seen = []

    def listener(exc, severity, category):
        seen.append(
            (type(exc).__name__, severity, category, capture_telemetry.counter_value(ERRORS))
        )

    @ttbt5_otel.handle_errors(on_error=listener)
    def inner():
        raise PermissionError("no")

    @ttbt5_otel.handle_errors(on_error=listener)
    def outer():
        inner()

    with pytest.raises(PermissionError):
        outer()
    assert seen == [("PermissionError", ErrorSeverity.HIGH, ErrorCategory.AUTHORIZATION, 1)]
