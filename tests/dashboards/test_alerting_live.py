"""Rules, Alertmanager routes and dashboard queries on a real Prometheus and Alertmanager.

Prometheus scrapes small HTTP endpoints that serve, in the Prometheus text format and
with the labels the collector really exports, every series the rules and dashboards read,
at values that break every threshold (one of them over its job's sample_limit), and itself.
The rules are the fast copy of render_rules.py
(``for: 0s``, 1s evaluation, 30s windows); Alertmanager runs the repository's config with
the webhook pointed at a local receiver and the warning route's wait shortened.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards._support import (
    ALERTMANAGER_CONFIG,
    GRAFANA_DIR,
    PROMETHEUS_DIR,
    load_script,
    tool,
)
from tests.loopback import free_port, serve, stop_processes, wait_until, webhook

pytestmark = pytest.mark.integration

queries = load_script(GRAFANA_DIR / "queries.py", "ttbt5_grafana_queries")
# The shop app serves no HTTP: test_web_stack.py proves these panels.
HTTP_PANELS = {
    "HTTP server latency p95 by route",
    "HTTP server requests by route and status",
    "HTTP client latency p95 by server",
}

TIMEOUT = 45.0
APP = (
    'job="shop", instance="i-1", service_name="shop", deployment_environment_name="test", '
    'otel_scope_name="ttbt5_otel"'
)
SPAN = 'span_name="GET /", span_kind="SPAN_KIND_SERVER"'


def _app_metrics(t: float) -> list[str]:
    """Application series after ``t`` seconds: every alert's condition holds."""
    counters = {
        # 30 % of spans fail: the warning and the critical error ratio alerts.
        f'traces_span_metrics_calls_total{{{APP}, {SPAN}, status_code="STATUS_CODE_UNSET"}}': 7,
        f'traces_span_metrics_calls_total{{{APP}, {SPAN}, status_code="STATUS_CODE_ERROR"}}': 3,
        # p95 above 1 s (a quantile in the +Inf bucket would read as the last bound, 1 s).
        f'traces_span_metrics_duration_seconds_bucket{{{APP}, {SPAN}, status_code="STATUS_CODE_UNSET", le="1"}}': 4,  # noqa: E501
        f'traces_span_metrics_duration_seconds_bucket{{{APP}, {SPAN}, status_code="STATUS_CODE_UNSET", le="2.5"}}': 8,  # noqa: E501
        f'traces_span_metrics_duration_seconds_bucket{{{APP}, {SPAN}, status_code="STATUS_CODE_UNSET", le="+Inf"}}': 10,  # noqa: E501
        f'ttbt5_operation_duration_seconds_bucket{{{APP}, code_function="load", code_namespace="shop", outcome="success", le="0.1"}}': 5,  # noqa: E501
        f'ttbt5_operation_duration_seconds_bucket{{{APP}, code_function="load", code_namespace="shop", outcome="success", le="+Inf"}}': 10,  # noqa: E501
        f'ttbt5_operation_duration_seconds_count{{{APP}, code_function="load", code_namespace="shop", outcome="success"}}': 10,  # noqa: E501
        f'ttbt5_errors_total{{{APP}, error_type="ValueError", error_severity="high", error_category="validation"}}': 1,  # noqa: E501
        # A critical error now and then: Ttbt5CriticalErrors.
        f'ttbt5_errors_total{{{APP}, error_type="DatabaseError", error_severity="critical", error_category="database"}}': 0.1,  # noqa: E501
        # 33 % hits at 3 requests/s.
        f'ttbt5_cache_requests_total{{{APP}, cache_name="users", cache_level="l1", cache_result="hit"}}': 1,  # noqa: E501
        f'ttbt5_cache_requests_total{{{APP}, cache_name="users", cache_level="l1", cache_result="miss"}}': 2,  # noqa: E501
        f'ttbt5_cache_evictions_total{{{APP}, cache_name="users", cache_level="l1", cache_eviction_reason="size"}}': 1,  # noqa: E501
        f'ttbt5_cache_operation_duration_seconds_bucket{{{APP}, cache_name="users", cache_level="l2", cache_operation="get", le="0.01"}}': 1,  # noqa: E501
        f'ttbt5_cache_operation_duration_seconds_bucket{{{APP}, cache_name="users", cache_level="l2", cache_operation="get", le="+Inf"}}': 1,  # noqa: E501
        f'ttbt5_cache_coalesced_total{{{APP}, cache_name="users"}}': 1,
        f'ttbt5_retry_calls_total{{{APP}, retry_name="fetch", retry_outcome="failed_with_retry", error_type="TimeoutError"}}': 1,  # noqa: E501
        f'ttbt5_retry_calls_total{{{APP}, retry_name="fetch", retry_outcome="success_with_retry"}}': 1,  # noqa: E501
        f'ttbt5_retry_attempts_bucket{{{APP}, retry_name="fetch", le="1"}}': 1,
        f'ttbt5_retry_attempts_bucket{{{APP}, retry_name="fetch", le="+Inf"}}': 2,
        f'ttbt5_circuit_breaker_transitions_total{{{APP}, circuit_breaker_name="redis", from="closed", to="open"}}': 0.1,  # noqa: E501
        f'ttbt5_circuit_breaker_calls_total{{{APP}, circuit_breaker_name="redis", result="rejected"}}': 1,  # noqa: E501
        f'process_cpu_time_seconds_total{{{APP}, cpu_mode="user"}}': 0.2,
        f'otel_sdk_processor_span_processed_total{{{APP}, error_type="queue_full"}}': 1,
        f'otel_sdk_processor_log_processed_total{{{APP}, error_type="queue_full"}}': 1,
    }
    gauges = {
        f'ttbt5_circuit_breaker_state_ratio{{{APP}, circuit_breaker_name="redis", circuit_breaker_state="closed"}}': 0,  # noqa: E501
        f'ttbt5_circuit_breaker_state_ratio{{{APP}, circuit_breaker_name="redis", circuit_breaker_state="open"}}': 1,  # noqa: E501
        f'ttbt5_circuit_breaker_state_ratio{{{APP}, circuit_breaker_name="redis", circuit_breaker_state="half_open"}}': 0,  # noqa: E501
        f'ttbt5_cache_entries{{{APP}, cache_name="users", cache_level="l1"}}': 42,
        f'ttbt5_health_status{{{APP}, health_check="db"}}': 0,
        # 97 % of the limit: warning and critical.
        f"process_memory_usage_bytes{{{APP}}}": 970,
        f"ttbt5_process_memory_limit_bytes{{{APP}}}": 1000,
    }
    return [f"{name} {rate * t:.3f}" for name, rate in counters.items()] + [
        f"{name} {value}" for name, value in gauges.items()
    ]


def _collector_metrics(t: float) -> list[str]:
    """The collector's own series (no _total suffix, as otel-collector.yaml sets it up)."""
    lines = ["otelcol_process_uptime " + f"{t:.3f}"]
    limiter = 'processor="memory_limiter"'
    for signal in ("spans", "metric_points", "log_records"):
        lines += [
            f'otelcol_receiver_accepted_{signal}{{receiver="otlp", transport="grpc"}} {10 * t:.3f}',
            f'otelcol_receiver_refused_{signal}{{receiver="otlp", transport="grpc"}} {t:.3f}',
            f"otelcol_processor_memory_limiter_refused_{signal}{{{limiter}}} {t:.3f}",
            f'otelcol_exporter_send_failed_{signal}{{exporter="otlp_grpc/traces"}} {t:.3f}',
            # A different exporter: a queue full beside failing sends pages as send failures.
            f'otelcol_exporter_enqueue_failed_{signal}{{exporter="otlp_http/logs"}} {t:.3f}',
        ]
    lines += [
        'otelcol_exporter_queue_size{exporter="otlp_grpc/traces", data_type="traces"} 3',
        'otelcol_exporter_queue_capacity{exporter="otlp_grpc/traces", data_type="traces"} 1000',
        'otelcol_exporter_queue_size{exporter="otlp_http/logs", data_type="logs"} 1000',
        'otelcol_exporter_queue_capacity{exporter="otlp_http/logs", data_type="logs"} 1000',
    ]
    return lines


def _blown_up_metrics(t: float) -> list[str]:
    """A page over the sample limit of its scrape job (the limit below is 10)."""
    return [f'blown_up_total{{request_id="{i}"}} {t:.3f}' for i in range(20)]


@dataclass
class Stack:
    prometheus: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.prometheus}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]

    def diagnostics(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)


def _metrics_server(lines: Callable[[float], list[str]], start: float) -> ThreadingHTTPServer:
    def get(request: BaseHTTPRequestHandler) -> None:
        body = ("\n".join(lines(time.monotonic() - start)) + "\n").encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/plain; version=0.0.4")
        request.end_headers()
        request.wfile.write(body)

    return serve(get, "GET")


def _wait(
    what: str, probe: Callable[[], Any], stack: Stack, detail: Callable[[], object] = str
) -> Any:
    return wait_until(
        what, probe, TIMEOUT, lambda: f"{detail()}\n{stack.diagnostics()}", interval=0.5
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = tool("prometheus", "prometheus")
    alertmanager_bin = tool("prometheus-alertmanager", "prometheus-alertmanager")
    work = tmp_path_factory.mktemp("alerting")
    subprocess.run(
        [
            sys.executable,
            str(PROMETHEUS_DIR / "render_rules.py"),
            "--fast",
            "--output-dir",
            str(work / "rules"),
        ],
        check=True,
        capture_output=True,
    )

    routing = ALERTMANAGER_CONFIG.read_text()
    assert "url: http://127.0.0.1:9099/alerts" in routing
    assert routing.count("group_wait: 1m") == 1

    start = time.monotonic()
    notifications: list[dict[str, Any]] = []

    servers = [
        app := _metrics_server(_app_metrics, start),
        own := _metrics_server(_collector_metrics, start),
        blown_up := _metrics_server(_blown_up_metrics, start),
        hook := webhook(notifications),
    ]
    prometheus_port, alertmanager_port, closed_port = free_port(), free_port(), free_port()

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules" / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "otel-collector",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{app.server_port}"]}],
            },
            {
                "job_name": "otel-collector-self",
                "static_configs": [{"targets": [f"127.0.0.1:{own.server_port}"]}],
            },
            {
                "job_name": "nothing-listens",
                "static_configs": [{"targets": [f"127.0.0.1:{closed_port}"]}],
            },
            {
                "job_name": "blown-up",
                "sample_limit": 10,
                "static_configs": [{"targets": [f"127.0.0.1:{blown_up.server_port}"]}],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}],
            },
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    routing = routing.replace(
        "url: http://127.0.0.1:9099/alerts", f"url: http://127.0.0.1:{hook.server_port}/alerts"
    ).replace("group_wait: 1m", "group_wait: 2s")
    (work / "alertmanager.yml").write_text(routing)

    commands = {
        "prometheus": [
            prometheus_bin,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        "alertmanager": [
            alertmanager_bin,
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{alertmanager_port}",
            "--cluster.listen-address=",
        ],
    }
    processes = []
    result = Stack(f"http://127.0.0.1:{prometheus_port}", notifications)
    try:
        for name, command in commands.items():
            log = work / f"{name}.log"
            result.logs.append(log)
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=work)
                )
        yield result
    finally:
        stop_processes(processes)
        for server in servers:
            server.shutdown()
            server.server_close()


def _rules() -> set[tuple[str, str]]:
    loaded = yaml.safe_load((PROMETHEUS_DIR / "rules" / "ttbt5-alerts.yml").read_text())
    return {
        (rule["alert"], rule["labels"]["severity"])
        for group in loaded["groups"]
        for rule in group["rules"]
    }


def _firing(stack: Stack) -> set[tuple[str, str]]:
    try:
        alerts = stack.api("alerts")["alerts"]
    except (OSError, urllib.error.URLError):
        return set()
    return {
        (alert["labels"]["alertname"], alert["labels"]["severity"])
        for alert in alerts
        if alert["state"] == "firing"
    }


def test_every_alert_fires_on_real_prometheus(stack: Stack) -> None:
    wanted = _rules()
    _wait(
        "every alert firing",
        lambda: _firing(stack) >= wanted,
        stack,
        lambda: f"missing {sorted(wanted - _firing(stack))}",
    )
    alerts = stack.api("alerts")["alerts"]
    for alert in alerts:
        assert alert["annotations"]["runbook_url"].startswith("https://"), alert
        assert "{{" not in alert["annotations"]["description"], alert
    (memory,) = [
        alert
        for alert in alerts
        if alert["labels"]["alertname"] == "Ttbt5HighMemoryUsage"
        and alert["labels"]["severity"] == "critical"
    ]
    assert memory["labels"]["service_name"] == "shop"
    assert memory["labels"]["instance"] == "i-1"
    assert memory["annotations"]["description"].startswith("Process i-1 of shop (test) uses 97%")


def test_alertmanager_routes_by_severity_and_inhibits_warnings(stack: Stack) -> None:
    wanted = _rules()
    inhibited = {(name, "warning") for name, severity in wanted if severity == "critical"} & wanted
    assert inhibited == {
        ("Ttbt5HighErrorRatio", "warning"),
        ("Ttbt5HighMemoryUsage", "warning"),
    }

    def delivered() -> set[tuple[str, str, str]]:
        return {
            (notification["receiver"], alert["labels"]["alertname"], alert["labels"]["severity"])
            for notification in list(stack.notifications)
            for alert in notification["alerts"]
        }

    expected = {(severity, name, severity) for name, severity in wanted - inhibited}
    _wait(
        "a notification of every alert",
        lambda: delivered() >= expected,
        stack,
        lambda: f"missing {sorted(expected - delivered())}",
    )
    # One more group interval of the warning route would have carried them.
    time.sleep(3)
    assert delivered() == expected
    for notification in stack.notifications:
        assert notification["groupLabels"].keys() <= {
            "alertname",
            "service_name",
            "deployment_environment_name",
            "slo",
        }


def test_every_dashboard_query_runs_and_returns_data(stack: Stack) -> None:
    found = queries.all_queries("shop", rate_interval="10s", time_range="30s")
    # Wait until Prometheus has enough samples for 10s rates and the alerts exist.
    _wait("every alert firing", lambda: _firing(stack) >= _rules(), stack)
    empty = []
    for query in found:
        # SLO series exist only for the services of dashboards/slos.yaml: the error-budget
        # dashboard is checked against the demo's service, in test_live_alerts.py.
        if query.dashboard == "ttbt5-error-budget":
            continue
        try:
            result = stack.api("query", query=query.expr)
        except urllib.error.HTTPError as exc:
            pytest.fail(f"{query.dashboard} / {query.panel}: {exc.read().decode()}")
        if not result["result"] and query.panel not in HTTP_PANELS:
            empty.append(f"{query.dashboard} / {query.panel} / {query.ref_id}: {query.expr}")
    assert not empty, "\n".join(empty)
