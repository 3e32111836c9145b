"""Telemetry settings and how they are resolved.

Precedence, highest first: explicit ``init()`` argument > ``TTBT5_*`` environment variable >
standard ``OTEL_*`` environment variable > default. Every value is validated here, once, and
a bad one raises ``ConfigError`` naming the option and the variable it came from.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast
from urllib.parse import unquote, urlsplit

from ttbt5_otel._exceptions import ConfigError
from ttbt5_otel._sdk.typecheck import check_value

Protocol = Literal["grpc", "http/protobuf"]
ExporterKind = Literal["otlp", "console", "none"]
_PROTOCOLS: Final = ("grpc", "http/protobuf")
_EXPORTERS: Final = ("otlp", "console", "none")
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
DEFAULT_GRPC_ENDPOINT: Final = "http://127.0.0.1:4317"
DEFAULT_HTTP_ENDPOINT: Final = "http://127.0.0.1:4318"


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """Resolved settings of one ``init()`` call. Field docs name their variables."""

    service_name: str = "unknown_service"
    """TTBT5_SERVICE_NAME, OTEL_SERVICE_NAME, or service.name in OTEL_RESOURCE_ATTRIBUTES."""
    service_version: str | None = None
    """TTBT5_SERVICE_VERSION, or service.version in OTEL_RESOURCE_ATTRIBUTES."""
    service_namespace: str | None = None
    """TTBT5_SERVICE_NAMESPACE, or service.namespace in OTEL_RESOURCE_ATTRIBUTES."""
    environment: str | None = None
    """TTBT5_ENVIRONMENT; becomes ``deployment.environment.name``."""
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    """Extra resource attributes; OTEL_RESOURCE_ATTRIBUTES is merged underneath."""
    exporter: ExporterKind = "otlp"
    """TTBT5_EXPORTER: ``otlp`` (default), ``console`` (readable output, no collector), ``none``."""
    endpoint: str = DEFAULT_GRPC_ENDPOINT
    """TTBT5_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT. Base URL; HTTP adds /v1/<signal>."""
    protocol: Protocol = "grpc"
    """TTBT5_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL: ``grpc`` or ``http/protobuf``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """TTBT5_OTLP_HEADERS, OTEL_EXPORTER_OTLP_HEADERS: ``key=value,key2=value2``."""
    timeout: float = 10.0
    """TTBT5_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT: seconds per export (as the Python SDK)."""
    insecure: bool | None = None
    """TTBT5_OTLP_INSECURE, OTEL_EXPORTER_OTLP_INSECURE; default: plaintext for http:// URLs."""
    certificate_file: str | None = None
    """TTBT5_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CERTIFICATE: CA bundle for TLS."""
    sample_ratio: float = 1.0
    """TTBT5_SAMPLE_RATIO, OTEL_TRACES_SAMPLER_ARG: parent-based ratio sampling, 0..1."""
    metric_export_interval: float = 10.0
    """TTBT5_METRIC_EXPORT_INTERVAL (s), OTEL_METRIC_EXPORT_INTERVAL (ms)."""
    max_queue_size: int = 2048
    """TTBT5_MAX_QUEUE_SIZE, OTEL_BSP_MAX_QUEUE_SIZE: spans/logs buffered before dropping."""
    max_export_batch_size: int = 512
    """TTBT5_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE."""
    schedule_delay: float = 1.0
    """TTBT5_SCHEDULE_DELAY (s), OTEL_BSP_SCHEDULE_DELAY (ms): batch export period."""
    instrument_asyncio: bool = True
    """TTBT5_INSTRUMENT_ASYNCIO: asyncio instrumentation on/off."""
    runtime_metrics: bool = True
    """TTBT5_RUNTIME_METRICS: process CPU, memory, threads and file descriptors."""
    logging_bridge: bool = True
    """TTBT5_LOGGING_BRIDGE: stdlib ``logging`` records become OTel log records."""
    log_level: str = "INFO"
    """TTBT5_LOG_LEVEL: lowest stdlib level the logging bridge forwards."""
    shutdown_timeout: float = 5.0
    """TTBT5_SHUTDOWN_TIMEOUT: upper bound (s) for the flush at shutdown/exit."""
    scrub_patterns: tuple[str, ...] = ()
    """TTBT5_SCRUB_PATTERNS: extra secret-looking names (comma separated) to redact."""
    scrub_allow: tuple[str, ...] = ()
    """TTBT5_SCRUB_ALLOW: exact names never redacted although they match (``tokens_used``)."""
    metric_cardinality_limit: int = 2000
    """TTBT5_METRIC_CARDINALITY_LIMIT: attribute sets per instrument before overflow."""


_Parser = Callable[[str, str, str], Any]


def _parse_str(option: str, raw: str, source: str) -> str:
    value = raw.strip()
    if not value:
        raise ConfigError(option, "must not be empty", source)
    return value


def _parse_bool(option: str, raw: str, source: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(option, f"{raw!r} is not a boolean (use true/false)", source)


def _parse_float(option: str, raw: str, source: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(option, f"{raw!r} is not a number", source) from None


def _parse_int(option: str, raw: str, source: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(option, f"{raw!r} is not an integer", source) from None


def _parse_millis(option: str, raw: str, source: str) -> float:
    return _parse_float(option, raw, source) / 1000.0


def _parse_pairs(option: str, raw: str, source: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(option, f"{item.strip()!r} is not a key=value pair", source)
        pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


def _parse_list(option: str, raw: str, source: str) -> tuple[str, ...]:
    del option, source
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _parse_lower(option: str, raw: str, source: str) -> str:
    return _parse_str(option, raw, source).lower()


def _parse_upper(option: str, raw: str, source: str) -> str:
    return _parse_str(option, raw, source).upper()


@dataclass(frozen=True, slots=True)
class _Option:
    parse: _Parser
    env: tuple[str, ...]


_OPTIONS: Final[dict[str, _Option]] = {
    "service_name": _Option(_parse_str, ("TTBT5_SERVICE_NAME", "OTEL_SERVICE_NAME")),
    "service_version": _Option(_parse_str, ("TTBT5_SERVICE_VERSION",)),
    "service_namespace": _Option(_parse_str, ("TTBT5_SERVICE_NAMESPACE",)),
    "environment": _Option(_parse_str, ("TTBT5_ENVIRONMENT",)),
    "resource_attributes": _Option(_parse_pairs, ()),
    "exporter": _Option(_parse_lower, ("TTBT5_EXPORTER",)),
    "endpoint": _Option(_parse_str, ("TTBT5_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")),
    "protocol": _Option(_parse_lower, ("TTBT5_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")),
    "headers": _Option(_parse_pairs, ("TTBT5_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")),
    "timeout": _Option(_parse_float, ("TTBT5_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")),
    "insecure": _Option(_parse_bool, ("TTBT5_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")),
    "certificate_file": _Option(
        _parse_str, ("TTBT5_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
    ),
    "sample_ratio": _Option(_parse_float, ("TTBT5_SAMPLE_RATIO", "OTEL_TRACES_SAMPLER_ARG")),
    "metric_export_interval": _Option(_parse_float, ("TTBT5_METRIC_EXPORT_INTERVAL",)),
    "max_queue_size": _Option(_parse_int, ("TTBT5_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE")),
    "max_export_batch_size": _Option(
        _parse_int, ("TTBT5_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    ),
    "schedule_delay": _Option(_parse_float, ("TTBT5_SCHEDULE_DELAY",)),
    "instrument_asyncio": _Option(_parse_bool, ("TTBT5_INSTRUMENT_ASYNCIO",)),
    "runtime_metrics": _Option(_parse_bool, ("TTBT5_RUNTIME_METRICS",)),
    "logging_bridge": _Option(_parse_bool, ("TTBT5_LOGGING_BRIDGE",)),
    "log_level": _Option(_parse_upper, ("TTBT5_LOG_LEVEL",)),
    "shutdown_timeout": _Option(_parse_float, ("TTBT5_SHUTDOWN_TIMEOUT",)),
    "scrub_patterns": _Option(_parse_list, ("TTBT5_SCRUB_PATTERNS",)),
    "scrub_allow": _Option(_parse_list, ("TTBT5_SCRUB_ALLOW",)),
    "metric_cardinality_limit": _Option(_parse_int, ("TTBT5_METRIC_CARDINALITY_LIMIT",)),
}

# Standard variables whose unit differs from ours (milliseconds instead of seconds).
_MILLIS_ENV: Final[dict[str, tuple[str, str]]] = {
    "metric_export_interval": ("OTEL_METRIC_EXPORT_INTERVAL", "ms"),
    "schedule_delay": ("OTEL_BSP_SCHEDULE_DELAY", "ms"),
}


def _from_environment(name: str, environ: Mapping[str, str]) -> tuple[Any, str] | None:
    option = _OPTIONS[name]
    for var in option.env:
        raw = environ.get(var)
        if raw is not None and raw.strip():
            return option.parse(name, raw, var), var
    millis = _MILLIS_ENV.get(name)
    if millis is not None:
        raw = environ.get(millis[0])
        if raw is not None and raw.strip():
            return _parse_millis(name, raw, millis[0]), millis[0]
    return None


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TelemetryConfig)


def _coerce(name: str, value: object, source: str) -> Any:
    """Parse a string like its variable would be; check any other value against the type."""
    if isinstance(value, str) and name not in ("endpoint", "certificate_file"):
        return _OPTIONS[name].parse(name, value, source)
    return check_value(name, value, _field_types()[name], source)


def resolve_config(
    explicit: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, object] | None = None,
    file_source: str = "config file",
) -> TelemetryConfig:
    """Merge arguments, environment, a config file section and defaults, then validate.

    Precedence: ``explicit`` > ``TTBT5_*`` > ``OTEL_*`` > ``file_values`` > default.
    """
    explicit = dict(explicit or {})
    file_values = dict(file_values or {})
    environ = os.environ if environ is None else environ
    for given, source in ((explicit, "argument"), (file_values, file_source)):
        unknown = sorted(set(given) - set(_OPTIONS))
        if unknown:
            known = ", ".join(sorted(_OPTIONS))
            raise ConfigError(unknown[0], f"unknown option; known options are: {known}", source)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in _OPTIONS:
        if name in explicit and explicit[name] is not None:
            values[name] = _coerce(name, explicit[name], "argument")
            sources[name] = "argument"
            continue
        found = _from_environment(name, environ)
        if found is not None:
            values[name], sources[name] = found
        elif name in file_values and file_values[name] is not None:
            values[name] = _coerce(name, file_values[name], file_source)
            sources[name] = file_source

    _apply_resource_env(values, sources, environ)
    if "endpoint" not in values and values.get("protocol") == "http/protobuf":
        values["endpoint"] = DEFAULT_HTTP_ENDPOINT
    config = TelemetryConfig(**values)
    _validate(config, sources)
    return config


def _apply_resource_env(
    values: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]
) -> None:
    raw = environ.get("OTEL_RESOURCE_ATTRIBUTES")
    if not raw:
        return
    from_env = _parse_pairs("resource_attributes", raw, "OTEL_RESOURCE_ATTRIBUTES")
    for key, name in (
        ("service.name", "service_name"),
        ("service.version", "service_version"),
        ("service.namespace", "service_namespace"),
        ("deployment.environment.name", "environment"),
    ):
        value = from_env.pop(key, None)
        if value and name not in values:
            values[name] = value
            sources[name] = "OTEL_RESOURCE_ATTRIBUTES"
    merged = {**from_env, **cast("Mapping[str, str]", values.get("resource_attributes", {}))}
    values["resource_attributes"] = merged


def _validate(config: TelemetryConfig, sources: Mapping[str, str]) -> None:
    def check(ok: bool, option: str, message: str) -> None:
        if not ok:
            raise ConfigError(option, message, sources.get(option))

    check(
        config.exporter in _EXPORTERS,
        "exporter",
        f"{config.exporter!r} is not one of {', '.join(_EXPORTERS)}",
    )
    check(
        config.protocol in _PROTOCOLS,
        "protocol",
        f"{config.protocol!r} is not one of {', '.join(_PROTOCOLS)}",
    )
    _validate_endpoint(config.endpoint, sources.get("endpoint"))
    check(
        0.0 <= config.sample_ratio <= 1.0,
        "sample_ratio",
        f"{config.sample_ratio} is outside 0..1",
    )
    for name in ("timeout", "metric_export_interval", "schedule_delay", "shutdown_timeout"):
        value = getattr(config, name)
        check(value > 0, name, f"{value} must be a positive number of seconds")
    for name in ("max_queue_size", "max_export_batch_size", "metric_cardinality_limit"):
        value = getattr(config, name)
        check(value >= 1, name, f"{value} must be at least 1")
    check(
        config.max_export_batch_size <= config.max_queue_size,
        "max_export_batch_size",
        "must not exceed max_queue_size",
    )
    check(
        config.log_level in _LOG_LEVELS,
        "log_level",
        f"{config.log_level!r} is not one of {', '.join(_LOG_LEVELS)}",
    )
    check(bool(config.service_name.strip()), "service_name", "must not be empty")


def _validate_endpoint(endpoint: str, source: str | None) -> None:
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("endpoint", f"{endpoint!r} is not a valid URL: {exc}", source) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "endpoint",
            f"{endpoint!r} is not a valid URL (expected http(s)://host:port)",
            source,
        )
    del port


def environment_variables() -> dict[str, tuple[str, ...]]:
    """For each option, the variables read, highest precedence first."""
    out: dict[str, tuple[str, ...]] = {}
    for name, option in _OPTIONS.items():
        extra = (_MILLIS_ENV[name][0],) if name in _MILLIS_ENV else ()
        out[name] = option.env + extra
    return out
