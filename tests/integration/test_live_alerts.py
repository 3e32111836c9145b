"""Live proof: the demo's telemetry goes SDK → collector → Prometheus → Alertmanager, and
from an alert to the failing requests' traces and logs.

The real collector built from collector/, Jaeger and VictoriaLogs built by
collector/stores/build.sh, Prometheus (exemplar storage on) with the bundled rules rendered
with short durations and the stores' URLs, Alertmanager with the bundled routing (webhook
pointed at this test) and a Redis, all on free 127.0.0.1 ports. The integration demo runs its
scripted incident; the tests assert that the error-ratio, open-breaker and low-hit-ratio
alerts fire in Prometheus, are delivered by Alertmanager with the expected labels and with
links that lead to the service's error traces and ERROR log records, that exemplars lead to
stored traces, that the alerts resolve once the workload is gone, and that every dashboard
panel query returns data for the demo's service (the error-budget dashboard's from the demo
profile of the SLO rules).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.dashboards._support import (
    ALERTMANAGER_CONFIG,
    DEMO_SLO_RULES,
    GRAFANA_DIR,
    collector_environment,
    fast_prometheus_config,
    firing_alerts,
    load_script,
)
from tests.loopback import clean_env, free_port, stop_processes, webhook
from tests.loopback import wait_until as wait_for
from tests.paths import REPO
from tests.stores import (
    assert_error_records_of,
    assert_error_traces_of,
    get_json,
    get_lines,
    running_jaeger,
    running_victorialogs,
)

pytestmark = pytest.mark.integration

COLLECTOR = Path(os.environ.get("TTBT5_COLLECTOR_BIN", REPO / "collector/_build/ttbt5-otelcol"))
SERVICE = "orders-demo"
DEMO_SECONDS = 40
EXPECTED = {
    # alert name -> labels the delivered notification must carry
    "Ttbt5HighErrorRatio": {"service_name": SERVICE},
    "Ttbt5CircuitBreakerOpen": {"service_name": SERVICE, "circuit_breaker_name": "payments"},
    "Ttbt5LowCacheHitRatio": {"service_name": SERVICE, "cache_name": "products"},
}
# Panels that only fill under a condition the demo does not create; docs/dashboards.md
# says so for each of them.
ONLY_UNDER_CONDITION = {
    "SDK export losses",
    "Span metrics refused",
    "Failed exports",
    "Exporter queue",
}
# Filled by services served or calling through HTTP instrumentations (test_web_stack.py).
HTTP_PANELS = {
    "HTTP server latency p95 by route",
    "HTTP server requests by route and status",
    "HTTP client latency p95 by server",
}


def wait_until(what: str, probe: Callable[[], Any], timeout: float, logs: list[Path]) -> Any:
    def tails() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs if p.exists())

    return wait_for(what, probe, timeout, tails, interval=0.5)


@dataclass
class Live:
    prometheus: str
    collector_grpc: int
    redis_port: int
    work: Path
    jaeger: str
    victorialogs: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.prometheus}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]

    def firing(self) -> dict[str, list[dict[str, str]]]:
        return firing_alerts(self.prometheus)


def start(name: str, command: list[str], work: Path, env: dict[str, str] | None = None):
    log = work / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=work, env=env
        )
    return process, log


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with ExitStack() as stores:
        yield from _live(tmp_path_factory, stores)


def _live(tmp_path_factory: pytest.TempPathFactory, stores: ExitStack) -> Iterator[Live]:
    if not COLLECTOR.exists():
        pytest.fail(f"collector binary {COLLECTOR} missing: run `bash collector/build.sh`")
    work = tmp_path_factory.mktemp("live")
    ports = {name: free_port() for name in
             ("grpc", "http", "prom_exporter", "telemetry", "health", "prometheus",
              "alertmanager", "redis")}  # fmt: skip
    notifications: list[dict[str, Any]] = []
    hook = webhook(notifications)

    routing = ALERTMANAGER_CONFIG.read_text()
    routing = routing.replace(
        "http://127.0.0.1:9099/alerts", f"http://127.0.0.1:{hook.server_port}/alerts"
    )
    for slow in ("group_wait: 30s", "group_wait: 1m", "group_wait: 10s"):
        routing = routing.replace(slow, "group_wait: 1s")
    for slow in ("group_interval: 5m", "group_interval: 1m"):
        routing = routing.replace(slow, "group_interval: 2s")
    (work / "alertmanager.yml").write_text(routing)

    jaeger = stores.enter_context(running_jaeger(work / "jaeger"))
    victorialogs = stores.enter_context(running_victorialogs(work / "victorialogs"))
    evidence = ("--jaeger-url", jaeger.url, "--victorialogs-url", victorialogs.url)
    # The demo profile of the SLO rules feeds the error-budget dashboard: its windows are a
    # tenth of the real ones (30s to 7.2h, 3d for the budget), and a rate over a window
    # longer than the run reads the samples there are, so every panel has data after the demo.
    fast_prometheus_config(work, ports, ports["alertmanager"], evidence, DEMO_SLO_RULES)
    collector_env = collector_environment(
        ports,
        TTBT5_TRACES_BACKEND_ENDPOINT=jaeger.otlp_grpc,
        TTBT5_LOGS_BACKEND_ENDPOINT=f"{victorialogs.url}/insert/opentelemetry",
    )
    commands = [
        ("collector", [str(COLLECTOR), f"--config={REPO / 'otel-collector.yaml'}"], collector_env),
        ("prometheus", ["prometheus", f"--config.file={work / 'prometheus.yml'}",
                        f"--storage.tsdb.path={work / 'prometheus-data'}",
                        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                        "--enable-feature=exemplar-storage"], None),
        ("alertmanager", ["prometheus-alertmanager", f"--config.file={work / 'alertmanager.yml'}",
                          f"--storage.path={work / 'alertmanager-data'}",
                          f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                          "--cluster.listen-address="], None),
        ("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(ports["redis"]),
                   "--save", "", "--appendonly", "no"], None),
    ]  # fmt: skip
    processes = []
    result = Live(f"http://127.0.0.1:{ports['prometheus']}", ports["grpc"], ports["redis"], work,
                  jaeger.url, victorialogs.url, notifications)  # fmt: skip
    try:
        for name, command, env in commands:
            process, log = start(name, command, work, env)
            processes.append(process)
            result.logs.append(log)
        wait_until("the collector", lambda: ready(f"http://127.0.0.1:{ports['health']}/"), 30,
                   result.logs)  # fmt: skip
        wait_until("Prometheus", lambda: ready(f"{result.prometheus}/-/ready"), 30, result.logs)
        wait_until(
            "Alertmanager",
            lambda: ready(f"http://127.0.0.1:{ports['alertmanager']}/-/ready"),
            30,
            result.logs,
        )
        yield result
    finally:
        stop_processes(processes)
        hook.shutdown()
        hook.server_close()


@pytest.fixture(scope="module")
def incident(live: Live) -> dict[str, list[dict[str, str]]]:
    """Run the demo's scripted incident; returns every alert seen firing during the run."""
    env = clean_env()
    env.update(
        TTBT5_EXPORTER="otlp",
        TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{live.collector_grpc}",
        TTBT5_CACHE_REDIS_URL=f"redis://127.0.0.1:{live.redis_port}/0",
        TTBT5_METRIC_EXPORT_INTERVAL="1",
        TTBT5_SCHEDULE_DELAY="0.2",
    )
    log = live.work / "demo.log"
    live.logs.append(log)
    seen: dict[str, list[dict[str, str]]] = {}
    with log.open("w") as output:
        demo = subprocess.Popen(
            [sys.executable, "-m", "ttbt5_otel", "demo",
             "--seconds", str(DEMO_SECONDS), "--rate", "40"],
            stdout=output, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + DEMO_SECONDS + 90
            while demo.poll() is None and time.monotonic() < deadline:
                for name, labels in live.firing().items():
                    seen.setdefault(name, []).extend(labels)
                time.sleep(0.5)
        finally:
            if demo.poll() is None:
                demo.kill()
            demo.wait(timeout=30)
    assert demo.returncode == 0, log.read_text()[-3000:]
    assert "SUMMARY " in log.read_text()
    return seen


def delivered(live: Live, alertname: str, status: str) -> list[dict[str, str]]:
    return [
        alert["labels"]
        for notification in list(live.notifications)
        for alert in notification["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["status"] == status
    ]


def test_incident_alerts_fire_in_prometheus(live: Live, incident: dict) -> None:
    for alertname, labels in EXPECTED.items():
        fired = incident.get(alertname, [])
        assert fired, f"{alertname} never fired; seen: {sorted(incident)}"
        assert any(labels.items() <= found.items() for found in fired), (alertname, fired)


def test_every_dashboard_query_returns_data_for_the_demo(live: Live, incident: dict) -> None:
    queries = load_script(GRAFANA_DIR / "queries.py", "ttbt5_dashboard_queries")
    empty = set()
    for query in queries.all_queries(SERVICE, rate_interval="2m", time_range="5m"):
        result = live.api("query", query=query.expr)["result"]
        if not result:
            empty.add(query.panel)
    unexpected = empty - ONLY_UNDER_CONDITION - HTTP_PANELS
    assert not unexpected, f"panels without data for the demo: {sorted(unexpected)}"
    documented = (REPO / "docs" / "dashboards.md").read_text().split("## Panels that")[1]
    for panel in ONLY_UNDER_CONDITION | HTTP_PANELS:
        assert f"**{panel}**" in documented, f"{panel} must be documented as conditional"


def test_alertmanager_delivers_them_to_the_webhook(live: Live, incident: dict) -> None:
    for alertname, labels in EXPECTED.items():
        found = wait_until(
            f"{alertname} delivered",
            lambda name=alertname: delivered(live, name, "firing"),
            60,
            live.logs,
        )
        assert any(labels.items() <= f.items() for f in found), (alertname, found)
        assert all(f["severity"] in ("warning", "critical") for f in found)


def test_alerts_resolve_once_the_workload_is_gone(live: Live, incident: dict) -> None:
    for alertname in EXPECTED:
        wait_until(
            f"{alertname} resolved",
            lambda name=alertname: name not in live.firing() and delivered(live, name, "resolved"),
            120,
            live.logs,
        )


# --- from the alert to its evidence


def error_ratio_links(live: Live) -> dict[str, str]:
    """The annotations of a delivered Ttbt5HighErrorRatio notification."""
    for notification in list(live.notifications):
        for alert in notification["alerts"]:
            if alert["labels"]["alertname"] == "Ttbt5HighErrorRatio":
                return dict(alert["annotations"])
    return {}


def test_alert_links_lead_to_the_failing_requests_traces_and_logs(
    live: Live, incident: dict
) -> None:
    """The delivered error-ratio alert links to this service's error traces and ERROR logs,
    and one of those traces has log records under its trace id."""
    links = wait_until("a delivered error-ratio alert", lambda: error_ratio_links(live), 60,
                       live.logs)  # fmt: skip
    assert links["traces_api_url"].startswith(f"{live.jaeger}/api/traces?")
    assert links["logs_api_url"].startswith(f"{live.victorialogs}/select/logsql/query?")

    traces = get_json(links["traces_api_url"])["data"]
    assert_error_traces_of(SERVICE, traces)
    assert_error_records_of(SERVICE, get_lines(links["logs_api_url"]))

    # The web UIs answer the browser links (the locally built Jaeger serves a placeholder
    # page there; its Docker image serves the UI).
    for name in ("traces_url", "logs_url"):
        with urllib.request.urlopen(links[name].split("#")[0], timeout=10) as response:
            assert response.status == 200, links[name]

    with_logs = []
    for trace in traces:
        query = urllib.parse.urlencode({"query": f'trace_id:"{trace["traceID"]}"'})
        found = get_lines(f"{live.victorialogs}/select/logsql/query?{query}")
        if found:
            assert {record["trace_id"] for record in found} == {trace["traceID"]}
            with_logs.append(trace["traceID"])
    assert with_logs, "no error trace has log records under its trace id"

    # The terminal view of the same trace: the tree, an exception and its log records.
    shown = subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "trace", with_logs[0],
         "--jaeger-url", live.jaeger, "--logs-url", live.victorialogs],
        capture_output=True, text=True, timeout=60, check=False, env=clean_env(), cwd=REPO,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert with_logs[0] in shown.stdout
    assert "ERROR" in shown.stdout, shown.stdout


def exemplar_trace_ids(live: Live, metric: str) -> set[str]:
    now = time.time()
    data = live.api(
        "query_exemplars",
        query=f'{metric}{{service_name="{SERVICE}"}}',
        start=str(now - 600),
        end=str(now),
    )
    return {
        exemplar["labels"]["trace_id"]
        for series in data
        for exemplar in series["exemplars"]
        if "trace_id" in exemplar["labels"]
    }


@pytest.mark.parametrize(
    "metric",
    ["traces_span_metrics_duration_seconds_bucket", "ttbt5_operation_duration_seconds_bucket"],
)
def test_exemplars_lead_to_stored_traces(live: Live, incident: dict, metric: str) -> None:
    """Trace ids that Prometheus keeps as exemplars of a latency histogram resolve in Jaeger."""
    trace_ids = wait_until(f"exemplars of {metric}", lambda: exemplar_trace_ids(live, metric), 60,
                           live.logs)  # fmt: skip
    sample = sorted(trace_ids)[:20]
    for trace_id in sample:
        trace = get_json(f"{live.jaeger}/api/traces/{trace_id}")["data"]
        assert trace, trace_id
        assert trace[0]["traceID"] == trace_id
