"""Alert drills: the remaining bundled alerts fire from telemetry really emitted.

The demo's incident (test_live_alerts.py) proves the error-ratio, open-breaker and
cache-hit alerts. Here a service in trouble (apps/fault_app.py: slow requests, a failing
health check, retries that run out) reports through the real collector, whose log exporter
points at a port where nothing listens, to Prometheus with the bundled rules rendered with
short durations. Then the collector is killed. Each alert must fire in Prometheus from that
telemetry alone: latency, health check, exhausted retries, failing collector export and
targets down.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.dashboards._support import (
    collector_environment,
    fast_prometheus_config,
    firing_alerts,
)
from tests.integration.test_live_alerts import COLLECTOR, ready, start
from tests.loopback import clean_env, free_port, stop_processes, wait_until
from tests.paths import REPO

pytestmark = pytest.mark.integration
APP = Path(__file__).parent / "apps" / "fault_app.py"
APP_SECONDS = 45
# Retries and the sending queue off: a failed export is counted at once, not after the
# default five minutes of retrying.
DRILL_OVERLAY = {
    "exporters": {
        "otlp_http/logs": {
            "retry_on_failure": {"enabled": False},
            "sending_queue": {"enabled": False},
        }
    }
}


class Stack:
    def __init__(self, work: Path, ports: dict[str, int]) -> None:
        self.work = work
        self.ports = ports
        self.prometheus = f"http://127.0.0.1:{ports['prometheus']}"
        self.logs: list[Path] = []
        self.collector: subprocess.Popen[bytes] | None = None

    def firing(self) -> dict[str, list[dict[str, str]]]:
        return firing_alerts(self.prometheus)

    def diagnostics(self) -> str:
        tails = [f"--- {p.name}\n{p.read_text()[-2500:]}" for p in self.logs if p.exists()]
        return f"firing: {sorted(self.firing())}\n" + "\n".join(tails)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not COLLECTOR.exists():
        pytest.fail(f"collector binary {COLLECTOR} missing: run `bash collector/build.sh`")
    work = tmp_path_factory.mktemp("drills")
    names = ("grpc", "http", "prom_exporter", "telemetry", "health", "prometheus", "dead")
    ports = {name: free_port() for name in names}
    result = Stack(work, ports)
    fast_prometheus_config(work, ports)
    (work / "drill.yaml").write_text(yaml.safe_dump(DRILL_OVERLAY))
    # The log store is down: nothing listens on this loopback port.
    collector_env = collector_environment(
        ports, TTBT5_LOGS_BACKEND_ENDPOINT=f"http://127.0.0.1:{ports['dead']}"
    )
    collector_command = [
        str(COLLECTOR),
        f"--config={REPO / 'otel-collector.yaml'}",
        f"--config={work / 'drill.yaml'}",
    ]
    prometheus_command = [
        "prometheus", f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
    ]  # fmt: skip
    processes = []
    try:
        collector, log = start("collector", collector_command, work, collector_env)
        result.collector = collector
        processes.append(collector)
        result.logs.append(log)
        prometheus, log = start("prometheus", prometheus_command, work)
        processes.append(prometheus)
        result.logs.append(log)
        health = f"http://127.0.0.1:{ports['health']}/"
        wait_until("the collector", lambda: ready(health), 30, result.diagnostics)
        wait_until("Prometheus", lambda: ready(f"{result.prometheus}/-/ready"), 30)
        yield result
    finally:
        stop_processes(processes)


@pytest.fixture(scope="module")
def troubled_service(stack: Stack) -> dict[str, list[dict[str, str]]]:
    """Run the troubled service; returns every alert seen firing while it ran."""
    env = clean_env(
        TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{stack.ports['grpc']}",
        TTBT5_RUNTIME_METRICS="false",
    )
    log = stack.work / "fault_app.log"
    stack.logs.append(log)
    seen: dict[str, list[dict[str, str]]] = {}
    with log.open("w") as output:
        app = subprocess.Popen(
            [sys.executable, str(APP), str(APP_SECONDS)],
            stdout=output, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:

            def all_fired() -> bool:
                for name, labels in stack.firing().items():
                    seen.setdefault(name, []).extend(labels)
                return set(EXPECTED) <= set(seen)

            wait_until("the drill alerts", all_fired, APP_SECONDS + 30, stack.diagnostics, 1.0)
        finally:
            app.send_signal(signal.SIGTERM)
            app.wait(timeout=30)
    return seen


EXPECTED = {
    "Ttbt5HighLatency": {"service_name": "drills"},
    "Ttbt5HealthCheckFailing": {"service_name": "drills", "health_check": "database"},
    "Ttbt5RetriesExhausted": {"service_name": "drills", "retry_name": "inventory"},
    "Ttbt5CollectorExportFailing": {"exporter": "otlp_http/logs"},
}


@pytest.mark.parametrize("alert", sorted(EXPECTED))
def test_alert_fires_from_real_telemetry(
    troubled_service: dict[str, list[dict[str, str]]], alert: str
) -> None:
    wanted = EXPECTED[alert]
    labels = troubled_service[alert]
    assert any(wanted.items() <= found.items() for found in labels), labels


def test_target_down_fires_when_the_collector_dies(
    stack: Stack, troubled_service: dict[str, list[dict[str, str]]]
) -> None:
    assert stack.collector is not None
    stack.collector.send_signal(signal.SIGKILL)
    stack.collector.wait(timeout=10)

    def both_down() -> bool:
        jobs = {labels.get("job") for labels in stack.firing().get("Ttbt5TargetDown", [])}
        return {"otel-collector", "otel-collector-self"} <= jobs

    wait_until("Ttbt5TargetDown for both collector jobs", both_down, 30, stack.diagnostics, 1.0)
