"""Telemetry settings: the options of ``init()``, declared once, and how they are resolved.

Precedence, highest first: explicit ``init()`` argument > ``TTBT5_*`` variable > standard
``OTEL_*`` variable (``OTEL_RESOURCE_ATTRIBUTES`` included) > the TTBT5 guide's variable
(``APP_NAME``, ``LOG_LEVEL``, ...: the ``aliases`` of an option) > the ``telemetry`` section
of the config file (then the guide's sections: ``application``, ``logging``, ...) > default.
Every value is validated here, once; a bad one raises ``ConfigError`` naming the option and
where it came from.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypedDict, cast

from ttbt5_otel._core.scrub import ScrubCallback
from ttbt5_otel._exceptions import ConfigError
from ttbt5_otel._sdk.checks import check_certificate, check_endpoint, normalized_headers
from ttbt5_otel._sdk.options import (
    Declared,
    check_bounds,
    declared,
    option,
    parse_pairs,
    resolve_section,
)

Protocol = Literal["grpc", "http/protobuf"]
ExporterKind = Literal["otlp", "console", "none"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET"]
DEFAULT_GRPC_ENDPOINT: Final = "http://127.0.0.1:4317"
DEFAULT_HTTP_ENDPOINT: Final = "http://127.0.0.1:4318"


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """Resolved settings of one ``init()`` call; each field is one option of the table."""

    service_name: str = option(
        "unknown_service",
        doc="service.name",
        env=("TTBT5_SERVICE_NAME", "OTEL_SERVICE_NAME"),
        aliases=("APP_NAME",),
    )
    service_version: str | None = option(
        None,
        doc="service.version",
        env=("TTBT5_SERVICE_VERSION",),
        aliases=("APP_VERSION",),
    )
    service_namespace: str | None = option(
        None,
        doc="service.namespace",
        env=("TTBT5_SERVICE_NAMESPACE",),
    )
    environment: str | None = option(
        None,
        doc="deployment.environment.name",
        env=("TTBT5_ENVIRONMENT",),
        aliases=("APP_ENVIRONMENT",),
    )
    resource_attributes: Mapping[str, str] = option(
        default_factory=dict[str, str],
        # OTEL_RESOURCE_ATTRIBUTES feeds several options at once: merged in resolve_config.
        doc="extra resource attributes; OTEL_RESOURCE_ATTRIBUTES (k=v,...) is merged underneath",
    )
    exporter: ExporterKind = option(
        "otlp",
        doc="otlp, console (readable output, no collector) or none",
        env=("TTBT5_EXPORTER",),
    )
    endpoint: str = option(
        DEFAULT_GRPC_ENDPOINT,
        doc="collector base URL; over HTTP the signal path (/v1/traces, ...) is added",
        env=("TTBT5_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        shown_default="http://127.0.0.1:4317 (:4318 for http/protobuf)",
    )
    protocol: Protocol = option(
        "grpc",
        doc="grpc or http/protobuf",
        env=("TTBT5_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    )
    headers: Mapping[str, str] = option(
        default_factory=dict[str, str],
        doc="export headers key=value,key2=value2; values are never printed",
        env=("TTBT5_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
    )
    timeout: float = option(
        10.0,
        doc="seconds per export (the standard variable in seconds too, as the SDK reads it)",
        env=("TTBT5_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
        positive=True,
        maximum=300.0,
    )
    insecure: bool | None = option(
        None,
        doc="plaintext gRPC; unset: plaintext for http:// endpoints",
        env=("TTBT5_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"),
    )
    certificate_file: str | None = option(
        None,
        doc="CA bundle for TLS",
        env=("TTBT5_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
    )
    sample_ratio: float = option(
        1.0,
        doc=(
            "parent-based ratio sampling of new traces, 0..1; below 1 the span-metric rates "
            "shrink by the same ratio (sample in the collector instead)"
        ),
        env=("TTBT5_SAMPLE_RATIO", "OTEL_TRACES_SAMPLER_ARG"),
        minimum=0.0,
        maximum=1.0,
    )
    metric_export_interval: float = option(
        10.0,
        doc="seconds between metric exports",
        env=("TTBT5_METRIC_EXPORT_INTERVAL",),
        millis_env=("OTEL_METRIC_EXPORT_INTERVAL",),
        positive=True,
        maximum=3600.0,
    )
    max_queue_size: int = option(
        2048,
        doc="spans and log records buffered before new ones are dropped (and counted)",
        env=("TTBT5_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"),
        minimum=1,
    )
    max_export_batch_size: int = option(
        512,
        doc="spans or log records per export; at most max_queue_size",
        env=("TTBT5_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        minimum=1,
    )
    schedule_delay: float = option(
        1.0,
        doc="seconds between batch exports",
        env=("TTBT5_SCHEDULE_DELAY",),
        millis_env=("OTEL_BSP_SCHEDULE_DELAY",),
        positive=True,
        maximum=60.0,
    )
    instrument: tuple[str, ...] = option(
        ("all",),
        doc="installed OpenTelemetry instrumentations to activate: all, none, or names "
        "(flask,httpx,...); OTEL_PYTHON_DISABLED_INSTRUMENTATIONS still applies",
        env=("TTBT5_INSTRUMENT",),
    )
    instrument_asyncio: bool = option(
        default=True, doc="asyncio instrumentation", env=("TTBT5_INSTRUMENT_ASYNCIO",)
    )
    runtime_metrics: bool = option(
        default=True,
        doc="process CPU, memory, threads and file descriptors (the guide's background "
        "monitoring; file: monitoring.enabled)",
        env=("TTBT5_RUNTIME_METRICS",),
        aliases=("MONITORING_ENABLED",),
    )
    logging_bridge: bool = option(
        default=True,
        doc="stdlib logging records also leave as OTel log records",
        env=("TTBT5_LOGGING_BRIDGE",),
    )
    log_level: LogLevel = option(
        "INFO",
        doc="lowest level the logging bridge exports and the log file gets (file: logging.level)",
        env=("TTBT5_LOG_LEVEL",),
        aliases=("LOG_LEVEL",),
    )
    log_file: str | None = option(
        None,
        doc="also write the records the bridge exports to this file, one JSON object per "
        "line, rotated by size; needs logging_bridge (file: logging.file, or "
        'logging.handlers ["file"] for logs/application.log)',
        env=("TTBT5_LOG_FILE",),
        aliases=("LOG_FILE",),
    )
    log_file_max_mb: float = option(
        10.0,
        doc="size in MiB at which the log file is rotated",
        env=("TTBT5_LOG_FILE_MAX_MB",),
        positive=True,
        maximum=10_240.0,
    )
    log_file_backups: int = option(
        5,
        doc="rotated log files kept beside it (.1 ... .N)",
        env=("TTBT5_LOG_FILE_BACKUPS",),
        minimum=1,
        maximum=1000,
    )
    shutdown_timeout: float = option(
        5.0,
        doc="upper bound in seconds of the flush at shutdown and exit",
        env=("TTBT5_SHUTDOWN_TIMEOUT",),
        positive=True,
        # Orchestrators kill a stopping process after a grace period (30 s by default in
        # Kubernetes); an exit flush longer than a couple of minutes only hides a hang.
        maximum=120.0,
    )
    spool_dir: str | None = option(
        None,
        doc="directory of a disk spool keeping spans and log records through a collector "
        "outage, resent in order when it is back (off when unset)",
        env=("TTBT5_SPOOL_DIR",),
    )
    spool_max_mb: float = option(
        256.0,
        doc="size cap of the disk spool in MiB; past it the oldest data is dropped and counted",
        env=("TTBT5_SPOOL_MAX_MB",),
        positive=True,
        maximum=1_048_576.0,
    )
    scrub_patterns: tuple[str, ...] = option(
        (),
        doc="extra secret-looking names to redact, comma separated",
        env=("TTBT5_SCRUB_PATTERNS",),
    )
    scrub_allow: tuple[str, ...] = option(
        (),
        doc="exact names never redacted although they match, e.g. tokens_used",
        env=("TTBT5_SCRUB_ALLOW",),
    )
    scrub_values: bool = option(
        default=True,
        doc="also redact credentials recognised by their shape in any value, span name, "
        "log body or stack trace (URL passwords, bearer tokens, JWTs, cloud keys, key=value)",
        env=("TTBT5_SCRUB_VALUES",),
    )
    scrub_callback: ScrubCallback | None = option(
        None,
        doc="function deciding each match (a ScrubMatch): return a ScrubAction or replacement "
        "text; init() argument only",
    )
    metric_cardinality_limit: int = option(
        2000,
        doc="attribute sets per instrument before otel.metric.overflow",
        env=("TTBT5_METRIC_CARDINALITY_LIMIT",),
        minimum=1,
    )


class TelemetryOptions(TypedDict, total=False):
    """The keyword options of ``init()``: the fields of ``TelemetryConfig``, all optional."""

    service_name: str
    service_version: str | None
    service_namespace: str | None
    environment: str | None
    resource_attributes: Mapping[str, str]
    exporter: ExporterKind
    endpoint: str
    protocol: Protocol
    headers: Mapping[str, str]
    timeout: float
    insecure: bool | None
    certificate_file: str | None
    sample_ratio: float
    metric_export_interval: float
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay: float
    instrument: tuple[str, ...]
    instrument_asyncio: bool
    runtime_metrics: bool
    logging_bridge: bool
    log_level: LogLevel
    log_file: str | None
    log_file_max_mb: float
    log_file_backups: int
    shutdown_timeout: float
    spool_dir: str | None
    spool_max_mb: float
    scrub_patterns: tuple[str, ...]
    scrub_allow: tuple[str, ...]
    scrub_values: bool
    scrub_callback: ScrubCallback | None
    metric_cardinality_limit: int


@functools.cache
def telemetry_options() -> tuple[Declared, ...]:
    """The telemetry rows of the option table (computed on first use: it evaluates types)."""
    return tuple(declared(TelemetryConfig, "telemetry"))


def resolve_config(
    explicit: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, object] | None = None,
    file_source: str = "config file",
) -> TelemetryConfig:
    """Merge arguments, environment, a config file section and defaults, then validate."""
    return resolve_with_sources(explicit, environ, file_values, file_source)[0]


def resolve_with_sources(
    explicit: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, object] | None = None,
    file_source: str = "config file",
    file_labels: Mapping[str, str] | None = None,
) -> tuple[TelemetryConfig, dict[str, str]]:
    """``resolve_config`` and where each value came from (option -> argument/variable/file).

    Options at their default have no entry. ``file_labels`` names the guide key a file
    value came from (``config/base.json: application.name``).
    """
    environ = os.environ if environ is None else environ
    values, sources = resolve_section(
        telemetry_options(),
        dict(explicit or {}),
        environ,
        dict(file_values or {}),
        file_source,
        file_labels,
    )
    _apply_resource_env(values, sources, environ)
    if "endpoint" not in values and values.get("protocol") == "http/protobuf":
        values["endpoint"] = DEFAULT_HTTP_ENDPOINT
    if "headers" in values:
        values["headers"] = normalized_headers(values["headers"], sources.get("headers"))
    config = TelemetryConfig(**values)
    _validate(config, sources)
    return config, sources


def _apply_resource_env(
    values: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]
) -> None:
    raw = environ.get("OTEL_RESOURCE_ATTRIBUTES")
    if not raw:
        return
    from_env = parse_pairs("resource_attributes", raw, "OTEL_RESOURCE_ATTRIBUTES")
    # A standard variable beats the guide's names (APP_NAME, ...) and the file; only an
    # argument or the option's own TTBT5_*/OTEL_* variable beats it.
    stronger = {row.name: {"argument", *row.spec.env} for row in telemetry_options()}
    for key, name in (
        ("service.name", "service_name"),
        ("service.version", "service_version"),
        ("service.namespace", "service_namespace"),
        ("deployment.environment.name", "environment"),
    ):
        value = from_env.pop(key, None)
        if value and sources.get(name) not in stronger[name]:
            values[name] = value
            sources[name] = "OTEL_RESOURCE_ATTRIBUTES"
    merged = {**from_env, **cast("Mapping[str, str]", values.get("resource_attributes", {}))}
    values["resource_attributes"] = merged


def _validate(config: TelemetryConfig, sources: Mapping[str, str]) -> None:
    for row in telemetry_options():
        check_bounds(row, getattr(config, row.name), sources.get(row.name))
    if config.max_export_batch_size > config.max_queue_size:
        raise ConfigError(
            "max_export_batch_size",
            f"{config.max_export_batch_size} must not exceed max_queue_size "
            f"({config.max_queue_size})",
            sources.get("max_export_batch_size"),
        )
    _validate_log_file(config, sources.get("log_file"))
    check_endpoint(config.endpoint, sources.get("endpoint"))
    check_certificate(config.certificate_file, sources.get("certificate_file"))
    _validate_instrument(config.instrument, sources.get("instrument"))


def _validate_log_file(config: TelemetryConfig, source: str | None) -> None:
    if config.log_file is None:
        return
    if not config.logging_bridge:
        raise ConfigError(
            "log_file",
            "the log file gets the records the logging bridge exports; "
            "turn logging_bridge on or unset log_file",
            source,
        )
    # Opening a FIFO for appending blocks until a reader comes; a directory cannot be opened.
    file = Path(config.log_file)
    if file.exists() and not file.is_file():
        raise ConfigError("log_file", f"{config.log_file} is not a regular file", source)


def _validate_instrument(names: tuple[str, ...], source: str | None) -> None:
    if not names:
        raise ConfigError("instrument", "must name at least one of all, none or a library", source)
    for keyword in ("all", "none"):
        if keyword in names and len(names) > 1:
            raise ConfigError(
                "instrument", f"{keyword!r} cannot be combined with other names {names!r}", source
            )
    for name in names:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError("instrument", f"{name!r} is not an instrumentation name", source)


def environment_variables() -> dict[str, tuple[str, ...]]:
    """For each option, the variables read, highest precedence first."""
    return {row.name: row.variables for row in telemetry_options()}
