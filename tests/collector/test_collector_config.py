"""The collector distribution, its config and the Prometheus/Alertmanager configs.

These tests run the real binaries on 127.0.0.1 with free ports. They need:

- the collector built by ``bash collector/build.sh`` (or ``TTBT5_COLLECTOR_BIN``);
- ``promtool`` and ``amtool`` (Debian packages ``prometheus``, ``prometheus-alertmanager``).

A missing binary fails the tests rather than skipping them: a skipped check
would let the config and the names that dashboards rely on drift apart unseen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.loopback import free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

from tests.paths import REPO

CONFIG = REPO / "otel-collector.yaml"
DEBUG_OVERLAY = REPO / "collector" / "debug.yaml"
PROMETHEUS_DIR = REPO / "dashboards" / "prometheus"
ALERTMANAGER_CONFIG = REPO / "dashboards" / "alertmanager" / "alertmanager.yml"

SERVICE = "ttbt5-collector-test"
ENVIRONMENT = "collector-test"
STARTUP_TIMEOUT = 30.0
DATA_TIMEOUT = 30.0

# Variables the configs read; cleared so that the caller's shell cannot change
# what is being tested.
_CONFIG_VARIABLE = re.compile(
    r"^TTBT5_(COLLECTOR_|TRACES_BACKEND_|LOGS_BACKEND_|TRACE_SAMPLING_|ENVIRONMENT$)"
)


# --- helpers


def _collector_binary() -> Path:
    configured = os.environ.get("TTBT5_COLLECTOR_BIN")
    path = Path(configured) if configured else REPO / "collector" / "_build" / "ttbt5-otelcol"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"collector binary not found at {path}: run `bash collector/build.sh` "
            "(or point TTBT5_COLLECTOR_BIN at a built ttbt5-otelcol)",
            pytrace=False,
        )
    return path


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found on PATH: install the Debian package {package}", pytrace=False
        )
    return found


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _CONFIG_VARIABLE.match(k)}
    env.update(overrides)
    return env


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(errors="replace")


def _post_json(url: str, body: object) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200, response.read()


def _wait_for(
    what: str, probe: Callable[[], str | None], timeout: float, diagnostics: Callable[[], str]
) -> str:
    result: str = wait_until(what, probe, timeout, diagnostics)
    return result


def _attr(key: str, value: str) -> dict[str, object]:
    return {"key": key, "value": {"stringValue": value}}


def _resource(service: str = SERVICE) -> dict[str, object]:
    # No deployment.environment.name: the collector must add it.
    return {
        "attributes": [
            _attr("service.name", service),
            _attr("service.instance.id", "instance-1"),
            {"key": "process.pid", "value": {"intValue": "4242"}},
        ]
    }


def _metrics_payload() -> dict[str, object]:
    now = time.time_ns()
    start = now - 1_000_000_000
    return {
        "resourceMetrics": [
            {
                "resource": _resource(),
                "scopeMetrics": [
                    {
                        "scope": {"name": "ttbt5_otel"},
                        "metrics": [
                            {
                                "name": "ttbt5.cache.requests",
                                "unit": "{request}",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "attributes": [
                                                _attr("cache.name", "users"),
                                                _attr("cache.level", "l1"),
                                                _attr("cache.result", "hit"),
                                            ],
                                            "startTimeUnixNano": str(start),
                                            "timeUnixNano": str(now),
                                            "asInt": "3",
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "ttbt5.operation.duration",
                                "unit": "s",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "attributes": [
                                                _attr("code.function", "load_user"),
                                                _attr("outcome", "success"),
                                            ],
                                            "startTimeUnixNano": str(start),
                                            "timeUnixNano": str(now),
                                            "count": "2",
                                            "sum": 0.3,
                                            "bucketCounts": ["1", "1", "0"],
                                            "explicitBounds": [0.1, 0.5],
                                        }
                                    ],
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }


def _traces_payload(service: str = SERVICE) -> dict[str, object]:
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": _resource(service),
                "scopeSpans": [
                    {
                        "scope": {"name": "ttbt5_otel"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "GET /users/{id}",
                                "kind": 2,
                                "startTimeUnixNano": str(now - 30_000_000),
                                "endTimeUnixNano": str(now),
                                "attributes": [
                                    _attr("http.request.method", "GET"),
                                    _attr("db.password", "hunter2-secret-value"),
                                    _attr("note", "sent with Bearer abcdefghijklmnopqrstuvwxyz"),
                                ],
                                "status": {"code": 0},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def _logs_payload() -> dict[str, object]:
    return {
        "resourceLogs": [
            {
                "resource": _resource(),
                "scopeLogs": [
                    {
                        "scope": {"name": "ttbt5_otel"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(time.time_ns()),
                                "severityNumber": 9,
                                "severityText": "INFO",
                                "body": {"stringValue": "collector log check"},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def _series(text: str, name: str) -> list[str]:
    """Sample lines of the metric ``name`` (exact name, with or without labels)."""
    return [line for line in text.splitlines() if re.match(rf"{re.escape(name)}[{{ ]", line)]


# --- collector process


@dataclass
class Collector:
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int]

    def url(self, port: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def diagnostics(self) -> str:
        state = "running" if self.process.poll() is None else f"exited {self.process.returncode}"
        return f"collector {state}; log tail:\n{self.log_text()[-4000:]}"

    def scrape(self) -> str:
        status, text = _get(self.url("prometheus", "/metrics"))
        assert status == 200, text
        return text


def _start_collector(
    tmp_path: Path, name: str, configs: list[Path], **env: str
) -> Iterator[Collector]:
    ports = {k: free_port() for k in ("grpc", "http", "prometheus", "telemetry", "health")}
    # Stores at loopback ports where nothing listens, unless the test names its own.
    stores = {
        "TTBT5_TRACES_BACKEND_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TTBT5_LOGS_BACKEND_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    environment = _clean_env(
        TTBT5_COLLECTOR_HOST="127.0.0.1",
        TTBT5_COLLECTOR_OTLP_GRPC_PORT=str(ports["grpc"]),
        TTBT5_COLLECTOR_OTLP_HTTP_PORT=str(ports["http"]),
        TTBT5_COLLECTOR_PROMETHEUS_PORT=str(ports["prometheus"]),
        TTBT5_COLLECTOR_TELEMETRY_PORT=str(ports["telemetry"]),
        TTBT5_COLLECTOR_HEALTH_PORT=str(ports["health"]),
        TTBT5_COLLECTOR_SPAN_METRICS_FLUSH_INTERVAL="1s",
        TTBT5_COLLECTOR_QUEUE_DIR=str(tmp_path / f"{name}-queue"),
        TTBT5_ENVIRONMENT=ENVIRONMENT,
        **{**stores, **env},
    )
    args = [str(_collector_binary())]
    for config in configs:
        args += ["--config", str(config)]
    log = tmp_path / f"{name}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, env=environment, cwd=tmp_path
        )
    collector = Collector(process, log, ports)
    try:

        def healthy() -> str | None:
            if process.poll() is not None:
                pytest.fail(f"collector exited during startup\n{collector.diagnostics()}")
            try:
                status, body = _get(collector.url("health"))
            except OSError:
                return None
            return body if status == 200 else None

        _wait_for("the health check", healthy, STARTUP_TIMEOUT, collector.diagnostics)
        yield collector
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    yield from _start_collector(
        tmp_path, "collector", [CONFIG, DEBUG_OVERLAY], TTBT5_COLLECTOR_DEBUG_VERBOSITY="detailed"
    )


# --- tests


def test_binary_validates_the_collector_config() -> None:
    """otel-collector.yaml uses only components of the built distribution."""
    result = subprocess.run(
        [str(_collector_binary()), "validate", "--config", str(CONFIG)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_debug_overlay_validates() -> None:
    """The debug overlay adds the debug exporter to the pipelines of the base config."""
    result = subprocess.run(
        [
            str(_collector_binary()),
            "validate",
            "--config",
            str(CONFIG),
            "--config",
            str(DEBUG_OVERLAY),
        ],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_otlp_metrics_and_spans_reach_prometheus_with_the_documented_names(
    collector: Collector,
) -> None:
    """OTLP/HTTP JSON in, Prometheus text out: the names dashboards and rules use."""
    _post_json(collector.url("http", "/v1/metrics"), _metrics_payload())
    _post_json(collector.url("http", "/v1/traces"), _traces_payload())

    wanted = (
        "ttbt5_cache_requests_total",
        "ttbt5_operation_duration_seconds_bucket",
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_seconds_bucket",
    )

    def all_present() -> str | None:
        text = collector.scrape()
        calls = _series(text, "traces_span_metrics_calls_total")
        # The first flush of a new span series may report 0 before the span.
        if all(_series(text, name) for name in wanted) and any(
            line.endswith(" 1") for line in calls
        ):
            return text
        return None

    def last_scrape() -> str:
        return f"last scrape:\n{collector.scrape()}\n{collector.diagnostics()}"

    text = _wait_for("the test metrics on /metrics", all_present, DATA_TIMEOUT, last_scrape)

    for name in wanted:
        for line in _series(text, name):
            assert f'service_name="{SERVICE}"' in line, line
            assert f'deployment_environment_name="{ENVIRONMENT}"' in line, line
            assert f'job="{SERVICE}"' in line, line
            assert 'instance="instance-1"' in line, line
            # Volatile resource attributes stay in target_info.
            assert "process_pid" not in line, line
            assert "collector_instance_id" not in line, line

    (counter,) = _series(text, "ttbt5_cache_requests_total")
    assert 'cache_result="hit"' in counter
    assert counter.endswith(" 3"), counter
    assert any(
        'le="0.5"' in line and line.endswith(" 2")
        for line in _series(text, "ttbt5_operation_duration_seconds_bucket")
    ), text

    (calls,) = _series(text, "traces_span_metrics_calls_total")
    assert 'span_name="GET /users/{id}"' in calls
    assert 'span_kind="SPAN_KIND_SERVER"' in calls
    assert 'status_code="STATUS_CODE_UNSET"' in calls
    assert 'http_request_method="GET"' in calls
    # Span durations are in seconds: the 30 ms span lands in the 0.05 bucket.
    buckets = _series(text, "traces_span_metrics_duration_seconds_bucket")
    assert any('le="0.025"' in line and line.endswith(" 0") for line in buckets), buckets
    assert any('le="0.05"' in line and line.endswith(" 1") for line in buckets), buckets

    assert any('process_pid="4242"' in line for line in _series(text, "target_info")), text


def test_secrets_are_masked_before_export(collector: Collector) -> None:
    """Credential-looking keys and values never reach an exporter."""
    _post_json(collector.url("http", "/v1/traces"), _traces_payload())
    _wait_for(
        "the span in the debug exporter output",
        lambda: "db.password" if "db.password" in collector.log_text() else None,
        DATA_TIMEOUT,
        collector.diagnostics,
    )
    log = collector.log_text()
    assert "hunter2" not in log
    assert "abcdefghijklmnopqrstuvwxyz" not in log
    assert "http.request.method: Str(GET)" in log


def test_collector_self_metrics_use_stock_names(collector: Collector) -> None:
    """Self-telemetry names match a collector with default telemetry settings."""
    _post_json(collector.url("http", "/v1/traces"), _traces_payload())

    def accepted() -> str | None:
        status, text = _get(collector.url("telemetry", "/metrics"))
        return text if status == 200 and _series(text, "otelcol_receiver_accepted_spans") else None

    text = _wait_for(
        "otelcol_receiver_accepted_spans", accepted, DATA_TIMEOUT, collector.diagnostics
    )
    assert _series(text, "otelcol_process_uptime"), text


def test_traces_and_logs_leave_for_the_configured_stores(tmp_path: Path) -> None:
    """Traces and logs leave through OTLP to the stores the variables name."""
    backend_gen = _start_collector(tmp_path, "backend", [CONFIG, DEBUG_OVERLAY])
    backend = next(backend_gen)
    try:
        sidecar_gen = _start_collector(
            tmp_path,
            "sidecar",
            [CONFIG],
            TTBT5_TRACES_BACKEND_ENDPOINT=f"127.0.0.1:{backend.ports['grpc']}",
            TTBT5_LOGS_BACKEND_ENDPOINT=backend.url("http"),
            TTBT5_TRACE_SAMPLING_DECISION_WAIT="1s",
        )
        sidecar = next(sidecar_gen)
        try:
            service = "ttbt5-forwarded"
            _post_json(sidecar.url("http", "/v1/traces"), _traces_payload(service))
            _post_json(sidecar.url("http", "/v1/logs"), _logs_payload())

            def forwarded_span() -> str | None:
                text = backend.scrape()
                found = any(
                    f'service_name="{service}"' in line
                    for line in _series(text, "traces_span_metrics_calls_total")
                )
                return text if found else None

            _wait_for(
                "span metrics of the forwarded span",
                forwarded_span,
                DATA_TIMEOUT,
                backend.diagnostics,
            )

            def forwarded_log() -> str | None:
                return "ok" if '"log records": 1' in backend.log_text() else None

            _wait_for("the forwarded log record", forwarded_log, DATA_TIMEOUT, backend.diagnostics)
            # The sidecar printed nothing itself: the debug exporter is off by default.
            assert '"log records"' not in sidecar.log_text()
        finally:
            sidecar_gen.close()
    finally:
        backend_gen.close()


# --- Prometheus, Alertmanager


def _run_tool(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"


def test_prometheus_config_is_valid() -> None:
    """promtool accepts prometheus.yml and finds its rule files."""
    _run_tool(
        [_tool("promtool", "prometheus"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")]
    )


def test_recording_rules_pass_their_unit_tests() -> None:
    """The recording rules compute what their promtool tests expect."""
    # The SLO rules' tests simulate days of traffic: tests/dashboards/test_slos.py runs them.
    tests = [
        path
        for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
        if not path.name.startswith("ttbt5-slos")
    ]
    assert tests
    _run_tool([_tool("promtool", "prometheus"), "test", "rules", *map(str, tests)])


def test_alertmanager_config_is_valid() -> None:
    """amtool accepts alertmanager.yml."""
    _run_tool(
        [_tool("amtool", "prometheus-alertmanager"), "check-config", str(ALERTMANAGER_CONFIG)]
    )


def test_store_builds_are_cached() -> None:
    """A second build of Jaeger and VictoriaLogs only prints the binaries: nothing rebuilt."""
    result = subprocess.run(
        ["bash", str(REPO / "collector" / "stores" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    paths = result.stdout.split()
    assert [Path(path).name for path in paths] == ["ttbt5-jaeger", "ttbt5-victoria-logs"]
    assert all(os.access(path, os.X_OK) for path in paths)
