"""Error types, ``handle_errors`` and ``Validator``."""

import asyncio
import math

import pytest
from opentelemetry.trace import StatusCode

from ttbt5_otel import (
    ApplicationError,
    ErrorCategory,
    ErrorSeverity,
    ValidationError,
    Validator,
    handle_errors,
    span,
    traced,
)

ERRORS = "ttbt5.errors"


def test_application_error_carries_details():
    err = ApplicationError(
        "Operation failed",
        severity=ErrorSeverity.HIGH,
        category=ErrorCategory.EXTERNAL_SERVICE,
        context={"order_id": "o1"},
        recovery_suggestions=["Try again"],
    )
    assert err.to_dict() == {
        "type": "ApplicationError",
        "message": "Operation failed",
        "severity": "high",
        "category": "external_service",
        "context": {"order_id": "o1"},
        "recovery_suggestions": ["Try again"],
        "user_message": "Operation failed",
    }


def test_handle_errors_emits_all_signals_then_reraises(capture_telemetry):
    @traced(name="risky")
    @handle_errors
    def risky():
        raise ApplicationError(
            "payment declined",
            severity=ErrorSeverity.HIGH,
            category=ErrorCategory.BUSINESS_LOGIC,
            context={"order_id": "o-9", "card_token": "tok_123"},
            recovery_suggestions=["Use another card"],
        )

    with pytest.raises(ApplicationError):
        risky()
    labels = {
        "error.type": "ApplicationError",
        "error.severity": "high",
        "error.category": "business_logic",
    }
    assert capture_telemetry.counter_value(ERRORS, labels) == 1
    recorded = capture_telemetry.span("risky")
    assert recorded.status.status_code is StatusCode.ERROR
    exception_events = [e for e in recorded.events if e.name == "exception"]
    assert len(exception_events) == 1, "traced must not record the same exception again"
    assert exception_events[0].attributes["error.severity"] == "high"
    [record] = capture_telemetry.logs
    attrs = record.log_record.attributes
    assert record.log_record.severity_text == "ERROR"
    assert attrs["error.context.order_id"] == "o-9"
    assert attrs["error.context.card_token"] == "[REDACTED]"
    assert list(attrs["error.recovery_suggestions"]) == ["Use another card"]
    assert record.log_record.span_id == recorded.context.span_id


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (ErrorSeverity.LOW, "INFO"),
        (ErrorSeverity.MEDIUM, "WARNING"),
        (ErrorSeverity.HIGH, "ERROR"),
        (ErrorSeverity.CRITICAL, "CRITICAL"),
    ],
)
def test_severity_maps_to_log_level(capture_telemetry, severity, level):
    with handle_errors(reraise=False):
        raise ApplicationError("x", severity=severity)
    assert capture_telemetry.logs[0].log_record.severity_text == level


def test_fallback_value_and_callable(capture_telemetry):
    @handle_errors(fallback=[])
    def listing():
        raise TimeoutError("slow backend")

    @handle_errors(fallback=lambda: {"cached": True})
    def details():
        raise KeyError("gone")

    assert listing() == []
    assert details() == {"cached": True}
    assert (
        capture_telemetry.counter_value(
            ERRORS, {"error.type": "TimeoutError", "error.category": "network"}
        )
        == 1
    )
    assert capture_telemetry.counter_value(ERRORS, {"error.type": "KeyError"}) == 1


def test_only_listed_errors_are_handled(capture_telemetry):
    @handle_errors(errors=ValueError, fallback=0)
    def parse(text):
        if text == "type":
            raise TypeError(text)
        return int(text)

    assert parse("x") == 0
    with pytest.raises(TypeError):
        parse("type")
    assert capture_telemetry.counter_value(ERRORS) == 1


def test_override_severity_for_foreign_exceptions(capture_telemetry):
    with handle_errors(
        reraise=False, severity=ErrorSeverity.CRITICAL, category=ErrorCategory.DATABASE
    ):
        raise OSError("disk full")
    assert (
        capture_telemetry.counter_value(
            ERRORS, {"error.severity": "critical", "error.category": "database"}
        )
        == 1
    )


def test_nested_handlers_count_once(capture_telemetry):
    @handle_errors
    def inner():
        raise ValueError("v")

    @handle_errors(fallback=None)
    def outer():
        inner()

    outer()
    assert capture_telemetry.counter_value(ERRORS) == 1
    assert len(capture_telemetry.logs) == 1


async def test_async_decorator_and_context_manager(capture_telemetry):
    @handle_errors(fallback="default")
    async def fetch():
        await asyncio.sleep(0)
        raise ConnectionError("refused")

    assert await fetch() == "default"
    with span("block"):
        async with handle_errors(reraise=False):
            raise ValidationError("email", "must be an e-mail address")
    event = next(e for e in capture_telemetry.span("block").events if e.name == "exception")
    assert event.attributes["error.handled"] is True
    assert capture_telemetry.span("block").status.status_code is StatusCode.UNSET
    assert capture_telemetry.counter_value(ERRORS, {"error.category": "validation"}) == 1


def test_base_exceptions_are_never_swallowed():
    @handle_errors(fallback=1)
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()


class TestValidator:
    def test_length(self):
        assert Validator.validate_length("abc", min_length=1, max_length=5) == "abc"
        with pytest.raises(ValidationError, match="name: must be at most 2 long, got 3"):
            Validator.validate_length("abc", max_length=2, field="name")
        with pytest.raises(ValidationError, match="value: must be at least 1 long, got 0"):
            Validator.validate_length("", min_length=1)

    def test_range(self):
        assert Validator.validate_range(5, 0, 10) == 5
        with pytest.raises(ValidationError, match="quantity: must be <= 10"):
            Validator.validate_range(11, max_value=10, field="quantity")
        with pytest.raises(ValidationError, match="quantity: must be a number, got NaN"):
            Validator.validate_range(math.nan, 0, 1, field="quantity")
        with pytest.raises(ValidationError, match="must be a number, got bool"):
            Validator.validate_range(True, 0, 1)

    def test_pattern_and_email(self):
        assert Validator.validate_pattern("AB-12", r"[A-Z]{2}-\d+", field="sku") == "AB-12"
        with pytest.raises(ValidationError, match="sku: must match a SKU"):
            Validator.validate_pattern("ab", r"[A-Z]+", field="sku", description="a SKU")
        with pytest.raises(ValidationError, match="email: must match an e-mail address"):
            Validator.validate_email("not-an-email")

    def test_required_and_type_and_choice(self):
        with pytest.raises(ValidationError, match="user_id: is required"):
            Validator.validate_required(None, field="user_id")
        with pytest.raises(ValidationError, match="items: is required"):
            Validator.validate_required_fields({"items": []}, ["items"])
        with pytest.raises(ValidationError, match="count: must be of type int, got str"):
            Validator.validate_type("3", int, field="count")
        with pytest.raises(ValidationError, match="count: must be of type int, got bool"):
            Validator.validate_type(True, int, field="count")
        with pytest.raises(ValidationError, match="currency: must be one of 'EUR', 'USD'"):
            Validator.validate_choice("GBP", {"EUR", "USD"}, field="currency")

    def test_validation_error_is_an_application_error(self):
        err = ValidationError("age", "must be >= 0")
        assert isinstance(err, ApplicationError)
        assert err.field == "age"
        assert err.severity is ErrorSeverity.LOW
        assert err.category is ErrorCategory.VALIDATION
        assert str(err) == "age: must be >= 0"

    def test_message_does_not_echo_the_value(self):
        with pytest.raises(ValidationError) as info:
            Validator.validate_length("super-secret-password", max_length=3, field="password")
        assert "super-secret" not in str(info.value)
