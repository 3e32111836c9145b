"""The public surface is exactly what the documentation promises."""

import inspect
import subprocess
import sys
import typing

import ttbt5_otel

DOCUMENTED = {
    "ScrubAction",
    "ScrubMatch",
    "Instrumentation",
    "instrument_app",
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
    # the types public functions return
    "Binding",
    "BoundedCounter",
    "BoundedGauge",
    "BoundedHistogram",
    "BoundedUpDownCounter",
    "CacheDecorator",
    "CachedAsyncFunction",
    "CachedSyncFunction",
    "ErrorScope",
    "SpanScope",
    "TelemetryOptions",
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


def _package_classes(annotation: object) -> set[type]:
    found: set[type] = set()
    if isinstance(annotation, type) and annotation.__module__.startswith("ttbt5_otel"):
        found.add(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and origin.__module__.startswith("ttbt5_otel"):
        found.add(origin)
    for argument in typing.get_args(annotation):
        found |= _package_classes(argument)
    return found


def test_types_that_public_functions_return_are_exported():
    exported = {getattr(ttbt5_otel, name) for name in ttbt5_otel.__all__}
    missing = []
    for name in ttbt5_otel.__all__:
        obj = getattr(ttbt5_otel, name)
        if not inspect.isfunction(obj):
            continue
        for returned in _package_classes(typing.get_type_hints(obj).get("return")):
            if returned not in exported:
                missing.append(f"{name} -> {returned.__qualname__}")
    assert not missing


def test_import_loads_neither_the_sdk_nor_the_optional_parts():
    """``import ttbt5_otel`` needs only the OpenTelemetry API; the rest loads on first use."""
    code = (
        "import sys, ttbt5_otel\n"
        "heavy = ('opentelemetry.sdk', 'ttbt5_otel._app', 'ttbt5_otel._cache', "
        "'ttbt5_otel._cli', 'ttbt5_otel._resilience', 'asyncio', 'tenacity', 'aiocache', "
        "'http.server')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
        "ttbt5_otel.init, ttbt5_otel.cached, ttbt5_otel.retry, ttbt5_otel.Settings\n"
        "print('opentelemetry.sdk.trace' in sys.modules, 'ttbt5_otel._cache' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == ["[]", "True True"]
