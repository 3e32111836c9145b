"""Exceptions raised by ttbt5_otel itself.

    Exception
    └── Ttbt5Error                      base of everything this package raises on purpose
        ├── ConfigError(ValueError)     an option, environment variable or file value is wrong
        ├── ApplicationError            an application failure with severity, category, context
        │   └── ValidationError         an input failed a ``Validator`` check (names the field)
        ├── CircuitOpenError            a circuit breaker rejected a call without running it
        ├── DependencyNotFoundError     the application context has nothing under that key
        └── CacheError                  a cache level failed (raised only in strict mode)
            ├── CacheConfigError        a cache was built or decorated with invalid options
            └── CacheSerializationError a value cannot be stored (names function and type)

Cache errors live in ``ttbt5_otel._cache._errors``; all are re-exported by the package.
"""

from __future__ import annotations


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
