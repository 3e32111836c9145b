"""Application error types carrying severity, category, context and recovery suggestions."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ttbt5_otel._exceptions import Ttbt5Error


class ErrorSeverity(enum.StrEnum):
    """How bad an error is; decides the log level of its record."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def log_level(self) -> int:
        """Stdlib logging level used for errors of this severity."""
        return _LEVELS[self]


_LEVELS: Final = {
    ErrorSeverity.LOW: logging.INFO,
    ErrorSeverity.MEDIUM: logging.WARNING,
    ErrorSeverity.HIGH: logging.ERROR,
    ErrorSeverity.CRITICAL: logging.CRITICAL,
}


class ErrorCategory(enum.StrEnum):
    """What kind of failure an error is; a bounded label on the ``ttbt5.errors`` metric."""

    VALIDATION = "validation"
    BUSINESS_LOGIC = "business_logic"
    EXTERNAL_SERVICE = "external_service"
    DATABASE = "database"
    NETWORK = "network"
    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    CONFIGURATION = "configuration"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class ApplicationError(Ttbt5Error):
    """An application failure described well enough to act on.

    ``context`` holds what identifies the failing operation (it becomes log attributes, after
    secret scrubbing; never metric attributes); ``recovery_suggestions`` tell an operator or
    caller what to try; ``user_message`` is safe to show to end users.
    """

    def __init__(
        self,
        message: str,
        *,
        severity: ErrorSeverity = ErrorSeverity.MEDIUM,
        category: ErrorCategory = ErrorCategory.UNKNOWN,
        context: Mapping[str, Any] | None = None,
        recovery_suggestions: Iterable[str] = (),
        user_message: str | None = None,
    ) -> None:
        """Describe the failure; only ``message`` is required."""
        super().__init__(message)
        self.message = message
        self.severity = ErrorSeverity(severity)
        self.category = ErrorCategory(category)
        self.context: dict[str, Any] = dict(context or {})
        self.recovery_suggestions: tuple[str, ...] = tuple(recovery_suggestions)
        self.user_message = user_message or message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (for API error bodies and logs)."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "severity": self.severity.value,
            "category": self.category.value,
            "context": dict(self.context),
            "recovery_suggestions": list(self.recovery_suggestions),
            "user_message": self.user_message,
        }


class ValidationError(ApplicationError):
    """An input failed a check; ``field`` names it and the message says what was expected."""

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        context: Mapping[str, Any] | None = None,
        recovery_suggestions: Iterable[str] = (),
    ) -> None:
        """``field`` failed because of ``problem`` (e.g. "must be at most 100 characters")."""
        super().__init__(
            f"{field}: {problem}",
            severity=ErrorSeverity.LOW,
            category=ErrorCategory.VALIDATION,
            context={"field": field, **(context or {})},
            recovery_suggestions=recovery_suggestions or (f"Correct the value of {field!r}",),
        )
        self.field = field
        self.problem = problem


def classify(exc: BaseException) -> tuple[ErrorSeverity, ErrorCategory]:
    """Severity and category of any exception (defaults for non-application errors)."""
    if isinstance(exc, ApplicationError):
        return exc.severity, exc.category
    if isinstance(exc, TimeoutError | ConnectionError):
        return ErrorSeverity.HIGH, ErrorCategory.NETWORK
    if isinstance(exc, PermissionError):
        return ErrorSeverity.HIGH, ErrorCategory.AUTHORIZATION
    return ErrorSeverity.HIGH, ErrorCategory.UNKNOWN
