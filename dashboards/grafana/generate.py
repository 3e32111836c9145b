"""Generate the Grafana dashboards of ttbt5-otel as JSON models.

    python dashboards/grafana/generate.py            # rewrite dashboards/*.json
    python dashboards/grafana/generate.py --check    # exit 1 if they are stale

Plain dictionaries in the shape of Grafana's dashboard JSON model (schema version 39), so
nothing beyond the standard library is needed. Every panel queries the Prometheus
datasource with the fixed uid ``ttbt5-prometheus`` (provisioning/datasources/prometheus.yml),
sets a unit, and filters application series by the ``$service`` and ``$instance`` template
variables (collector series by ``$collector``). Every range query over a histogram's
``_bucket`` series shows exemplars: points that open their trace in Jaeger (the
Prometheus datasource's ``exemplarTraceIdDestinations``). Names are the Prometheus names
that the collector's exporter produces; where a unit suffix depends on the SDK's unit
(``ttbt5_circuit_breaker_state`` or ``..._state_ratio``) or on the collector's telemetry
settings (``otelcol_..._spans`` or ``..._spans_total``), queries match both.

``queries.py`` beside this file reads the generated JSON and returns every query with the
variables filled in, for checks against a running Prometheus.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GRID_WIDTH = 24
OUTPUT_DIR = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "ttbt5-prometheus"}

# Selectors of the template variables.
APP = 'service_name="$service", instance=~"$instance"'
COLLECTOR = 'instance=~"$collector"'
RATE = "[$__rate_interval]"

Json = dict[str, Any]


# --- building blocks


def shows_exemplars(expr: str, *, instant: bool = False) -> bool:
    """Whether a query shows exemplars: every range query over a histogram's buckets.

    The collector exposes the trace ids attached to histogram buckets as OpenMetrics
    exemplars (label ``trace_id``), Prometheus stores them (``exemplar-storage``) and the
    provisioned Prometheus datasource links that label to the Jaeger datasource, so a
    point on a latency panel opens its trace. Grafana asks for exemplars of range queries
    only; an instant query (a bar gauge, a table) has none to show.
    """
    return "_bucket" in expr and not instant


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> Json:
    """One Prometheus query of a panel; histogram range queries show exemplars."""
    query: Json = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto"}
    if instant:
        query["instant"] = True
        query["range"] = False
    if table:
        query["format"] = "table"
    if shows_exemplars(expr, instant=instant):
        query["exemplar"] = True
    return query


def panel(
    title: str,
    description: str,
    unit: str,
    targets: list[Json],
    *,
    kind: str = "timeseries",
    width: int = 12,
    height: int = 8,
    mappings: list[Json] | None = None,
    options: Json | None = None,
    custom: Json | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    """A panel without position; ``dashboard`` assigns ids and grid positions.

    ``thresholds`` are (lower bound, colour) steps, the first one's bound ``None`` (from
    minus infinity).
    """
    defaults: Json = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    if mappings:
        defaults["mappings"] = mappings
    if thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in thresholds],
        }
    if custom:
        defaults["custom"] = custom
    for ref_id, query in zip("ABCDEFGH", targets, strict=False):
        query["refId"] = ref_id
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": targets,
        "gridPos": {"w": width, "h": height},
    }


def row(title: str, *, repeat: str = "") -> Json:
    """A row header (no query, no unit).

    ``repeat`` names a variable to repeat the row by: Grafana shows one copy of the row and
    of the panels under it for each selected value, with the variable set to that value.
    """
    header: Json = {"type": "row", "title": title, "collapsed": False, "panels": []}
    if repeat:
        header["repeat"] = repeat
    return header


def _states(*names: tuple[int, str, str]) -> list[Json]:
    """Value mappings: number -> text and colour."""
    return [
        {
            "type": "value",
            "options": {
                str(value): {"text": text, "color": color, "index": index}
                for index, (value, text, color) in enumerate(names)
            },
        }
    ]


def _variable(name: str, label: str, query: str, *, multi: bool) -> Json:
    variable: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "options": [],
    }
    if multi:
        variable["allValue"] = ".*"
    return variable


# Every application series carries service_name (the collector's resource_constant_labels),
# so the label itself lists every service, whichever metrics it sends.
SERVICE_VARIABLE = _variable("service", "Service", "label_values(service_name)", multi=False)
INSTANCE_VARIABLE = _variable(
    "instance", "Instance", 'label_values({service_name="$service"}, instance)', multi=True
)
COLLECTOR_VARIABLE = _variable(
    "collector",
    "Collector",
    'label_values({__name__=~"otelcol_process_uptime.*"}, instance)',
    multi=True,
)


def dashboard(uid: str, title: str, description: str, panels: list[Json], **extra: Any) -> Json:
    """A dashboard: lays panels out left to right, top to bottom, in a 24-column grid."""
    x = y = row_height = 0
    laid_out = []
    for number, item in enumerate(panels, start=1):
        placed = dict(item, id=number)
        if item["type"] == "row":
            if x:
                y += row_height
            placed["gridPos"] = {"x": 0, "y": y, "w": GRID_WIDTH, "h": 1}
            x, y, row_height = 0, y + 1, 0
        else:
            width, height = item["gridPos"]["w"], item["gridPos"]["h"]
            if x + width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            placed["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
            x += width
            row_height = max(row_height, height)
        laid_out.append(placed)
    variables = extra.pop("variables", [SERVICE_VARIABLE, INSTANCE_VARIABLE])
    links = extra.pop("links", [])
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ttbt5", "opentelemetry"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "ttbt5 dashboards",
                "tags": ["ttbt5"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            },
            *links,
        ],
        "templating": {"list": variables},
        "panels": laid_out,
    }


def _quantiles(metric: str, selector: str) -> list[Json]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({metric}{{{selector}}}{RATE})))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


# --- dashboards

SPAN_CALLS = "traces_span_metrics_calls_total"
SPAN_ERRORS = f'{SPAN_CALLS}{{{APP}, status_code="STATUS_CODE_ERROR"}}'
# Entry spans are a service's requests: SERVER and CONSUMER spans, and root INTERNAL spans
# the SDK marks ttbt5_entry="true" (the same selection as the recording rules).
ERROR_STATUS = 'status_code="STATUS_CODE_ERROR"'
ENTRY_KINDS = ('span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"', 'ttbt5_entry="true"')


def _entry_rate(metric: str, by: str, extra: str = "") -> str:
    """Per-second rate of ``metric`` over the entry spans of the service, summed ``by``."""
    more = f", {extra}" if extra else ""
    parts = " or ".join(f"rate({metric}{{{APP}, {kind}{more}}}{RATE})" for kind in ENTRY_KINDS)
    return f"sum by ({by}) ({parts})"


def _entry_quantiles(metric: str) -> list[Json]:
    return [
        target(f"histogram_quantile({q}, {_entry_rate(metric, 'le')})", f"p{round(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]


CACHE = "ttbt5_cache_requests_total"
CACHE_KEYS = "cache_name, cache_level"
BREAKER_STATE = '{__name__=~"ttbt5_circuit_breaker_state(_ratio)?", ' + APP
RETRY_BUCKETS = '{__name__=~"ttbt5_retry_attempts(_ratio)?_bucket", ' + APP + "}"


# Both SDK counters whose error_type says an item was lost: the processor's and the exporter's.
_SDK_LOSSES = "otel_sdk_(processor_{signal}_processed|exporter_{signal}_exported)_total"


def _per_signal(prefix: str) -> list[Json]:
    """One query per signal (spans, metric points, log records) of a collector counter."""
    return [
        target(
            f'sum(rate({{__name__=~"{prefix}_{signal}(_total)?", {COLLECTOR}}}{RATE}))',
            legend,
        )
        for signal, legend in (
            ("spans", "spans"),
            ("metric_points", "metric points"),
            ("log_records", "log records"),
        )
    ]


def service_overview() -> Json:
    """Request rate, errors and latency of one service."""
    panels = [
        row("Requests (span metrics)"),
        panel(
            "Request rate by route",
            "Entry spans (server, consumer and root spans) ended per second, by HTTP route "
            "(empty for spans without one) and status.",
            "reqps",
            [
                target(
                    _entry_rate(SPAN_CALLS, "http_route, status_code"),
                    "{{http_route}} {{status_code}}",
                )
            ],
        ),
        panel(
            "Error ratio",
            "Share of entry spans ending with status ERROR; the alert Ttbt5HighErrorRatio "
            "watches this per instance over 5m.",
            "percentunit",
            [
                target(
                    f"({_entry_rate(SPAN_CALLS, 'instance', ERROR_STATUS)}"
                    f" or {_entry_rate(SPAN_CALLS, 'instance')} * 0)"
                    f" / {_entry_rate(SPAN_CALLS, 'instance')}",
                    "{{instance}}",
                )
            ],
        ),
        panel(
            "Request latency p50 / p95 / p99",
            "Quantiles of entry span durations: what callers of the service waited.",
            "s",
            _entry_quantiles("traces_span_metrics_duration_seconds_bucket"),
        ),
        panel(
            "Spans by kind",
            "All spans ended per second, entry or not, split by span kind.",
            "ops",
            [target(f"sum by (span_kind) (rate({SPAN_CALLS}{{{APP}}}{RATE}))", "{{span_kind}}")],
        ),
        panel(
            "Operation latency p50 / p95 / p99",
            "Quantiles of ttbt5_operation_duration (functions decorated with monitor_performance).",
            "s",
            _quantiles("ttbt5_operation_duration_seconds_bucket", APP),
        ),
        panel(
            "Operation p95 by function",
            "95th percentile duration of each monitored function.",
            "s",
            [
                target(
                    "histogram_quantile(0.95, sum by (code_namespace, code_function, le) "
                    f"(rate(ttbt5_operation_duration_seconds_bucket{{{APP}}}{RATE})))",
                    "{{code_namespace}}.{{code_function}}",
                )
            ],
        ),
        panel(
            "Operations by outcome",
            "Calls of monitored functions per second, by outcome.",
            "ops",
            [
                target(
                    "sum by (outcome) "
                    f"(rate(ttbt5_operation_duration_seconds_count{{{APP}}}{RATE}))",
                    "{{outcome}}",
                )
            ],
        ),
        row("HTTP (instrumentations)"),
        panel(
            "HTTP server latency p95 by route",
            "95th percentile of http.server.request.duration, recorded by the server "
            "instrumentation (Flask, FastAPI, Django, ...) per route.",
            "s",
            [
                target(
                    "histogram_quantile(0.95, sum by (http_route, le) "
                    f"(rate(http_server_request_duration_seconds_bucket{{{APP}}}{RATE})))",
                    "{{http_route}}",
                )
            ],
        ),
        panel(
            "HTTP server requests by route and status",
            "Requests per second by route and response status code, from "
            "http.server.request.duration.",
            "reqps",
            [
                target(
                    "sum by (http_route, http_response_status_code) "
                    f"(rate(http_server_request_duration_seconds_count{{{APP}}}{RATE}))",
                    "{{http_route}} {{http_response_status_code}}",
                )
            ],
        ),
        panel(
            "HTTP client latency p95 by server",
            "95th percentile of http.client.request.duration (httpx, requests, ...) per "
            "called server.",
            "s",
            [
                target(
                    "histogram_quantile(0.95, sum by (server_address, le) "
                    f"(rate(http_client_request_duration_seconds_bucket{{{APP}}}{RATE})))",
                    "{{server_address}}",
                )
            ],
        ),
        row("Errors"),
        panel(
            "Error events by type, severity and category",
            "Errors recorded by handle_errors per second (ttbt5_errors_total), including "
            "those recovered with a fallback.",
            "ops",
            [
                target(
                    "sum by (error_type, error_severity, error_category) "
                    f"(rate(ttbt5_errors_total{{{APP}}}{RATE}))",
                    "{{error_type}} ({{error_severity}}, {{error_category}})",
                )
            ],
        ),
        panel(
            "Top failing operations",
            "Span names with the most ERROR spans over the selected time range.",
            "short",
            [
                target(
                    "topk(10, sum by (span_name, span_kind) "
                    f"(increase({SPAN_ERRORS}[$__range]))) > 0",
                    instant=True,
                    table=True,
                )
            ],
            kind="table",
            options={"showHeader": True},
        ),
        row("Alerts"),
        panel(
            "Active alerts",
            "Firing alerts of this service, and alerts without a service (collector, "
            "scrape targets).",
            "none",
            [
                target(
                    'ALERTS{alertstate="firing", service_name=~"$service|"}',
                    instant=True,
                    table=True,
                )
            ],
            kind="table",
            width=24,
            options={"showHeader": True},
        ),
    ]
    return dashboard(
        "ttbt5-service-overview",
        "ttbt5 / Service overview",
        "Request rate, error ratio, latency and error events of one service.",
        panels,
        links=[ERROR_BUDGET_LINK],
    )


def caching() -> Json:
    """Hit ratio, results, evictions, entries and latency of every cache level."""
    hits = f'sum by ({CACHE_KEYS}) (rate({CACHE}{{{APP}, cache_result="hit"}}{RATE}))'
    requests = f"sum by ({CACHE_KEYS}) (rate({CACHE}{{{APP}}}{RATE}))"
    panels = [
        panel(
            "Hit ratio by cache and level",
            "Hits over all requests (hits, misses, errors) of each level; Ttbt5LowCacheHitRatio "
            "fires below 70 % at 1 request/s or more.",
            "percentunit",
            [target(f"({hits} or {requests} * 0) / {requests}", "{{cache_name}} {{cache_level}}")],
        ),
        panel(
            "Requests by result",
            "Cache lookups per second by cache, level and result (hit, miss, error).",
            "reqps",
            [
                target(
                    f"sum by ({CACHE_KEYS}, cache_result) (rate({CACHE}{{{APP}}}{RATE}))",
                    "{{cache_name}} {{cache_level}} {{cache_result}}",
                )
            ],
        ),
        panel(
            "Evictions by reason",
            "Entries removed per second: size (bound reached), expired (TTL), invalidated.",
            "ops",
            [
                target(
                    f"sum by ({CACHE_KEYS}, cache_eviction_reason) "
                    f"(rate(ttbt5_cache_evictions_total{{{APP}}}{RATE}))",
                    "{{cache_name}} {{cache_level}} {{cache_eviction_reason}}",
                )
            ],
        ),
        panel(
            "Entries",
            "Entries held by each level.",
            "short",
            [
                target(
                    f"sum by ({CACHE_KEYS}) (ttbt5_cache_entries{{{APP}}})",
                    "{{cache_name}} {{cache_level}}",
                )
            ],
        ),
        panel(
            "L2 / disk operation latency",
            "p50 and p95 duration of remote and disk cache operations.",
            "s",
            [
                target(
                    f"histogram_quantile({q}, sum by ({CACHE_KEYS}, cache_operation, le) "
                    f"(rate(ttbt5_cache_operation_duration_seconds_bucket{{{APP}}}{RATE})))",
                    f"{{{{cache_name}}}} {{{{cache_level}}}} {{{{cache_operation}}}} p{p}",
                )
                for q, p in ((0.5, 50), (0.95, 95))
            ],
        ),
        panel(
            "Coalesced loads",
            "Callers per second that joined a load already in flight instead of starting "
            "their own (single-flight).",
            "ops",
            [
                target(
                    f"sum by (cache_name) (rate(ttbt5_cache_coalesced_total{{{APP}}}{RATE}))",
                    "{{cache_name}}",
                )
            ],
        ),
    ]
    return dashboard(
        "ttbt5-caching",
        "ttbt5 / Caching",
        "Hit ratio, results, evictions, entries and latency of every cache and level.",
        panels,
    )


def resilience() -> Json:
    """Circuit breakers and retries."""
    state = (
        f"max by (instance, circuit_breaker_name) "
        f'({BREAKER_STATE}, circuit_breaker_state="open"}}) * 2'
        " + on (instance, circuit_breaker_name) max by (instance, circuit_breaker_name) "
        f'({BREAKER_STATE}, circuit_breaker_state="half_open"}})'
    )
    panels = [
        panel(
            "Circuit breaker state",
            "Current state of every breaker over time; Ttbt5CircuitBreakerOpen fires after "
            "1m not closed.",
            "none",
            [target(state, "{{circuit_breaker_name}} {{instance}}")],
            kind="state-timeline",
            width=24,
            mappings=_states(
                (0, "closed", "green"), (1, "half-open", "yellow"), (2, "open", "red")
            ),
            options={"showValue": "never", "mergeValues": True},
        ),
        panel(
            "State transitions",
            "Transitions per second between states.",
            "ops",
            [
                target(
                    "sum by (circuit_breaker_name, from, to) "
                    f"(rate(ttbt5_circuit_breaker_transitions_total{{{APP}}}{RATE}))",
                    "{{circuit_breaker_name}} {{from}} → {{to}}",
                )
            ],
        ),
        panel(
            "Rejected calls",
            "Calls per second refused without running because the breaker was open.",
            "ops",
            [
                target(
                    "sum by (circuit_breaker_name) (rate(ttbt5_circuit_breaker_calls_total"
                    f'{{{APP}, result="rejected"}}{RATE}))',
                    "{{circuit_breaker_name}}",
                )
            ],
        ),
        panel(
            "Breaker calls by result",
            "Calls per second through each breaker: success, failure, ignored, rejected.",
            "ops",
            [
                target(
                    "sum by (circuit_breaker_name, result) "
                    f"(rate(ttbt5_circuit_breaker_calls_total{{{APP}}}{RATE}))",
                    "{{circuit_breaker_name}} {{result}}",
                )
            ],
        ),
        panel(
            "Retry outcomes",
            "Retried calls per second by outcome; failed_with_retry means every attempt "
            "failed (Ttbt5RetriesExhausted).",
            "ops",
            [
                target(
                    f"sum by (retry_name, retry_outcome) (rate(ttbt5_retry_calls_total{{{APP}}}"
                    f"{RATE}))",
                    "{{retry_name}} {{retry_outcome}}",
                )
            ],
        ),
        panel(
            "Attempts per call (distribution)",
            "How many attempts calls needed over the selected time range, by histogram "
            "bucket (upper bound).",
            "short",
            [
                target(
                    f"sum by (le) (increase({RETRY_BUCKETS}[$__range]))",
                    "{{le}}",
                    instant=True,
                )
            ],
            kind="bargauge",
            options={"displayMode": "basic", "orientation": "vertical"},
        ),
        panel(
            "Attempts per call p50 / p90",
            "Attempt count quantiles per retried operation.",
            "short",
            [
                target(
                    f"histogram_quantile({q}, sum by (retry_name, le) "
                    f"(rate({RETRY_BUCKETS}{RATE})))",
                    f"{{{{retry_name}}}} p{p}",
                )
                for q, p in ((0.5, 50), (0.9, 90))
            ],
        ),
    ]
    return dashboard(
        "ttbt5-resilience",
        "ttbt5 / Resilience",
        "Circuit breaker states, transitions and rejected calls; retry outcomes and attempts.",
        panels,
    )


def runtime_pipeline() -> Json:
    """The process, the SDK's export queues, the collector and Prometheus scraping."""
    panels = [
        row("Process"),
        panel(
            "CPU",
            "CPU time per second by mode; 100 % is one full core.",
            "percentunit",
            [
                target(
                    "sum by (instance, cpu_mode) "
                    f"(rate(process_cpu_time_seconds_total{{{APP}}}{RATE}))",
                    "{{instance}} {{cpu_mode}}",
                )
            ],
        ),
        panel(
            "Memory and limit",
            "Resident memory and the memory limit (cgroup limit, else physical memory).",
            "bytes",
            [
                target(
                    f"max by (instance) (process_memory_usage_bytes{{{APP}}})",
                    "{{instance}} resident",
                ),
                target(
                    f"max by (instance) (ttbt5_process_memory_limit_bytes{{{APP}}})",
                    "{{instance}} limit",
                ),
            ],
        ),
        panel(
            "Memory used of limit",
            "Resident memory over the limit; Ttbt5HighMemoryUsage warns above 80 %.",
            "percentunit",
            [
                target(
                    f"max by (instance) (process_memory_usage_bytes{{{APP}}})"
                    " / on (instance) "
                    f"max by (instance) (ttbt5_process_memory_limit_bytes{{{APP}}})",
                    "{{instance}}",
                )
            ],
        ),
        panel(
            "SDK export losses",
            "Spans and log records the SDK lost, by reason: its batch queue was full "
            "(queue_full), the exit budget ran out (timeout), the disk spool was full "
            "(spool_full), or the collector did not accept the export (export_failed).",
            "ops",
            [
                target(
                    f'sum by (instance, error_type) (rate({{__name__=~"{name}", '
                    f'{APP}, error_type!=""}}{RATE}))',
                    f"{{{{instance}}}} {what} {{{{error_type}}}}",
                )
                for what, name in (
                    ("spans", "otel_sdk_(processor_span_processed|exporter_span_exported)_total"),
                    (
                        "log records",
                        "otel_sdk_(processor_log_processed|exporter_log_exported)_total",
                    ),
                )
            ],
        ),
        row("Collector"),
        panel(
            "Accepted items",
            "Items per second the collector's receivers accepted.",
            "ops",
            _per_signal("otelcol_receiver_accepted"),
        ),
        panel(
            "Refused items",
            "Items per second the receivers refused (memory limiter); Ttbt5CollectorRefusingData.",
            "ops",
            _per_signal("otelcol_receiver_refused"),
        ),
        panel(
            "Span metrics refused",
            "Span-metric points per second the memory limiter refused after the span-metrics "
            "connector made them: no sender retries these; Ttbt5CollectorRefusingData.",
            "ops",
            [
                target(
                    f"sum (collector:otelcol_span_metrics_refused:rate5m{{{COLLECTOR}}})",
                    "span metric points",
                )
            ],
        ),
        panel(
            "Failed exports",
            "Items per second exporters failed to send, or dropped because their queue was "
            "full; Ttbt5CollectorExportFailing (send), Ttbt5CollectorExportQueueFull (queue).",
            "ops",
            [
                target(
                    "sum by (exporter) "
                    f'(rate({{__name__=~"otelcol_exporter_{kind}_failed_{signal}(_total)?", '
                    f"{COLLECTOR}}}{RATE}))",
                    f"{{{{exporter}}}} {signal.replace('_', ' ')} {what}",
                )
                for kind, what in (("send", "send failed"), ("enqueue", "queue full"))
                for signal in ("spans", "metric_points", "log_records")
            ],
        ),
        panel(
            "Exporter queue",
            "Batches waiting in each exporter's sending queue, and the queue's capacity.",
            "short",
            [
                target(
                    f"max by (exporter) (otelcol_exporter_queue_size{{{COLLECTOR}}})",
                    "{{exporter}} size",
                ),
                target(
                    f"max by (exporter) (otelcol_exporter_queue_capacity{{{COLLECTOR}}})",
                    "{{exporter}} capacity",
                ),
            ],
        ),
        row("Scraping"),
        panel(
            "Scrape targets up",
            "1 when Prometheus scraped the target, 0 when it failed; Ttbt5TargetDown.",
            "none",
            [target("max by (job, instance) (up)", "{{job}} {{instance}}")],
            kind="state-timeline",
            width=24,
            mappings=_states((0, "down", "red"), (1, "up", "green")),
            options={"showValue": "never", "mergeValues": True},
        ),
    ]
    return dashboard(
        "ttbt5-runtime-pipeline",
        "ttbt5 / Runtime & pipeline",
        "Process CPU and memory, SDK export losses, the collector's pipeline and scrape health.",
        panels,
        variables=[SERVICE_VARIABLE, INSTANCE_VARIABLE, COLLECTOR_VARIABLE],
    )


# --- error budget: the SLO series of dashboards/prometheus/rules/ttbt5-slos.yml
# (generated from dashboards/slos.yaml by dashboards/prometheus/render_slos.py)

ERROR_BUDGET_UID = "ttbt5-error-budget"
# The SLO series carry service_name and slo (no instance): one service, one or more SLOs.
SLO = 'service_name="$service", slo=~"$slo"'
# The windows of slo:sli_error:ratio_rate<window>: the short and long windows of the four
# Ttbt5ErrorBudgetBurn alerts (14.4x over 1h and 5m, 6x over 6h and 30m, 3x over 1d and 2h,
# 1x over 3d and 6h). The demo profile keeps these names for windows ten times shorter.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BURN_RATES = ((1, "yellow"), (3, "orange"), (6, "red"), (14.4, "dark-red"))
# Red once overspent, orange in the last quarter, green before.
BUDGET_THRESHOLDS: list[tuple[float | None, str]] = [(None, "red"), (0, "orange"), (0.25, "green")]
# Columns of the burn-rate alerts table left out: the same on every row of one SLO.
ALERT_LABELS_HIDDEN = (
    "Time",
    "Value",
    "__name__",
    "alertname",
    "alertstate",
    "service_name",
    "sli",
    "slo_window",
)
# Legends: an SLO's series are split by deployment environment (empty when apps set none).
ENVIRONMENT = "{{deployment_environment_name}}"

SLO_SERVICE_VARIABLE = _variable(
    "service", "Service", "label_values(slo:sli_total:rate5m, service_name)", multi=False
)
SLO_VARIABLE = _variable(
    "slo", "SLO", 'label_values(slo:objective:ratio{service_name=~"$service"}, slo)', multi=True
)
# From the service overview to the error budget of the same service and time range.
ERROR_BUDGET_LINK: Json = {
    "type": "link",
    "title": "Error budget",
    "tooltip": "SLOs, error budget and burn rates of this service",
    "url": f"/d/{ERROR_BUDGET_UID}/{ERROR_BUDGET_UID}",
    "icon": "dashboard",
    "includeVars": True,
    "keepTime": True,
    "targetBlank": False,
    "asDropdown": False,
    "tags": [],
}


def _slo(record: str) -> str:
    """``record`` of the selected service and SLOs."""
    return f"{record}{{{SLO}}}"


def _burn_rate(window: str) -> str:
    """How many times faster than the budget allows the SLO failed over ``window``."""
    return (
        f"{_slo(f'slo:sli_error:ratio_rate{window}')}"
        f" / on (service_name, slo) group_left {_slo('slo:error_budget:ratio')}"
    )


def error_budget() -> Json:
    """The SLOs of one service: budget left, SLI against objective, burn rates, alerts."""
    stat = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "graphMode": "area",
        "textMode": "value_and_name",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    dashed = {"thresholdsStyle": {"mode": "dashed"}}
    objective_line = {
        "matcher": {"id": "byName", "options": "objective"},
        "properties": [
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
        ],
    }
    panels = [
        row("SLO $slo", repeat="slo"),
        panel(
            "Error budget remaining",
            "Share of the error budget left over the SLO's window (slo_window, e.g. 30d): "
            "100 % untouched, 0 % spent, below 0 overspent (the SLO is missed for the window). "
            "Red when overspent, orange in the last quarter.",
            "percentunit",
            [target(_slo("slo:error_budget_remaining:ratio"), ENVIRONMENT)],
            kind="stat",
            width=6,
            thresholds=BUDGET_THRESHOLDS,
            decimals=1,
            options=dict(stat, colorMode="background"),
        ),
        panel(
            "SLI over the SLO window",
            "Share of good requests over the SLO's window, beside the objective the SLO "
            "promises: while the SLI is at or above the objective, budget is left.",
            "percentunit",
            [
                target(f"1 - {_slo('slo:sli_error:ratio_period')}", f"SLI {ENVIRONMENT}"),
                target(_slo("slo:objective:ratio"), "objective"),
            ],
            kind="stat",
            width=6,
            decimals=3,
            options=dict(stat, colorMode="none"),
        ),
        panel(
            "SLI over time",
            "Share of good requests over the last 5m and 1h, against the objective (red "
            "dashed line). Time under the line spends budget; Burn rate by window shows how "
            "fast.",
            "percentunit",
            [
                target(
                    f"1 - {_slo(f'slo:sli_error:ratio_rate{window}')}", f"{window} {ENVIRONMENT}"
                )
                for window in ("5m", "1h")
            ]
            + [target(_slo("slo:objective:ratio"), "objective")],
            overrides=[objective_line],
        ),
        panel(
            "Burn rate by window",
            "Share of bad requests over each window divided by the error budget: 1 spends the "
            "budget exactly over the SLO's window, 14.4 spends 2 % of a 30d budget in an hour. "
            "Dashed lines at the burn rates of Ttbt5ErrorBudgetBurn: it pages when both 1h and "
            "5m exceed 14.4, or 6h and 30m exceed 6, and opens a ticket when 1d and 2h exceed "
            "3, or 3d and 6h exceed 1.",
            "suffix:x",
            [target(_burn_rate(window), f"{window} {ENVIRONMENT}") for window in SLO_WINDOWS],
            thresholds=[(None, "green"), *BURN_RATES],
            custom=dashed,
        ),
        panel(
            "Error budget remaining over time",
            "The error budget left over the SLO's window, as it evolves: a steep fall is a "
            "fast burn, a slow decline a steady one. Dashed lines at 25 % and 0 (spent).",
            "percentunit",
            [target(_slo("slo:error_budget_remaining:ratio"), ENVIRONMENT)],
            thresholds=BUDGET_THRESHOLDS,
            custom=dashed,
        ),
        panel(
            "Requests and bad requests",
            "Requests per second the SLO counts over 5m, and those that are bad for it "
            "(failed for availability, slower than the threshold for latency).",
            "reqps",
            [
                target(_slo("slo:sli_total:rate5m"), f"requests {ENVIRONMENT}"),
                target(_slo("slo:sli_bad:rate5m"), f"bad {ENVIRONMENT}"),
            ],
        ),
        dict(
            panel(
                "Burn-rate alerts firing",
                "Ttbt5ErrorBudgetBurn alerts of this SLO firing now: response page (critical) "
                "or ticket (warning), the burn rate and the two windows that exceed it. Empty "
                "while the budget burns at a sustainable rate.",
                "none",
                [
                    target(
                        f'ALERTS{{alertname="Ttbt5ErrorBudgetBurn", alertstate="firing", {SLO}}}',
                        instant=True,
                        table=True,
                    )
                ],
                kind="table",
                options={"showHeader": True},
            ),
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": dict.fromkeys(ALERT_LABELS_HIDDEN, True)},
                }
            ],
        ),
    ]
    return dashboard(
        ERROR_BUDGET_UID,
        "ttbt5 / Error budget",
        "Error budget, SLI and burn rates of each SLO of one service (dashboards/slos.yaml), "
        "and its firing burn-rate alerts.",
        panels,
        variables=[SLO_SERVICE_VARIABLE, SLO_VARIABLE],
    )


def dashboards() -> dict[str, Json]:
    """File name -> dashboard model."""
    return {
        "service-overview.json": service_overview(),
        "caching.json": caching(),
        "resilience.json": resilience(),
        "runtime-pipeline.json": runtime_pipeline(),
        "error-budget.json": error_budget(),
    }


def render() -> dict[str, str]:
    """File name -> JSON text, as committed."""
    return {
        name: json.dumps(model, indent=2, ensure_ascii=False) + "\n"
        for name, model in dashboards().items()
    }


def stale(directory: Path = OUTPUT_DIR) -> list[str]:
    """Unified diffs of the files in ``directory`` that differ from a fresh rendering."""
    diffs = []
    for name, text in render().items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            lines = difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True), str(path), name
            )
            diffs.append("".join(lines))
    return diffs


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    arguments = parser.parse_args(argv)
    if arguments.check:
        diffs = stale(arguments.output_dir)
        sys.stdout.write("".join(diffs))
        return 1 if diffs else 0
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        path = arguments.output_dir / name
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
