"""ttbt5-otel: OpenTelemetry traces, metrics, logs and error events from one ``init()`` call.

Public API (everything else is private and may change):

* set-up: ``init``, ``shutdown``, ``force_flush``, ``Telemetry``, ``TelemetryConfig``,
  ``TelemetryOptions``, ``ConfigError``, ``ScrubMatch``, ``ScrubAction`` (the scrub callback)
* traces: ``traced``, ``span``, ``SpanScope``
* metrics: ``monitor_performance``, ``counter``, ``up_down_counter``, ``histogram``, ``gauge``,
  ``BoundedCounter``, ``BoundedUpDownCounter``, ``BoundedHistogram``, ``BoundedGauge``
* logs: ``get_logger``, ``StructuredLogger``, ``Binding``, ``log_calls``
* application: ``get_application_context``, ``application_lifecycle``, ``ApplicationContext``,
  ``LifecycleHook``, ``LifecyclePhase``, ``DependencyNotFoundError``, ``HealthResult``,
  ``Settings``, ``load_settings``
* caching: ``cached``, ``CacheDecorator``, ``CachedAsyncFunction``, ``CachedSyncFunction``,
  ``HierarchicalCache``, ``CacheLevel``, ``MemoryCache``, ``RedisCache``, ``DiskCache``,
  ``instrument_cache``, ``EvictionStrategy``, ``JsonSerializer``, ``PickleSerializer``,
  ``CacheError``, ``CacheConfigError``, ``CacheSerializationError``
* resilience: ``retry``, ``CircuitBreaker``, ``CircuitOpenError``, ``CircuitState``,
  ``circuit_breakers``
* errors: ``ApplicationError``, ``ValidationError``, ``ErrorSeverity``, ``ErrorCategory``,
  ``handle_errors``, ``ErrorScope``, ``Validator``, ``Ttbt5Error``

Traces, metrics, logs and errors are imported with the package; they need only the
OpenTelemetry API, so a library can decorate its functions without pulling in the SDK. The
set-up (``init`` and the SDK), the application context, caching and resilience load on
first use of one of their names: their imports (the SDK, ``http.server``, ``asyncio``,
``tenacity``, ``aiocache``) would triple the import time of code that only uses ``traced``.
Type checkers see every name through the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ttbt5_otel._core.scrub import ScrubAction, ScrubMatch
from ttbt5_otel._exceptions import (
    ApplicationError,
    CacheConfigError,
    CacheError,
    CacheSerializationError,
    CircuitOpenError,
    ConfigError,
    DependencyNotFoundError,
    ErrorCategory,
    ErrorSeverity,
    Ttbt5Error,
    ValidationError,
)
from ttbt5_otel._sdk.config import TelemetryConfig, TelemetryOptions
from ttbt5_otel._signals.handle_errors import ErrorScope, handle_errors
from ttbt5_otel._signals.log_calls import log_calls
from ttbt5_otel._signals.logger import Binding, StructuredLogger, get_logger
from ttbt5_otel._signals.metrics import (
    BoundedCounter,
    BoundedGauge,
    BoundedHistogram,
    BoundedUpDownCounter,
    counter,
    gauge,
    histogram,
    monitor_performance,
    up_down_counter,
)
from ttbt5_otel._signals.tracing import SpanScope, span, traced
from ttbt5_otel._signals.validation import Validator
from ttbt5_otel._version import __version__

if TYPE_CHECKING:
    from ttbt5_otel._app.context import (
        ApplicationContext,
        LifecycleHook,
        LifecyclePhase,
        get_application_context,
    )
    from ttbt5_otel._app.health import HealthResult
    from ttbt5_otel._app.lifecycle import application_lifecycle
    from ttbt5_otel._app.settings import Settings, load_settings
    from ttbt5_otel._cache import (
        CachedAsyncFunction,
        CachedSyncFunction,
        CacheLevel,
        DiskCache,
        EvictionStrategy,
        HierarchicalCache,
        JsonSerializer,
        MemoryCache,
        PickleSerializer,
        RedisCache,
        cached,
        instrument_cache,
    )
    from ttbt5_otel._cache.decorator import CacheDecorator
    from ttbt5_otel._resilience.breaker import CircuitBreaker, circuit_breakers
    from ttbt5_otel._resilience.breaker_telemetry import CircuitState
    from ttbt5_otel._resilience.retry import retry
    from ttbt5_otel._sdk.instrumentors import Instrumentation
    from ttbt5_otel._sdk.setup import Telemetry, force_flush, init, shutdown
    from ttbt5_otel._sdk.web_apps import instrument_app

_LAZY: Final[dict[str, str]] = {
    "Instrumentation": "ttbt5_otel._sdk.instrumentors",
    "instrument_app": "ttbt5_otel._sdk.web_apps",
    "Telemetry": "ttbt5_otel._sdk.setup",
    "force_flush": "ttbt5_otel._sdk.setup",
    "init": "ttbt5_otel._sdk.setup",
    "shutdown": "ttbt5_otel._sdk.setup",
    "ApplicationContext": "ttbt5_otel._app.context",
    "LifecycleHook": "ttbt5_otel._app.context",
    "LifecyclePhase": "ttbt5_otel._app.context",
    "get_application_context": "ttbt5_otel._app.context",
    "HealthResult": "ttbt5_otel._app.health",
    "application_lifecycle": "ttbt5_otel._app.lifecycle",
    "Settings": "ttbt5_otel._app.settings",
    "load_settings": "ttbt5_otel._app.settings",
    "CacheDecorator": "ttbt5_otel._cache.decorator",
    "CacheLevel": "ttbt5_otel._cache",
    "CachedAsyncFunction": "ttbt5_otel._cache",
    "CachedSyncFunction": "ttbt5_otel._cache",
    "DiskCache": "ttbt5_otel._cache",
    "EvictionStrategy": "ttbt5_otel._cache",
    "HierarchicalCache": "ttbt5_otel._cache",
    "JsonSerializer": "ttbt5_otel._cache",
    "MemoryCache": "ttbt5_otel._cache",
    "PickleSerializer": "ttbt5_otel._cache",
    "RedisCache": "ttbt5_otel._cache",
    "cached": "ttbt5_otel._cache",
    "instrument_cache": "ttbt5_otel._cache",
    "CircuitBreaker": "ttbt5_otel._resilience.breaker",
    "circuit_breakers": "ttbt5_otel._resilience.breaker",
    "CircuitState": "ttbt5_otel._resilience.breaker_telemetry",
    "retry": "ttbt5_otel._resilience.retry",
}


def __getattr__(name: str) -> Any:
    """Import a lazily loaded public name on first use, then keep it in the module."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'ttbt5_otel' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not."""
    return sorted(__all__)


__all__ = [
    "ApplicationContext",
    "ApplicationError",
    "Binding",
    "BoundedCounter",
    "BoundedGauge",
    "BoundedHistogram",
    "BoundedUpDownCounter",
    "CacheConfigError",
    "CacheDecorator",
    "CacheError",
    "CacheLevel",
    "CacheSerializationError",
    "CachedAsyncFunction",
    "CachedSyncFunction",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ConfigError",
    "DependencyNotFoundError",
    "DiskCache",
    "ErrorCategory",
    "ErrorScope",
    "ErrorSeverity",
    "EvictionStrategy",
    "HealthResult",
    "HierarchicalCache",
    "Instrumentation",
    "JsonSerializer",
    "LifecycleHook",
    "LifecyclePhase",
    "MemoryCache",
    "PickleSerializer",
    "RedisCache",
    "ScrubAction",
    "ScrubMatch",
    "Settings",
    "SpanScope",
    "StructuredLogger",
    "Telemetry",
    "TelemetryConfig",
    "TelemetryOptions",
    "Ttbt5Error",
    "ValidationError",
    "Validator",
    "__version__",
    "application_lifecycle",
    "cached",
    "circuit_breakers",
    "counter",
    "force_flush",
    "gauge",
    "get_application_context",
    "get_logger",
    "handle_errors",
    "histogram",
    "init",
    "instrument_app",
    "instrument_cache",
    "load_settings",
    "log_calls",
    "monitor_performance",
    "retry",
    "shutdown",
    "span",
    "traced",
    "up_down_counter",
]
