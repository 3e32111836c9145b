"""The bundled collector masks every corpus secret in traces, logs and metrics, for real.

The raw OpenTelemetry SDK (not ``ttbt5_otel``, so nothing is scrubbed before the collector)
sends, for each secret of ``tests/secret_corpus.py``: a SERVER span whose name, route,
attribute, status message, event name and recorded exception carry the secret's text; a log
record with the text as body, attribute and event name; a counter point with the text as an
attribute value. The resource carries secret-named keys (``db.password``, ``deploy.token``)
and a URL with a password under an innocent key.

The real collector (``collector/_build/ttbt5-otelcol`` with ``otel-collector.yaml``, debug
exporter at detailed verbosity) and a real Prometheus scraping its exporter with the
bundled scrape job must then hold no needle: not in the debug output, not on the exporter
page, not in any series Prometheus stored. Data must still flow: every span is counted by
the span metrics, every point by the counter, every record by the debug exporter, and
``target_info`` still has its ``db_password`` label, masked.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.dashboards._support import collector_environment, fast_prometheus_config, tool
from tests.loopback import free_port, stop_processes, wait_until
from tests.paths import REPO
from tests.secret_corpus import SECRETS

pytestmark = pytest.mark.integration

COLLECTOR = REPO / "collector" / "_build" / "ttbt5-otelcol"
SERVICE = "redaction-live"
TIMEOUT = 60.0
PORT_NAMES = ("grpc", "http", "prom_exporter", "telemetry", "health")
RESOURCE_SECRETS = {
    "db.password": "ResDbPassw0rd42",
    "deploy.token": "ResDeployTok3n42",
    "deploy.source": "https://ci:ResUrlPassw0rd42@git.example.com/app.git",
}
NEEDLES = {
    **{form: needle for form, _, needle in SECRETS},
    "resource db.password": "ResDbPassw0rd42",
    "resource deploy.token": "ResDeployTok3n42",
    "resource deploy.source": "ResUrlPassw0rd42",
}


@dataclass
class Live:
    """The running collector and Prometheus, and what was sent to them."""

    ports: dict[str, int]
    prometheus: str
    collector_log: Path
    logs: list[Path] = field(default_factory=list)

    def get(self, url: str) -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: str = response.read().decode()
        return body

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        return json.loads(self.get(f"{self.prometheus}/api/v1/{path}?{query}"))["data"]

    def exporter_page(self) -> str:
        return self.get(f"http://127.0.0.1:{self.ports['prom_exporter']}/metrics")

    def self_metric(self, name: str, exporter: str) -> float:
        """A counter of the collector's own telemetry, for one exporter."""
        page = self.get(f"http://127.0.0.1:{self.ports['telemetry']}/metrics")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in page.splitlines()
            if line.startswith(name + "{") and f'exporter="{exporter}"' in line
        )

    def diagnostics(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)


def _sample_sum(page: str, name: str) -> float:
    """The sum of the samples of metric ``name`` of SERVICE on an exposition page."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith(name + "{") and f'job="{SERVICE}"' in line
    )


def _send(grpc_port: int) -> None:
    """One span, one log record and one counter point per corpus secret, then flush."""
    endpoint = f"http://127.0.0.1:{grpc_port}"
    resource = Resource.create(
        {"service.name": SERVICE, "service.instance.id": "r-1", **RESOURCE_SECRETS}
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=10))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=10),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer = tracer_provider.get_tracer("redaction-live")
    logger = logger_provider.get_logger("redaction-live")
    counter = meter_provider.get_meter("redaction-live").create_counter(
        "redaction.live.requests", unit="{request}"
    )
    try:
        for form, text, _ in SECRETS:
            with tracer.start_as_current_span(
                f"GET /reset {text}",
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": "GET",
                    # A span-metrics dimension: it becomes a label.
                    "http.route": f"/reset/{text}",
                    "note": text,
                    "headers": [f"X-Form: {form}", text],
                },
            ) as span:
                span.add_event(f"retry {text}", {"detail": text})
                try:
                    raise ConnectionError(f"could not connect: {text}")
                except ConnectionError as exc:
                    span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"failed: {text}"))
            logger.emit(
                body=text,
                severity_number=SeverityNumber.WARN,
                attributes={"detail": text, "form": form},
                event_name=f"login {text}",
            )
            # The form keeps the points apart once masked: two series that differ only in
            # a masked value would collide on the exporter page.
            counter.add(1, {"detail": text, "form": form})
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
        meter_provider.shutdown()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    prometheus_bin = tool("prometheus", "prometheus")
    if not COLLECTOR.exists():
        pytest.fail(f"collector binary {COLLECTOR} missing: run `bash collector/build.sh`")
    work = tmp_path_factory.mktemp("collector-redaction")
    ports = {name: free_port() for name in PORT_NAMES}
    prometheus_port = free_port()
    # The bundled scrape job (its limits included) against this collector; no alerting.
    config_path = fast_prometheus_config(work, ports)
    result = Live(ports, f"http://127.0.0.1:{prometheus_port}", work / "collector.log")
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str], env: dict[str, str] | None) -> None:
        log = work / f"{name}.log"
        result.logs.append(log)
        with log.open("wb") as output:
            processes.append(
                subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=work
                )
            )

    try:
        start(
            "collector",
            [
                str(COLLECTOR),
                f"--config={REPO / 'otel-collector.yaml'}",
                f"--config={REPO / 'collector' / 'debug.yaml'}",
            ],
            collector_environment(
                ports,
                TTBT5_COLLECTOR_HOST="127.0.0.1",
                TTBT5_COLLECTOR_DEBUG_VERBOSITY="detailed",
            ),
        )
        start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={work / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            None,
        )
        health = f"http://127.0.0.1:{ports['health']}/"
        wait_until("the collector", lambda: _ready(health), 30, result.diagnostics)
        wait_until(
            "Prometheus", lambda: _ready(f"{result.prometheus}/-/ready"), 30, result.diagnostics
        )
        _send(ports["grpc"])
        yield result
    finally:
        stop_processes(processes)


def _leaks(text: str) -> list[str]:
    return [form for form, needle in NEEDLES.items() if needle in text]


def test_debug_output_holds_every_record_and_no_secret(live: Live) -> None:
    """Detailed debug output: all spans and log records, each credential masked."""
    count = len(SECRETS)
    wait_until(
        "every span and log record in the debug exporter",
        lambda: (
            live.self_metric("otelcol_exporter_sent_spans", "debug") >= count
            and live.self_metric("otelcol_exporter_sent_log_records", "debug") >= count
        ),
        TIMEOUT,
        live.diagnostics,
    )
    output = live.collector_log.read_text(errors="replace")
    assert _leaks(output) == []
    # What carried a secret is still there, masked: not dropped.
    assert output.count("Name           : GET /reset ") == count
    assert "****" in output
    assert "-> db.password: Str(****)" in output
    assert "-> deploy.token: Str(****)" in output
    assert "ttbt5.redaction." not in output, "a helper attribute of the transforms leaked"


def test_exporter_page_counts_everything_and_holds_no_secret(live: Live) -> None:
    """The Prometheus exporter page: span metrics and the counter complete, no needle."""
    count = len(SECRETS)

    def complete() -> str | None:
        page = live.exporter_page()
        calls = _sample_sum(page, "traces_span_metrics_calls_total")
        points = _sample_sum(page, "redaction_live_requests_total")
        return page if calls == count and points == count else None

    page = wait_until("span metrics and the counter", complete, TIMEOUT, live.diagnostics)
    assert _leaks(page) == []
    target_info = [line for line in page.splitlines() if line.startswith("target_info{")]
    assert any('db_password="****"' in line for line in target_info), target_info
    assert not any("redaction_masked_count" in line for line in target_info), target_info


def test_prometheus_stores_no_secret(live: Live) -> None:
    """Every series Prometheus stored, and every value of every label, without a needle."""
    count = len(SECRETS)

    def scraped() -> bool:
        query = f'sum(traces_span_metrics_calls_total{{job="{SERVICE}"}})'
        try:
            found = live.api("query", query=query)["result"]
        except OSError:
            return False
        return bool(found) and float(found[0]["value"][1]) == count

    wait_until("Prometheus to scrape the span metrics", scraped, TIMEOUT, live.diagnostics)
    series = live.api("series", **{"match[]": '{__name__=~".+"}'})
    stored = json.dumps(series)
    assert _leaks(stored) == []
    values = {name: live.api(f"label/{name}/values") for name in live.api("labels")}
    assert _leaks(json.dumps(values)) == []
    names = values["__name__"]
    assert "redaction_live_requests_total" in names
    assert "target_info" in names
    info = [s for s in series if s["__name__"] == "target_info" and s.get("job") == SERVICE]
    assert info, "target_info of the sender is missing"
    assert {s.get("db_password") for s in info} == {"****"}
    assert {s.get("deploy_token") for s in info} == {"****"}
