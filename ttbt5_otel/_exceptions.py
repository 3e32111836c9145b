"""Exceptions raised by ttbt5_otel itself.

    Exception
    └── Ttbt5Error                      base of everything this package raises on purpose
        ├── ConfigError(ValueError)     an option, environment variable or file value is wrong
        └── ApplicationError            an application failure with severity, category, context
            └── ValidationError         an input failed a ``Validator`` check (names the field)

Resilience and cache errors (``CircuitOpenError`` and friends) also derive from ``Ttbt5Error``.
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
