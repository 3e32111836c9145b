"""Shared helpers of the dashboard, rule and Alertmanager tests.

A missing promtool or amtool fails the tests rather than skipping them: a skipped
check would let rules, routes and dashboards drift apart unseen.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.loopback import free_port
from tests.paths import REPO

PROMETHEUS_DIR = REPO / "dashboards" / "prometheus"
ALERTMANAGER_CONFIG = REPO / "dashboards" / "alertmanager" / "alertmanager.yml"
GRAFANA_DIR = REPO / "dashboards" / "grafana"
# The SLO rules with every window and for: divided by 10, evaluated every second: the ones a
# test of a few minutes can fill. Same rule names as rules/ttbt5-slos.yml, never load both.
DEMO_SLO_RULES = PROMETHEUS_DIR / "profiles" / "demo" / "ttbt5-slos.yml"
RUNBOOKS = REPO / "docs" / "runbooks.md"


def tool(name: str, package: str) -> str:
    """Path of ``name`` on PATH; fail the test when it is missing."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found on PATH: install the Debian package {package}", pytrace=False
        )
    return found


def run(
    args: list[str], cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail with its output unless it exits 0."""
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def load_script(path: Path, name: str) -> ModuleType:
    """Import a stand-alone script of dashboards/ as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fast_prometheus_config(
    work: Path,
    collector_ports: dict[str, int],
    alertmanager_port: int | None = None,
    render_options: tuple[str, ...] = (),
    slo_rules: Path | None = None,
) -> Path:
    """The bundled rules with short durations and prometheus.yml scraping every second.

    ``collector_ports`` holds the ``prom_exporter`` and ``telemetry`` ports of the collector
    under test, and the ``prometheus`` port the test Prometheus listens on (without it the
    self-scrape job is left out); without ``alertmanager_port`` no alerts are sent (they
    still fire). ``render_options`` go to ``render_rules.py`` (say, the stores' URLs).
    ``slo_rules`` is an SLO rule file loaded beside the fast rules (``DEMO_SLO_RULES``; the
    SLO rules are not rendered by ``render_rules.py``, and without it none are loaded).
    """
    run([sys.executable, str(PROMETHEUS_DIR / "render_rules.py"), "--fast", "--output-dir",
         str(work / "rules"), *render_options])  # fmt: skip
    if slo_rules is not None:
        shutil.copyfile(slo_rules, work / "rules" / slo_rules.name)
    scrape = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    scrape["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    scrape["rule_files"] = [str(work / "rules" / "*.yml")]
    if alertmanager_port is None:
        scrape.pop("alerting", None)
    else:
        scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            f"127.0.0.1:{alertmanager_port}"
        ]
    targets = {
        "otel-collector": collector_ports["prom_exporter"],
        "otel-collector-self": collector_ports["telemetry"],
        # Prometheus scraping itself, when the caller says where the test Prometheus listens.
        "prometheus": collector_ports.get("prometheus"),
    }
    scrape["scrape_configs"] = [
        job for job in scrape["scrape_configs"] if targets[job["job_name"]] is not None
    ]
    for job in scrape["scrape_configs"]:
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{targets[job['job_name']]}"]
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(scrape))
    return path


def collector_environment(ports: dict[str, int], **extra: str) -> dict[str, str]:
    """This environment plus the collector's ports (grpc, http, prom_exporter, telemetry,
    health), a one-second span-metrics flush, a queue directory of its own and trace and
    log stores at a loopback port where nothing listens (a test that wants them passes
    ``TTBT5_TRACES_BACKEND_ENDPOINT`` / ``TTBT5_LOGS_BACKEND_ENDPOINT``)."""
    return {
        **os.environ,
        "TTBT5_COLLECTOR_QUEUE_DIR": tempfile.mkdtemp(prefix="ttbt5-collector-queue-"),
        "TTBT5_TRACES_BACKEND_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TTBT5_LOGS_BACKEND_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "TTBT5_COLLECTOR_OTLP_GRPC_PORT": str(ports["grpc"]),
        "TTBT5_COLLECTOR_OTLP_HTTP_PORT": str(ports["http"]),
        "TTBT5_COLLECTOR_PROMETHEUS_PORT": str(ports["prom_exporter"]),
        "TTBT5_COLLECTOR_TELEMETRY_PORT": str(ports["telemetry"]),
        "TTBT5_COLLECTOR_HEALTH_PORT": str(ports["health"]),
        "TTBT5_COLLECTOR_SPAN_METRICS_FLUSH_INTERVAL": "1s",
        **extra,
    }


def firing_alerts(prometheus: str) -> dict[str, list[dict[str, str]]]:
    """Label sets of the alerts firing in the Prometheus at ``prometheus``, by alert name."""
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/alerts", timeout=5) as response:
            alerts = json.load(response)["data"]["alerts"]
    except OSError:
        return {}
    found: dict[str, list[dict[str, str]]] = {}
    for alert in alerts:
        if alert["state"] == "firing":
            found.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return found
