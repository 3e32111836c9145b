"""ttbt5-otel: OpenTelemetry traces, metrics, logs and error events from one ``init()`` call.

Public API (everything else is private and may change):

* set-up: ``init``, ``shutdown``, ``force_flush``, ``Telemetry``, ``TelemetryConfig``,
  ``ConfigError``
* traces: ``traced``, ``span``
* metrics: ``monitor_performance``, ``counter``, ``up_down_counter``, ``histogram``, ``gauge``
* logs: ``get_logger``, ``StructuredLogger``, ``log_calls``
* application: ``get_application_context``, ``application_lifecycle``, ``ApplicationContext``,
  ``LifecycleHook``, ``LifecyclePhase``, ``DependencyNotFoundError``, ``HealthResult``,
  ``Settings``, ``load_settings``
* caching: ``cached``, ``HierarchicalCache``, ``CacheLevel``, ``MemoryCache``, ``RedisCache``,
  ``DiskCache``, ``instrument_cache``, ``EvictionStrategy``, ``JsonSerializer``,
  ``PickleSerializer``, ``CacheError``, ``CacheConfigError``, ``CacheSerializationError``
* resilience: ``retry``, ``CircuitBreaker``, ``CircuitOpenError``, ``CircuitState``,
  ``circuit_breakers``
* errors: ``ApplicationError``, ``ValidationError``, ``ErrorSeverity``, ``ErrorCategory``,
  ``handle_errors``, ``Validator``, ``Ttbt5Error``
"""

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
    CacheConfigError,
    CacheError,
    CacheLevel,
    CacheSerializationError,
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
from ttbt5_otel._exceptions import (
    ApplicationError,
    CircuitOpenError,
    ConfigError,
    DependencyNotFoundError,
    ErrorCategory,
    ErrorSeverity,
    Ttbt5Error,
    ValidationError,
)
from ttbt5_otel._resilience.breaker import CircuitBreaker, circuit_breakers
from ttbt5_otel._resilience.breaker_telemetry import CircuitState
from ttbt5_otel._resilience.retry import retry
from ttbt5_otel._sdk.config import TelemetryConfig
from ttbt5_otel._sdk.setup import Telemetry, force_flush, init, shutdown
from ttbt5_otel._signals.handle_errors import handle_errors
from ttbt5_otel._signals.log_calls import log_calls
from ttbt5_otel._signals.logger import StructuredLogger, get_logger
from ttbt5_otel._signals.metrics import (
    counter,
    gauge,
    histogram,
    monitor_performance,
    up_down_counter,
)
from ttbt5_otel._signals.tracing import span, traced
from ttbt5_otel._signals.validation import Validator
from ttbt5_otel._version import __version__

__all__ = [
    "ApplicationContext",
    "ApplicationError",
    "CacheConfigError",
    "CacheError",
    "CacheLevel",
    "CacheSerializationError",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ConfigError",
    "DependencyNotFoundError",
    "DiskCache",
    "ErrorCategory",
    "ErrorSeverity",
    "EvictionStrategy",
    "HealthResult",
    "HierarchicalCache",
    "JsonSerializer",
    "LifecycleHook",
    "LifecyclePhase",
    "MemoryCache",
    "PickleSerializer",
    "RedisCache",
    "Settings",
    "StructuredLogger",
    "Telemetry",
    "TelemetryConfig",
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
