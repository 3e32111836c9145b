"""Every exception ttbt5_otel raises on purpose, in one place.

    Exception
    └── Ttbt5Error                          base of everything this package raises on purpose
        ├── ConfigError(ValueError)         an option, variable or file value is wrong
        ├── ApplicationError                an application failure: severity, category, context
        │   └── ValidationError             an input failed a ``Validator`` check (names the field)
        ├── CircuitOpenError                a circuit breaker rejected a call without running it
        ├── DependencyNotFoundError(LookupError)  the application context has nothing there
        ├── LifecycleError(RuntimeError)    a lifecycle method was called in the wrong phase
        ├── StackError                      the local stack could not start, report or stop
        └── CacheError                      a cache level failed (raised only in strict mode)
            ├── CacheConfigError(ValueError)        invalid cache options
            └── CacheSerializationError(TypeError)  a value cannot be stored (names the type)

``ErrorSeverity`` and ``ErrorCategory`` describe application errors; they live here because
``ApplicationError`` carries them.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final


class Ttbt5Error(Exception):
    """Base class of the exceptions ttbt5_otel raises deliberately."""


class ConfigError(Ttbt5Error, ValueError):
    """A configuration value is invalid; the message names the option and where it came from."""

    def __init__(self, option: str, message: str, source: str | None = None) -> None:
        """Describe a bad ``option``; ``source`` is the variable or file that supplied it."""
        where = f" (from {source})" if source else ""
        super().__init__(f"{option}: {message}{where}")
        self.option = option
        self.source = source


class CircuitOpenError(Ttbt5Error):
    """A ``CircuitBreaker`` rejected the call because it is open (or its probes are taken).

    Attributes:
        name: the breaker's name.
        retry_after: seconds until the breaker lets a probe call through; ``0.0`` when it is
            half-open and all probe slots are in use (retry soon).
    """

    def __init__(self, name: str, retry_after: float) -> None:
        """Describe a rejection by breaker ``name``; a probe is admitted in ``retry_after`` s."""
        super().__init__(f"circuit breaker {name!r} is open; retry after {retry_after:.3f}s")
        self.name = name
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[str, float]]:
        """Pickle with the constructor's arguments, not the formatted message."""
        return (type(self), (self.name, self.retry_after))


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


class DependencyNotFoundError(Ttbt5Error, LookupError):
    """``ApplicationContext.get`` found nothing under that name or type."""


class LifecycleError(Ttbt5Error, RuntimeError):
    """A lifecycle method was called in a phase that does not allow it."""


class StackError(Ttbt5Error):
    """The stack could not be started, inspected or stopped; the message says why."""


class CacheError(Ttbt5Error):
    """Base class of the errors caches raise on purpose."""


class CacheSerializationError(CacheError, TypeError):
    """A value cannot be written to a shared cache level without changing it.

    Attributes:
        cache: name of the cache the value was written to.
        owner: qualified name of the cached function, or ``None`` for a direct ``set``.
        value_type: name of the offending type.
        path: where in the value the type was found (``$`` is the value itself).
    """

    def __init__(
        self, cache: str, owner: str | None, value_type: str, path: str, hint: str
    ) -> None:
        """Describe an unstorable ``value_type`` found at ``path``."""
        where = f"function {owner} (cache {cache!r})" if owner else f"cache {cache!r}"
        super().__init__(f"{where}: value of type {value_type} at {path} cannot be stored: {hint}")
        self.cache = cache
        self.owner = owner
        self.value_type = value_type
        self.path = path

    def __reduce__(
        self,
    ) -> tuple[type[CacheSerializationError], tuple[str, str | None, str, str, str]]:
        """Pickle with the constructor's arguments."""
        hint = str(self).split(": ", 2)[-1]
        return (type(self), (self.cache, self.owner, self.value_type, self.path, hint))


class CacheConfigError(CacheError, ValueError):
    """A cache option is invalid; the message names the option."""
