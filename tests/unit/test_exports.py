"""The public surface is exactly what the documentation promises."""

import ttbt5_otel

DOCUMENTED = {
    "CacheConfigError",
    "CacheError",
    "CacheLevel",
    "CacheSerializationError",
    "DiskCache",
    "EvictionStrategy",
    "HierarchicalCache",
    "JsonSerializer",
    "MemoryCache",
    "PickleSerializer",
    "RedisCache",
    "cached",
    "instrument_cache",
    "ApplicationContext",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "DependencyNotFoundError",
    "HealthResult",
    "LifecycleHook",
    "LifecyclePhase",
    "Settings",
    "application_lifecycle",
    "circuit_breakers",
    "get_application_context",
    "load_settings",
    "retry",
    "ApplicationError",
    "ConfigError",
    "ErrorCategory",
    "ErrorSeverity",
    "StructuredLogger",
    "Telemetry",
    "TelemetryConfig",
    "Ttbt5Error",
    "ValidationError",
    "Validator",
    "__version__",
    "counter",
    "force_flush",
    "gauge",
    "get_logger",
    "handle_errors",
    "histogram",
    "init",
    "log_calls",
    "monitor_performance",
    "shutdown",
    "span",
    "traced",
    "up_down_counter",
}


def test_all_is_exactly_the_documented_api():
    assert set(ttbt5_otel.__all__) == DOCUMENTED
    assert ttbt5_otel.__all__ == sorted(ttbt5_otel.__all__)


def test_every_exported_name_exists_and_is_public_module_level():
    for name in ttbt5_otel.__all__:
        assert hasattr(ttbt5_otel, name), name


def test_public_callables_have_docstrings():
    for name in ttbt5_otel.__all__:
        obj = getattr(ttbt5_otel, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
