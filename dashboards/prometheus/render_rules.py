"""Render the ttbt5 alerting and recording rules from one definition.

Every threshold, rate window and ``for:`` duration of the bundled alerts is defined once,
in this file, and written into ``rules/ttbt5-recording.yml`` and ``rules/ttbt5-alerts.yml``.
The same definition produces the thresholds table of ``docs/runbooks.md``; a test checks
that the committed rule files and that table equal what this script renders.

    python dashboards/prometheus/render_rules.py              # rewrite rules/ttbt5-*.yml
    python dashboards/prometheus/render_rules.py --check      # exit 1 if they are stale
    python dashboards/prometheus/render_rules.py --table      # print the docs table
    python dashboards/prometheus/render_rules.py --fast --output-dir /tmp/fast-rules

``--fast`` writes a copy for tests that cannot wait minutes: every ``for:`` becomes 0s,
groups are evaluated every second and rate windows shrink to 30s (each of these can be
set on its own with ``--for-scale``, ``--interval`` and ``--window``). Rule names stay the
same, so a recording rule called ``...:rate5m`` then holds a 30s rate.

Needs only the standard library and PyYAML.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES_DIR = HERE / "rules"
RECORDING_FILE = "ttbt5-recording.yml"
ALERTS_FILE = "ttbt5-alerts.yml"

# The one place the runbook links are built from; --runbook-base overrides it.
RUNBOOK_BASE = "https://github.com/ttbt5/ttbt5-otel/blob/main/docs/runbooks.md"

# Where alert links to the evidence lead: the Jaeger query service (API and, in builds with
# one, its UI) and VictoriaLogs. --jaeger-url and --victorialogs-url override them.
JAEGER_URL = "http://127.0.0.1:16686"
VICTORIALOGS_URL = "http://127.0.0.1:9428"
# Jaeger's search for failed spans: the attribute the collector gives them
# (otel-collector.yaml, transform/searchable_errors), URL-encoded.
ERROR_TRACES_FILTER = "tags=%7B%22otel.status_code%22%3A%22ERROR%22%7D"
# How far before the evaluation the evidence links look: the rate window and the longest
# for: of the service alerts, with room to spare.
EVIDENCE_LOOKBACK = 3600

# Rate window of every recording rule and alert (the "over 5 minutes" of the alerts).
WINDOW = "5m"

# Labels that identify one process of one service. The collector derives them from the
# resource of every metric it re-exposes (otel-collector.yaml, resource_constant_labels;
# instance is service.instance.id).
INSTANCE = "service_name, deployment_environment_name, instance"

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd])$")
_PLACEHOLDER = re.compile(r"\$\{(\w+)(?::([^}]*))?\}")


def parse_duration(text: str) -> int:
    """Seconds of a simple Prometheus duration such as ``30s``, ``5m`` or ``1h``."""
    match = _DURATION.match(text)
    if match is None:
        msg = f"duration {text!r}: expected a number and one of s, m, h, d (e.g. 5m)"
        raise argparse.ArgumentTypeError(msg)
    return int(match.group(1)) * _SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for ``seconds`` (``300`` -> ``5m``)."""
    for unit in ("d", "h", "m"):
        size = _SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fill(template: str, params: dict[str, Any]) -> str:
    """Replace ``${name}`` / ``${name:spec}`` with ``format(params[name], spec)``.

    Prometheus templates (``{{ $labels.x }}``) never contain ``${``, so both coexist.
    """

    def replace(match: re.Match[str]) -> str:
        return format(params[match.group(1)], match.group(2) or "")

    return _PLACEHOLDER.sub(replace, template)


@dataclass(frozen=True)
class Alert:
    """One alerting rule; ``params`` feed the ``${...}`` placeholders of its texts."""

    name: str
    severity: str
    anchor: str
    for_seconds: int
    expr: str
    condition: str
    summary: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """What a rendering may change: durations and where runbooks live."""

    for_scale: float = 1.0
    interval: str | None = None
    window: str = WINDOW
    runbook_base: str = RUNBOOK_BASE
    jaeger_url: str = JAEGER_URL
    victorialogs_url: str = VICTORIALOGS_URL

    def for_duration(self, alert: Alert) -> str:
        """The ``for:`` of ``alert`` in this rendering."""
        return format_duration(round(alert.for_seconds * self.for_scale))

    def params(self, alert: Alert) -> dict[str, Any]:
        """Values for the placeholders of ``alert``'s texts."""
        return {
            "window": self.window,
            "for": self.for_duration(alert),
            "instance": INSTANCE,
            "severity": alert.severity,
            **alert.params,
        }


_SIGNALS = ("spans", "metric_points", "log_records")


def _label(vector: str, name: str, value: str) -> str:
    """``vector`` with the label ``name`` set to ``value``."""
    return f'label_replace(\n{textwrap.indent(vector, "  ")},\n  "{name}", "{value}", "", ""\n)'


def _per_signal(by: str, families: dict[str, str]) -> str:
    """Rate of collector counters, one series per signal (and per family when several).

    Each counter family (``otelcol_receiver_refused``...) exists once per signal, with the
    same labels; a single rate() over a regular expression of all their names would give
    series with equal label sets once the names are dropped, which Prometheus refuses.
    So each name gets its own rate(), labelled with its signal (and the family's label
    value), and the parts are joined with ``or``. The ``(_total)?`` accepts both the
    collector's default self-metric names and those with the counter suffix.
    """
    parts = []
    for label_value, family in families.items():
        for signal in _SIGNALS:
            part = _label(
                f"sum by ({by}) (\n"
                f'  rate({{__name__=~"{family}_{signal}(_total)?"}}[${{window}}])\n'
                ")",
                "signal",
                signal,
            )
            parts.append(_label(part, "failure", label_value) if label_value else part)
    return "\nor\n".join(parts)


# Entry spans: what a service was asked to do. SERVER and CONSUMER spans, plus root INTERNAL
# spans (marked ttbt5_entry="true" by the SDK) of apps that only use decorators; the client
# and internal spans under a request would otherwise count it several times over.
ENTRY_MATCHERS = ('span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"', 'ttbt5_entry="true"')


def entry_rate(metric: str, by: str, extra: str = "") -> str:
    """``sum by (by) (rate(...))`` of ``metric`` over entry spans only (``extra`` matchers)."""
    rates = [
        f"rate({metric}{{{matcher}{', ' + extra if extra else ''}}}[${{window}}])"
        for matcher in ENTRY_MATCHERS
    ]
    joined = "\n  or\n  ".join(rates)
    return f"sum by ({by}) (\n  {joined}\n)"


RECORDING_RULES: list[tuple[str, str]] = [
    ("instance:ttbt5_requests:rate5m", entry_rate("traces_span_metrics_calls_total", INSTANCE)),
    (
        "instance:ttbt5_request_errors:rate5m",
        entry_rate("traces_span_metrics_calls_total", INSTANCE, 'status_code="STATUS_CODE_ERROR"'),
    ),
    # 0 for instances with traffic but no error series, no value without traffic.
    (
        "instance:ttbt5_request_error_ratio:rate5m",
        f"""
        (
          instance:ttbt5_request_errors:rate5m
          or
          instance:ttbt5_requests:rate5m * 0
        )
        / on ({INSTANCE})
        (instance:ttbt5_requests:rate5m > 0)
        """,
    ),
    (
        "instance:ttbt5_request_duration_seconds:p95_5m",
        "histogram_quantile(0.95,\n"
        + entry_rate("traces_span_metrics_duration_seconds_bucket", f"{INSTANCE}, le")
        + "\n)",
    ),
    # Per route, for the service dashboard; spans without http.route share one empty route.
    (
        "instance_route:ttbt5_requests:rate5m",
        entry_rate("traces_span_metrics_calls_total", f"{INSTANCE}, http_route, status_code"),
    ),
    # A missing or zero limit gives no value rather than a division by zero.
    (
        "instance:ttbt5_process_memory_usage:ratio",
        f"""
        max by ({INSTANCE}) (process_memory_usage_bytes)
        / on ({INSTANCE})
        (max by ({INSTANCE}) (ttbt5_process_memory_limit_bytes) > 0)
        """,
    ),
    (
        "instance_cache:ttbt5_cache_requests:rate5m",
        f"""
        sum by ({INSTANCE}, cache_name, cache_level) (
          rate(ttbt5_cache_requests_total[${{window}}])
        )
        """,
    ),
    # Hits over all requests (hits, misses and errors) of one level of one cache.
    (
        "instance_cache:ttbt5_cache_hit_ratio:rate5m",
        f"""
        (
          sum by ({INSTANCE}, cache_name, cache_level) (
            rate(ttbt5_cache_requests_total{{cache_result="hit"}}[${{window}}])
          )
          or
          instance_cache:ttbt5_cache_requests:rate5m * 0
        )
        / on ({INSTANCE}, cache_name, cache_level)
        (instance_cache:ttbt5_cache_requests:rate5m > 0)
        """,
    ),
    # Items refused by each receiver, per signal: what senders were told to retry. The
    # memory limiter's refusals of data a receiver brought in are counted here too (its error
    # travels back to the receiver), and so is a full exporter queue (see the alerts).
    (
        "collector:otelcol_receiver_refused:rate5m",
        _per_signal("job, instance, receiver", {"": "otelcol_receiver_refused"}),
    ),
    # Items the memory limiter refused, per signal, whoever brought them: receivers, and the
    # span_metrics connector, which hands its metric points to the metrics pipeline on every
    # flush. The connector has no counter of its own in collector v0.161.0 (it only logs
    # "Failed ConsumeMetrics"), and no receiver counts what it loses, so only this counter
    # sees span metrics refused. Label: processor (the memory limiter's component id).
    (
        "collector:otelcol_memory_limiter_refused:rate5m",
        _per_signal("job, instance, processor", {"": "otelcol_processor_memory_limiter_refused"}),
    ),
    # Span metrics lost on their way into the metrics pipeline: metric points the memory
    # limiter refused that no receiver refused, since the connector is the only other source
    # of metric points in otel-collector.yaml. Both counters count data points; an instant of
    # skew between the two (a series born inside the window) is clamped at 0.
    (
        "collector:otelcol_span_metrics_refused:rate5m",
        """
        clamp_min(
          sum by (job, instance) (
            collector:otelcol_memory_limiter_refused:rate5m{signal="metric_points"}
          )
          - on (job, instance)
          (
            sum by (job, instance) (
              collector:otelcol_receiver_refused:rate5m{signal="metric_points"}
            )
            or
            sum by (job, instance) (
              collector:otelcol_memory_limiter_refused:rate5m{signal="metric_points"}
            ) * 0
          ),
          0
        )
        """,
    ),
    # Items each exporter failed to send (failure="send") or to queue ("enqueue"), per signal.
    (
        "collector:otelcol_exporter_failed:rate5m",
        _per_signal(
            "job, instance, exporter",
            {
                "send": "otelcol_exporter_send_failed",
                "enqueue": "otelcol_exporter_enqueue_failed",
            },
        ),
    ),
    # How full each exporter's sending queue is (0 to 1), per signal (data_type). Exporters
    # without a queue have neither gauge; a zero capacity gives no value.
    (
        "collector:otelcol_exporter_queue_usage:ratio",
        """
        max by (job, instance, exporter, data_type) (otelcol_exporter_queue_size)
        / on (job, instance, exporter, data_type)
        (max by (job, instance, exporter, data_type) (otelcol_exporter_queue_capacity) > 0)
        """,
    ),
]


def _error_ratio(severity: str, ratio: float) -> Alert:
    return Alert(
        name="Ttbt5HighErrorRatio",
        severity=severity,
        anchor="high-error-ratio",
        for_seconds=300,
        params={"ratio": ratio},
        expr="instance:ttbt5_request_error_ratio:rate5m > ${ratio}",
        condition="share of requests (entry spans) with status ERROR above ${ratio:.0%} "
        "over ${window}",
        summary="{{ $labels.service_name }}: over ${ratio:.0%} of requests fail",
        description=(
            "{{ $value | humanizePercentage }} of the requests (entry spans) of "
            "{{ $labels.service_name }} on instance {{ $labels.instance }} "
            "({{ $labels.deployment_environment_name }}) ended with status ERROR over the last "
            "${window}; the ${severity} threshold is ${ratio:.0%}."
        ),
    )


def _memory(severity: str, ratio: float, for_seconds: int) -> Alert:
    return Alert(
        name="Ttbt5HighMemoryUsage",
        severity=severity,
        anchor="high-memory-usage",
        for_seconds=for_seconds,
        params={"ratio": ratio},
        expr="instance:ttbt5_process_memory_usage:ratio > ${ratio}",
        condition="resident memory above ${ratio:.0%} of the process memory limit",
        summary="{{ $labels.service_name }}: memory above ${ratio:.0%} of its limit",
        description=(
            "Process {{ $labels.instance }} of {{ $labels.service_name }} "
            "({{ $labels.deployment_environment_name }}) uses {{ $value | humanizePercentage }} "
            "of its memory limit (cgroup limit, else physical memory); the ${severity} "
            "threshold is ${ratio:.0%}."
        ),
    )


# A target whose scrape Prometheus refused for its limits (sample_limit, label_limit,
# label_name_length_limit, label_value_length_limit of prometheus.yml). Prometheus 2.42
# sets up to 0 and still reports how many samples it read (scrape_samples_scraped > 0,
# where a target that does not answer reports 0), but its counters of limit refusals,
# prometheus_target_scrapes_exceeded_sample_limit_total and
# prometheus_target_scrape_pool_exceeded_label_limits_total, have no target label: they
# come from Prometheus scraping itself (job prometheus) and confirm that a limit, not a
# malformed page, refused the scrape. Needs that self-scrape; without it the alert is silent
# and Ttbt5TargetDown fires instead.
SCRAPE_LIMIT_EXCEEDED = (
    "(\n"
    "  scrape_samples_scraped > 0\n"
    "  and on (job, instance)\n"
    "  up == 0\n"
    ")\n"
    "and on ()\n"
    "(\n"
    "  sum(increase(prometheus_target_scrapes_exceeded_sample_limit_total[${window}])) > 0\n"
    "  or\n"
    "  sum(increase(prometheus_target_scrape_pool_exceeded_label_limits_total[${window}])) > 0\n"
    ")"
)


ALERTS: list[Alert] = [
    _error_ratio("warning", 0.05),
    _error_ratio("critical", 0.2),
    _memory("warning", 0.8, for_seconds=300),
    _memory("critical", 0.95, for_seconds=120),
    Alert(
        name="Ttbt5LowCacheHitRatio",
        severity="warning",
        anchor="low-cache-hit-ratio",
        for_seconds=900,
        params={"ratio": 0.7, "min_rate": 1},
        expr=(
            "instance_cache:ttbt5_cache_hit_ratio:rate5m < ${ratio}\n"
            "and on (${instance}, cache_name, cache_level)\n"
            "instance_cache:ttbt5_cache_requests:rate5m >= ${min_rate}"
        ),
        condition=(
            "hit ratio of a cache level below ${ratio:.0%} while it serves at least "
            "${min_rate} request/s"
        ),
        summary=(
            "{{ $labels.service_name }}: cache {{ $labels.cache_name }} "
            "({{ $labels.cache_level }}) hit ratio below ${ratio:.0%}"
        ),
        description=(
            "Only {{ $value | humanizePercentage }} of the requests to level "
            "{{ $labels.cache_level }} of cache {{ $labels.cache_name }} in "
            "{{ $labels.service_name }} on instance {{ $labels.instance }} "
            "({{ $labels.deployment_environment_name }}) were hits over the last ${window} "
            "(threshold ${ratio:.0%}, counted from ${min_rate} request/s)."
        ),
    ),
    Alert(
        name="Ttbt5HighLatency",
        severity="warning",
        anchor="high-latency",
        for_seconds=600,
        params={"seconds": 1},
        expr="instance:ttbt5_request_duration_seconds:p95_5m > ${seconds}",
        condition="95th percentile of request (entry span) durations above ${seconds} s "
        "over ${window}",
        summary="{{ $labels.service_name }}: p95 latency above ${seconds}s",
        description=(
            "95 % of the requests (entry spans) of {{ $labels.service_name }} on instance "
            "{{ $labels.instance }} ({{ $labels.deployment_environment_name }}) took up to "
            "{{ $value | humanizeDuration }} over the last ${window} "
            "(threshold ${seconds}s)."
        ),
    ),
    Alert(
        name="Ttbt5HealthCheckFailing",
        severity="critical",
        anchor="health-check-failing",
        for_seconds=120,
        expr=(
            "min by (${instance}, health_check) (\n"
            '  {__name__=~"ttbt5_health_status(_ratio)?"}\n'
            ") == 0"
        ),
        condition="a health check reports 0 (unhealthy)",
        summary=("{{ $labels.service_name }}: health check {{ $labels.health_check }} failing"),
        description=(
            "Health check {{ $labels.health_check }} of {{ $labels.service_name }} on "
            "instance {{ $labels.instance }} ({{ $labels.deployment_environment_name }}) "
            "has reported unhealthy for more than ${for}."
        ),
    ),
    Alert(
        name="Ttbt5CircuitBreakerOpen",
        severity="warning",
        anchor="circuit-breaker-open",
        for_seconds=60,
        expr=(
            "max by (${instance}, circuit_breaker_name) (\n"
            '  {__name__=~"ttbt5_circuit_breaker_state(_ratio)?", circuit_breaker_state="closed"}\n'
            ") == 0"
        ),
        condition="a circuit breaker not closed (open or half-open) for longer than ${for}",
        summary=(
            "{{ $labels.service_name }}: circuit breaker {{ $labels.circuit_breaker_name }} open"
        ),
        description=(
            "Circuit breaker {{ $labels.circuit_breaker_name }} of {{ $labels.service_name }} "
            "on instance {{ $labels.instance }} ({{ $labels.deployment_environment_name }}) "
            "has been open or half-open for more than ${for}: calls through it are rejected."
        ),
    ),
    Alert(
        name="Ttbt5RetriesExhausted",
        severity="warning",
        anchor="retries-exhausted",
        for_seconds=60,
        params={"failed": 'ttbt5_retry_calls_total{retry_outcome="failed_with_retry"}'},
        # A counter series appears with its first increment, which rate() cannot see:
        # series that did not exist one window ago count with their whole value.
        expr=(
            "sum by (${instance}, retry_name) (\n"
            "  (${failed}\n"
            "    unless ${failed} offset ${window})\n"
            "  or\n"
            "  increase(${failed}[${window}])\n"
            ") > 0"
        ),
        condition="a retried call failed after all its attempts in the last ${window}",
        summary=("{{ $labels.service_name }}: retries of {{ $labels.retry_name }} exhausted"),
        description=(
            "{{ $value | humanize }} calls of {{ $labels.retry_name }} in "
            "{{ $labels.service_name }} on instance {{ $labels.instance }} "
            "({{ $labels.deployment_environment_name }}) failed after all retry attempts "
            "in the last ${window}."
        ),
    ),
    Alert(
        name="Ttbt5CriticalErrors",
        severity="critical",
        anchor="critical-errors",
        for_seconds=60,
        params={"critical": 'ttbt5_errors_total{error_severity="critical"}'},
        # Errors the application itself declared critical (ErrorSeverity.CRITICAL through
        # handle_errors or the guide's ErrorManager), recovered by a fallback or not. Rare by
        # nature, so a new series (the first critical error of a process) is the usual case:
        # the same first-appearance form as Ttbt5RetriesExhausted.
        expr=(
            "sum by (${instance}, error_type, error_category) (\n"
            "  (${critical}\n"
            "    unless ${critical} offset ${window})\n"
            "  or\n"
            "  increase(${critical}[${window}])\n"
            ") > 0"
        ),
        condition="an error of severity critical was recorded (ttbt5_errors_total) in the "
        "last ${window}",
        summary=(
            "{{ $labels.service_name }}: critical {{ $labels.error_type }} errors "
            "({{ $labels.error_category }})"
        ),
        description=(
            "{{ $labels.service_name }} on instance {{ $labels.instance }} "
            "({{ $labels.deployment_environment_name }}) recorded {{ $value | humanize }} "
            "errors of type {{ $labels.error_type }} (category {{ $labels.error_category }}) "
            "with severity critical in the last ${window}."
        ),
    ),
    Alert(
        name="Ttbt5TelemetryLost",
        severity="warning",
        anchor="telemetry-lost",
        for_seconds=60,
        params={
            "lost": '{__name__=~"otel_sdk_(processor_(span|log)_processed'
            '|exporter_(span|log)_exported)(_total)?", error_type!=""}'
        },
        # The counts of an outage only arrive once the collector is back, often as a new
        # series whose first value is the whole loss, which increase() alone cannot see.
        expr=(
            "sum by (${instance}, error_type) (\n"
            "  (${lost}\n"
            "    unless ${lost} offset ${window})\n"
            "  or\n"
            "  increase(${lost}[${window}])\n"
            ") > 0"
        ),
        condition="the SDK counted spans or log records as lost in the last ${window}",
        summary=("{{ $labels.service_name }}: telemetry lost ({{ $labels.error_type }})"),
        description=(
            "{{ $labels.service_name }} on instance {{ $labels.instance }} "
            "({{ $labels.deployment_environment_name }}) lost {{ $value | humanize }} spans "
            "and log records in the last ${window} (error_type {{ $labels.error_type }}: "
            "queue_full, export_failed, timeout or spool_full). Traces and logs of that "
            "time are incomplete."
        ),
    ),
    # --- The collector watching itself.
    #
    # One incident, one alert: each lost or refused item is counted by several collector
    # counters on its way back (a full exporter queue returns an error that the receiver
    # counts as refused too; the memory limiter's refusals are counted by the limiter and by
    # the receiver). So each alert names one cause, and the receiver-side count only alerts
    # when no cause alert explains it:
    #
    #   memory limiter refuses (any signal, span metrics too) -> Ttbt5CollectorRefusingData
    #   receiver refuses, no exporter failing on that signal  -> Ttbt5CollectorRefusingData
    #   exporter queue full or nearly full                     -> Ttbt5CollectorExportQueueFull
    #   exporter gives up sending after its retries            -> Ttbt5CollectorExportFailing
    #
    # The memory limiter branch is never silenced by an exporter alert: it refuses every
    # signal, including those whose exporters are healthy, and the span metrics it refuses are
    # lost without any sender retrying them. A backend that is down fills the queue and then
    # fails sends: the queue alert stays quiet while the send alert fires for that exporter.
    Alert(
        name="Ttbt5CollectorRefusingData",
        severity="warning",
        anchor="collector-refusing-data",
        for_seconds=300,
        expr=(
            "(\n"
            "  sum by (job, instance, signal) (collector:otelcol_memory_limiter_refused:rate5m)\n"
            "  > 0\n"
            ")\n"
            "or\n"
            "(\n"
            "  sum by (job, instance, signal) (collector:otelcol_receiver_refused:rate5m) > 0\n"
            "  unless on (job, instance, signal)\n"
            "  sum by (job, instance, signal) (collector:otelcol_exporter_failed:rate5m) > 0\n"
            ")"
        ),
        condition="the collector's memory limiter or a receiver refuses spans, metric points "
        "or log records (span metrics included)",
        summary="Collector {{ $labels.instance }} refuses {{ $labels.signal }}",
        description=(
            "The collector {{ $labels.instance }} (job {{ $labels.job }}) has refused "
            "{{ $value | humanize }} {{ $labels.signal }}/s over the last ${window}, usually "
            "because its memory limiter is at the limit. Senders retry refused data, then "
            "drop it; refused metric points of the span_metrics connector are lost at once."
        ),
    ),
    Alert(
        name="Ttbt5CollectorExportQueueFull",
        severity="warning",
        anchor="collector-export-queue-full",
        for_seconds=300,
        params={"ratio": 0.9},
        # The value is the queue's fill ratio in both branches, so the description reads the
        # same whether the queue is full now or was full (and refused items) in the window.
        expr=(
            "(\n"
            "  max by (job, instance, exporter) (collector:otelcol_exporter_queue_usage:ratio)\n"
            "  >= ${ratio}\n"
            "  or\n"
            "  max by (job, instance, exporter) (collector:otelcol_exporter_queue_usage:ratio)\n"
            "  and on (job, instance, exporter)\n"
            "  sum by (job, instance, exporter) (\n"
            '    collector:otelcol_exporter_failed:rate5m{failure="enqueue"}\n'
            "  ) > 0\n"
            ")\n"
            "unless on (job, instance, exporter)\n"
            "sum by (job, instance, exporter) (\n"
            '  collector:otelcol_exporter_failed:rate5m{failure="send"}\n'
            ") > 0"
        ),
        condition="an exporter's sending queue is at least ${ratio:.0%} full, or refused items "
        "because it was full, over ${window}",
        summary="Collector {{ $labels.instance }}: queue of {{ $labels.exporter }} is full",
        description=(
            "The sending queue of exporter {{ $labels.exporter }} of the collector "
            "{{ $labels.instance }} (job {{ $labels.job }}) is "
            "{{ $value | humanizePercentage }} full (threshold ${ratio:.0%}) or refused new "
            "items in the last ${window} because it was full: the backend is slower than the "
            "data, or away. Refused items go back to the senders, which retry, then drop them."
        ),
    ),
    Alert(
        name="Ttbt5CollectorExportFailing",
        severity="warning",
        anchor="collector-export-failing",
        for_seconds=300,
        expr=(
            "sum by (job, instance, exporter) (\n"
            '  collector:otelcol_exporter_failed:rate5m{failure="send"}\n'
            ") > 0"
        ),
        condition="a collector exporter gives up sending spans, metric points or log records "
        "after its retries",
        summary="Collector {{ $labels.instance }} fails to export through {{ $labels.exporter }}",
        description=(
            "Exporter {{ $labels.exporter }} of the collector {{ $labels.instance }} "
            "(job {{ $labels.job }}) has failed to send {{ $value | humanize }} "
            "items/s over the last ${window}: this data is lost."
        ),
    ),
    Alert(
        name="Ttbt5ScrapeLimitExceeded",
        severity="critical",
        anchor="scrape-limit-exceeded",
        for_seconds=120,
        expr=SCRAPE_LIMIT_EXCEEDED,
        condition="Prometheus refuses a target's page for exceeding the job's sample_limit "
        "or label limits (prometheus.yml)",
        summary="Scrape of {{ $labels.instance }} ({{ $labels.job }}) exceeds its limits",
        description=(
            "Prometheus read {{ $value }} samples from {{ $labels.instance }} of job "
            "{{ $labels.job }} and refused the whole scrape: the page exceeds the job's "
            "sample_limit or a series exceeds its label limits (a cardinality blow-up). "
            "Every series of this target is missing until the page shrinks."
        ),
    ),
    Alert(
        name="Ttbt5TargetDown",
        severity="critical",
        anchor="target-down",
        for_seconds=120,
        # A scrape refused for its limits also sets up to 0: Ttbt5ScrapeLimitExceeded says
        # more, so this alert leaves those targets to it.
        expr=(
            "up == 0\nunless on (job, instance)\n(\n"
            + textwrap.indent(SCRAPE_LIMIT_EXCEEDED, "  ")
            + "\n)"
        ),
        condition="a Prometheus scrape target cannot be scraped for longer than ${for} "
        "(other than for its scrape limits)",
        summary="Scrape target {{ $labels.instance }} ({{ $labels.job }}) is down",
        description=(
            "Prometheus has failed to scrape {{ $labels.instance }} of job {{ $labels.job }} "
            "for more than ${for}: every metric from it (and every alert on them) is missing."
        ),
    ),
]


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so expressions stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def _expr(template: str, params: dict[str, Any]) -> str:
    lines = [line.rstrip() for line in fill(template, params).splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line)
    text = "\n".join(line[indent:] for line in lines)
    return text + "\n" if "\n" in text else text


def _group(name: str, rules: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    group: dict[str, Any] = {"name": name}
    if settings.interval is not None:
        group["interval"] = settings.interval
    group["rules"] = rules
    return group


def recording_rules(settings: Settings) -> dict[str, Any]:
    """The recording rules the alerts build on, as a rule-file mapping."""
    params = {"window": settings.window}
    rules = [{"record": name, "expr": _expr(expr, params)} for name, expr in RECORDING_RULES]
    return {"groups": [_group("ttbt5-instance", rules, settings)]}


def _window_query(offset: int) -> str:
    """A template query for the evaluation time plus ``offset`` seconds (may be negative)."""
    return f"time() + {offset}" if offset >= 0 else f"time() - {-offset}"


def evidence_links(settings: Settings, lookback: int = EVIDENCE_LOOKBACK) -> dict[str, str]:
    """Annotations linking an alert of one service to its error traces and ERROR logs.

    Templated from the alert's ``service_name`` label and the evaluation time (a template
    ``query`` of ``time()``; Prometheus re-renders annotations at every evaluation, so a
    firing alert's links keep covering its latest window). ``*_api_url`` answer JSON for
    scripts and ``ttbt5-otel``; the others open the stores' web UIs.
    """
    service = "{{ $labels.service_name | urlquery }}"
    start = f'{{{{ with query "{_window_query(-lookback)}" }}}}'
    end = f'{{{{ with query "{_window_query(300)}" }}}}'
    seconds = '{{ . | first | value | printf "%.0f" }}{{ end }}'
    micros = '{{ . | first | value | printf "%.0f" }}000000{{ end }}'
    # The collector gives failed spans the attribute otel.status_code=ERROR, which Jaeger
    # can search (otel-collector.yaml, transform/searchable_errors).
    traces_query = (
        f"service={service}&{ERROR_TRACES_FILTER}&start={start}{micros}&end={end}{micros}&limit=20"
    )
    # LogsQL: this service's records at ERROR severity or above, in the window.
    logs_query = (
        f"%22service.name%22%3A%22{service}%22%20severity_number%3A%3E%3D17"
        f"%20_time%3A%5B{start}{seconds}%2C{end}{seconds}%5D"
    )
    jaeger = settings.jaeger_url.rstrip("/")
    logs = settings.victorialogs_url.rstrip("/")
    return {
        "traces_url": f"{jaeger}/search?{traces_query}&lookback=custom",
        "traces_api_url": f"{jaeger}/api/traces?{traces_query}",
        "logs_url": f"{logs}/select/vmui/#/?query={logs_query}",
        "logs_api_url": f"{logs}/select/logsql/query?query={logs_query}&limit=100",
    }


def alert_rule(alert: Alert, settings: Settings) -> dict[str, Any]:
    """One alert as a rule mapping; alerts of a service link to its evidence."""
    params = settings.params(alert)
    expr = _expr(alert.expr, params)
    annotations = {
        "summary": fill(alert.summary, params),
        "description": fill(alert.description, params),
        "runbook_url": f"{settings.runbook_base}#{alert.anchor}",
    }
    # An alert that names a service (all but the collector's own) links to its evidence.
    if "$labels.service_name" in alert.summary:
        annotations.update(evidence_links(settings))
    return {
        "alert": alert.name,
        "expr": expr,
        "for": settings.for_duration(alert),
        "labels": {"severity": alert.severity},
        "annotations": annotations,
    }


def alerting_rules(settings: Settings) -> dict[str, Any]:
    """Every alert, as a rule-file mapping."""
    rules = [alert_rule(alert, settings) for alert in ALERTS]
    return {"groups": [_group("ttbt5-alerts", rules, settings)]}


def thresholds_table(settings: Settings | None = None) -> str:
    """The Markdown table of alerts, thresholds and durations kept in docs/runbooks.md."""
    settings = settings or Settings()
    lines = [
        "| alert | severity | fires when | for |",
        "|---|---|---|---|",
    ]
    for alert in ALERTS:
        condition = fill(alert.condition, settings.params(alert))
        lines.append(
            f"| [{alert.name}](#{alert.anchor}) | {alert.severity} | {condition} "
            f"| {settings.for_duration(alert)} |"
        )
    return "\n".join(lines) + "\n"


def _header(what: str, settings: Settings) -> str:
    lines = [
        f"# {what}",
        "#",
        "# Generated by dashboards/prometheus/render_rules.py from its single definition of",
        "# thresholds and durations: edit that file and run it, do not edit this one.",
    ]
    if settings != Settings():
        lines += [
            "#",
            (
                f"# Test copy: for: scaled by {settings.for_scale:g}, evaluation interval "
                f"{settings.interval or 'global'}, rate window {settings.window} "
                "(rule names unchanged)."
            ),
        ]
    return "\n".join(lines) + "\n\n"


def render(settings: Settings) -> dict[str, str]:
    """File name -> text of every rule file."""
    dump = {"Dumper": _Dumper, "sort_keys": False, "width": 1000, "allow_unicode": True}
    recording = _header(
        "Per-instance request, error, latency, memory and cache figures the ttbt5 alerts use.",
        settings,
    ) + yaml.dump(recording_rules(settings), **dump)  # type: ignore[call-overload]
    alerts = (
        _header("Alerts on ttbt5 applications, the collector and scrape targets.", settings)
        + "# Thresholds and durations (also in docs/runbooks.md):\n#\n"
        + "".join(f"#   {line}\n" for line in thresholds_table(settings).splitlines())
        + "\n"
        + yaml.dump(alerting_rules(settings), **dump)  # type: ignore[call-overload]
    )
    return {RECORDING_FILE: recording, ALERTS_FILE: alerts}


def write(directory: Path, settings: Settings) -> list[Path]:
    """Write every rule file into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(settings).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path, settings: Settings) -> list[str]:
    """Unified diffs of the files in ``directory`` that differ from a fresh rendering."""
    diffs = []
    for name, text in render(settings).items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        str(path),
                        "rendered",
                    )
                )
            )
    return diffs


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output-dir", type=Path, default=RULES_DIR)
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    parser.add_argument("--table", action="store_true", help="print the thresholds table")
    parser.add_argument("--fast", action="store_true", help="for: 0s, interval 1s, window 30s")
    parser.add_argument("--for-scale", type=float, help="multiply every for: by this factor")
    parser.add_argument(
        "--interval", type=_duration, help="evaluation interval of the rule groups, e.g. 1s"
    )
    parser.add_argument("--window", type=_duration, help="rate window instead of 5m, e.g. 30s")
    parser.add_argument("--runbook-base", default=RUNBOOK_BASE, help="URL of docs/runbooks.md")
    parser.add_argument("--jaeger-url", default=JAEGER_URL, help="base URL of the Jaeger query")
    parser.add_argument(
        "--victorialogs-url", default=VICTORIALOGS_URL, help="base URL of VictoriaLogs"
    )
    arguments = parser.parse_args(argv)
    if arguments.for_scale is not None and arguments.for_scale < 0:
        parser.error("--for-scale must not be negative")
    return arguments


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    arguments = _arguments(argv)
    fast = arguments.fast
    settings = Settings(
        for_scale=arguments.for_scale if arguments.for_scale is not None else (0 if fast else 1),
        interval=arguments.interval or ("1s" if fast else None),
        window=arguments.window or ("30s" if fast else WINDOW),
        runbook_base=arguments.runbook_base,
        jaeger_url=arguments.jaeger_url,
        victorialogs_url=arguments.victorialogs_url,
    )
    if arguments.table:
        sys.stdout.write(thresholds_table(settings))
        return 0
    if arguments.check:
        diffs = stale(arguments.output_dir, settings)
        sys.stdout.write("".join(diffs))
        return 1 if diffs else 0
    for path in write(arguments.output_dir, settings):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
