"""The collector and scrape-limit alerts, provoked for real on 127.0.0.1.

Two real collectors (collector/_build/ttbt5-otelcol with otel-collector.yaml) and a real
Prometheus with the bundled rules (fast copy: ``for: 0s``, 1s evaluation, 30s windows) and
the bundled ``otel-collector`` scrape job, limits included:

- collector "memory" runs with a 2 MiB memory limit, so its memory limiter refuses
  everything; a test overlay takes the limiter out of the traces pipeline only, so spans
  always reach the span_metrics connector and the metric points it derives are refused by
  the metrics pipeline. No application metrics are sent: no receiver ever refuses a metric
  point, and only the memory limiter's counter sees the span metrics lost;
- collector "queue" exports traces to a port where nothing listens, through a sending
  queue of one request and one consumer: the queue is full and refuses the next spans;
- the ``otel-collector`` job also scrapes a page one sample over its ``sample_limit`` and a
  series one label over its ``label_limit``; Prometheus scrapes itself.

Each alert's expression must return the expected series, and the alerts that must stay
quiet for these incidents (one incident, one page) must return none.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.dashboards._support import (
    collector_environment,
    fast_prometheus_config,
    tool,
)
from tests.loopback import free_port, serve, stop_processes, wait_until
from tests.paths import REPO

pytestmark = pytest.mark.integration

COLLECTOR = REPO / "collector" / "_build" / "ttbt5-otelcol"
TIMEOUT = 60.0
PORT_NAMES = ("grpc", "http", "prom_exporter", "telemetry", "health")

# The memory limiter stays in the metrics and logs pipelines only.
MEMORY_OVERLAY = {
    "service": {
        "pipelines": {
            "traces": {
                "processors": [
                    "resource",
                    "transform/expose_names",
                    "redaction",
                    "transform/restore_names",
                ]
            }
        }
    },
}


def _queue_overlay(dead_port: int) -> dict[str, Any]:
    return {
        "exporters": {
            "otlp_grpc/traces": {
                "endpoint": f"127.0.0.1:{dead_port}",
                "tls": {"insecure": True},
                "sending_queue": {"enabled": True, "queue_size": 1, "num_consumers": 1},
                "retry_on_failure": {
                    "enabled": True,
                    "initial_interval": "30s",
                    "max_interval": "30s",
                    "max_elapsed_time": "0s",
                },
            }
        },
        "service": {"pipelines": {"traces": {"exporters": ["span_metrics", "otlp_grpc/traces"]}}},
    }


@dataclass
class Live:
    prometheus: str
    memory: dict[str, int]
    queue: dict[str, int]
    limits: dict[str, Any]
    big_page: str
    wide_page: str
    alerts: dict[str, str]
    recording: dict[str, str]
    logs: list[Path] = field(default_factory=list)

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        except (OSError, urllib.error.URLError):
            return []
        return result

    def alert(self, name: str) -> list[dict[str, str]]:
        """Label sets the expression of alert ``name`` returns now."""
        return [series["metric"] for series in self.query(self.alerts[name])]

    def diagnostics(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for log in self.logs)


def _page(lines: Callable[[], list[str]]) -> ThreadingHTTPServer:
    def get(request: BaseHTTPRequestHandler) -> None:
        body = ("\n".join(lines()) + "\n").encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/plain; version=0.0.4")
        request.end_headers()
        request.wfile.write(body)

    return serve(get, "GET")


def _rules(path: Path, key: str) -> dict[str, str]:
    loaded = yaml.safe_load(path.read_text())
    return {rule[key]: rule["expr"] for group in loaded["groups"] for rule in group["rules"]}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _start(
    name: str, command: list[str], work: Path, env: dict[str, str] | None, live: Live
) -> Any:
    log = work / f"{name}.log"
    live.logs.append(log)
    with log.open("wb") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=work)


def _send(ports: dict[str, int], seconds: float, logs: bool) -> None:
    """Spans (and log records) of one SDK-instrumented service, for ``seconds``."""
    endpoint = f"http://127.0.0.1:{ports['grpc']}"
    resource = Resource.create({"service.name": "limits", "service.instance.id": "l-1"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=1))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=1))
    )
    logger = logger_provider.get_logger("limits")
    tracer = tracer_provider.get_tracer("limits")
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with tracer.start_as_current_span("GET /limits", kind=SpanKind.SERVER):
                if logs:
                    logger.emit(body="one log record", severity_number=SeverityNumber.WARN)
            time.sleep(0.2)
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    prometheus_bin = tool("prometheus", "prometheus")
    if not COLLECTOR.exists():
        pytest.fail(f"collector binary {COLLECTOR} missing: run `bash collector/build.sh`")
    work = tmp_path_factory.mktemp("collector-alerts")
    memory = {name: free_port() for name in PORT_NAMES}
    queue = {name: free_port() for name in PORT_NAMES}
    prometheus_port = free_port()

    config_path = fast_prometheus_config(work, {**memory, "prometheus": prometheus_port})
    config = yaml.safe_load(config_path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    app_job = jobs["otel-collector"]
    limits = {key: value for key, value in app_job.items() if key.endswith("limit")}

    big = _page(lambda: [f'ttbt5_blown_up{{i="{i}"}} 1' for i in range(limits["sample_limit"] + 1)])
    labels = ", ".join(f'l{i}="v"' for i in range(limits["label_limit"]))
    wide = _page(lambda: [f"ttbt5_wide{{{labels}}} 1"])
    servers = [big, wide]
    big_page, wide_page = (f"127.0.0.1:{server.server_port}" for server in servers)
    app_job["static_configs"][0]["targets"] += [big_page, wide_page]
    jobs["otel-collector-self"]["static_configs"][0]["targets"].append(
        f"127.0.0.1:{queue['telemetry']}"
    )
    config_path.write_text(yaml.safe_dump(config))
    (work / "memory.yaml").write_text(yaml.safe_dump(MEMORY_OVERLAY))
    (work / "queue.yaml").write_text(yaml.safe_dump(_queue_overlay(free_port())))

    result = Live(
        f"http://127.0.0.1:{prometheus_port}",
        memory,
        queue,
        limits,
        big_page,
        wide_page,
        _rules(work / "rules" / "ttbt5-alerts.yml", "alert"),
        _rules(work / "rules" / "ttbt5-recording.yml", "record"),
    )
    base = [str(COLLECTOR), f"--config={REPO / 'otel-collector.yaml'}"]
    processes = []
    try:
        processes.append(
            _start(
                "collector-memory",
                [*base, f"--config={work / 'memory.yaml'}"],
                work,
                collector_environment(
                    memory,
                    TTBT5_COLLECTOR_MEMORY_LIMIT_MIB="2",
                    TTBT5_COLLECTOR_MEMORY_SPIKE_MIB="1",
                ),
                result,
            )
        )
        processes.append(
            _start(
                "collector-queue",
                [*base, f"--config={work / 'queue.yaml'}"],
                work,
                collector_environment(queue),
                result,
            )
        )
        processes.append(
            _start(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={work / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                work,
                None,
                result,
            )
        )
        for ports in (memory, queue):
            health = f"http://127.0.0.1:{ports['health']}/"
            wait_until("a collector", partial(_ready, health), 30, result.diagnostics)
        wait_until("Prometheus", lambda: _ready(f"{result.prometheus}/-/ready"), 30)
        _send(memory, 8, logs=True)
        _send(queue, 8, logs=False)
        yield result
    finally:
        stop_processes(processes)
        for server in servers:
            server.shutdown()
            server.server_close()


def _wait(live: Live, what: str, probe: Callable[[], Any]) -> Any:
    return wait_until(what, probe, TIMEOUT, live.diagnostics, interval=1.0)


def test_memory_limiter_refusing_span_metrics_fires_refusing_data(live: Live) -> None:
    instance = f"127.0.0.1:{live.memory['telemetry']}"

    def signals() -> set[str]:
        return {
            labels["signal"]
            for labels in live.alert("Ttbt5CollectorRefusingData")
            if labels["instance"] == instance
        }

    found = _wait(
        live, "span metrics and logs refused", lambda: {"metric_points", "log_records"} <= signals()
    )
    assert found
    # The span metrics were refused while no receiver refused any metric point: the
    # receiver-based rule alone would have stayed silent.
    lost = live.query(f'collector:otelcol_span_metrics_refused:rate5m{{instance="{instance}"}}')
    assert lost, "no span metrics counted as refused"
    assert float(lost[0]["value"][1]) > 0
    # The OTLP receiver's series exists at 0 once it received anything; without any OTLP
    # metrics it may not exist at all. Either way: nothing refused.
    receivers = live.query(f'otelcol_receiver_refused_metric_points{{instance="{instance}"}}')
    assert all(float(series["value"][1]) == 0 for series in receivers), receivers
    limiter = live.query(
        f'otelcol_processor_memory_limiter_refused_metric_points{{instance="{instance}"}}'
    )
    assert limiter[0]["metric"]["processor"] == "memory_limiter", limiter


def test_full_exporter_queue_fires_once(live: Live) -> None:
    instance = f"127.0.0.1:{live.queue['telemetry']}"

    def queue_full() -> list[dict[str, str]]:
        return [
            labels
            for labels in live.alert("Ttbt5CollectorExportQueueFull")
            if labels["instance"] == instance
        ]

    (labels,) = _wait(live, "the queue alert", queue_full)
    assert labels["exporter"] == "otlp_grpc/traces"
    enqueue_failed = live.query(f'otelcol_exporter_enqueue_failed_spans{{instance="{instance}"}}')
    assert float(enqueue_failed[0]["value"][1]) > 0
    refused = live.query(f'otelcol_receiver_refused_spans{{instance="{instance}"}}')
    assert float(refused[0]["value"][1]) > 0, "the receiver counts the same spans as refused"
    # ... which is why the refusing-data alert leaves them to the queue alert.
    assert not [
        found for found in live.alert("Ttbt5CollectorRefusingData") if found["instance"] == instance
    ]
    assert not [
        found
        for found in live.alert("Ttbt5CollectorExportFailing")
        if found["instance"] == instance
    ]


def test_scrapes_over_the_bundled_limits_fire_scrape_limit_exceeded(live: Live) -> None:
    def exceeded() -> set[str]:
        return {labels["instance"] for labels in live.alert("Ttbt5ScrapeLimitExceeded")}

    _wait(live, "both refused scrapes", lambda: {live.big_page, live.wide_page} <= exceeded())
    for labels in live.alert("Ttbt5ScrapeLimitExceeded"):
        assert labels["job"] == "otel-collector", labels
    down = {labels["instance"] for labels in live.alert("Ttbt5TargetDown")}
    assert not down & {live.big_page, live.wide_page}, down
    # The real collector page with the SDK's spans passes the same limits, far below them.
    app = f"127.0.0.1:{live.memory['prom_exporter']}"
    (up,) = live.query(f'up{{job="otel-collector", instance="{app}"}}')
    assert up["value"][1] == "1"
    (samples,) = live.query(f'scrape_samples_scraped{{instance="{app}"}}')
    # It may hold no series at all: this collector's memory limiter is made to refuse the
    # span metrics (the test above), and under load it can refuse every batch of them.
    assert 0 <= float(samples["value"][1]) < live.limits["sample_limit"] / 10
    assert live.limits["sample_limit"] < 38_000
