"""``ttbt5-otel doctor``: show the effective settings and send one real span to the collector."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from ttbt5_otel._app.settings import load_settings, option_table
from ttbt5_otel._core.scrub import DEFAULT_SECRET_PATTERNS, REDACTED, Scrubber
from ttbt5_otel._exceptions import ConfigError
from ttbt5_otel._sdk.checks import mask_url
from ttbt5_otel._sdk.config import TelemetryConfig, environment_variables
from ttbt5_otel._sdk.exporters import otlp_exporters
from ttbt5_otel._sdk.providers import build_resource
from ttbt5_otel._version import __version__

# The OTLP exporters report why an export failed only through these loggers.
_EXPORTER_LOGGER: Final = "opentelemetry.exporter"
_NAME_WIDTH: Final = 32  # the longest key, monitoring.health_check_timeout, and a little


def describe_config(config: TelemetryConfig, environ: Mapping[str, str]) -> list[str]:
    """One ``name = value  (from SOURCE)`` line per setting, with secrets masked.

    The source is the one that won: ``argument``, a ``TTBT5_*``/``OTEL_*`` variable, the
    guide's alias (``APP_NAME``), the config file or the guide section a value was read from
    (``config/base.json: caching.max_memory_mb``); a setting without one is at its default.
    The other sections (logging, cache, monitoring, retry) follow, then what the config file
    asks for that is not applied.
    """
    try:
        settings = load_settings(environ=environ)
    except ConfigError as exc:
        # Telemetry options resolved without the file (the caller's config): show those.
        return [*_telemetry_lines(config, {}, environ), f"  configuration error: {exc}"]
    lines = _telemetry_lines(settings.telemetry, settings.sources, environ)
    for row in option_table():
        if row.section == "telemetry":
            continue
        value = getattr(getattr(settings, row.section), row.name)
        lines.append(_line(row.key, value, settings.sources.get(row.key)))
    lines += [f"  note: {note}" for note in settings.notes]
    return lines


def sampling_warning(config: TelemetryConfig) -> str | None:
    """What a head-sampling ratio below 1 does to the span metrics, or None at 1.

    The collector computes request, error and duration metrics from the spans it receives;
    spans dropped in the process never reach it, so every rate shrinks by the ratio.
    """
    ratio = config.sample_ratio
    if ratio >= 1.0:
        return None
    return (
        f"WARNING: sample_ratio={ratio:g} drops {1 - ratio:.0%} of new traces in this "
        f"process, before the collector sees them: the span-metric request and error rates "
        f"(and the dashboards and alerts built on them) read {ratio:.0%} of the true values. "
        "Keep sample_ratio at 1 and set TTBT5_TRACE_SAMPLING_PERCENT on the collector, "
        "which samples only what it stores, after computing the span metrics."
    )


def _line(name: str, value: object, source: str | None) -> str:
    suffix = f"  (from {source})" if source else ""
    return f"  {name:<{_NAME_WIDTH}} = {value!r}{suffix}"


def _telemetry_lines(
    config: TelemetryConfig, sources: Mapping[str, str], environ: Mapping[str, str]
) -> list[str]:
    scrubber = Scrubber((*DEFAULT_SECRET_PATTERNS, *config.scrub_patterns))
    variables = {**environment_variables(), "resource_attributes": ("OTEL_RESOURCE_ATTRIBUTES",)}
    lines = []
    for field in dataclasses.fields(config):
        value: object = getattr(config, field.name)
        if field.name == "headers":
            # Header values are credentials far more often than not (API keys, bearer tokens).
            value = dict.fromkeys(config.headers, REDACTED)
        elif field.name == "resource_attributes":
            value = scrubber.scrub(config.resource_attributes)
        elif field.name == "endpoint":
            value = mask_url(config.endpoint)
        elif scrubber.is_secret(field.name):
            value = REDACTED
        source = sources.get(field.name) or next(
            (v for v in variables.get(field.name, ()) if environ.get(v, "").strip()), None
        )
        lines.append(_line(field.name, value, source))
    return lines


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage().splitlines()[0])


def _test_span(config: TelemetryConfig) -> ReadableSpan:
    ids = RandomIdGenerator()
    context = SpanContext(
        ids.generate_trace_id(),
        ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    now = time.time_ns()
    return ReadableSpan(
        name="ttbt5-otel doctor",
        context=context,
        resource=build_resource(config),
        attributes={"ttbt5.doctor": True},
        kind=SpanKind.INTERNAL,
        instrumentation_scope=InstrumentationScope("ttbt5_otel.doctor", __version__),
        start_time=now,
        end_time=now + 1_000,
    )


def send_test_span(config: TelemetryConfig, timeout: float) -> tuple[bool, str]:
    """Export one span with the configured OTLP exporter; (accepted, failure reason).

    Exporter construction errors (an unreadable certificate file, say) propagate: they are
    configuration errors, not reachability problems.
    """
    config = dataclasses.replace(config, timeout=min(config.timeout, timeout))
    spans, metrics, logs = otlp_exporters(config)
    metrics.shutdown()
    logs.shutdown()  # type: ignore[no-untyped-call]
    collect = _Collect()
    logger = logging.getLogger(_EXPORTER_LOGGER)
    # The reason is part of the verdict line; the same text printed again as a log
    # record (with a traceback for some errors) would only bury it.
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(collect)
    try:
        result = spans.export([_test_span(config)])
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
        spans.shutdown()
    if result is SpanExportResult.SUCCESS:
        return True, ""
    if not collect.messages:
        return False, "the exporter reported a failure"
    reason = collect.messages[-1]
    # The final message of the HTTP exporter only says that it gave up; the first one
    # carries the cause (connection refused, HTTP status).
    if len(collect.messages) > 1:
        reason += f" (first error: {collect.messages[0]})"
    return False, reason
