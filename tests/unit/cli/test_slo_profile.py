"""Choosing the SLO rules of the local Prometheus, and watching for the demo's page.

The switch is checked without Prometheus: the written configuration, the profile a fake
rules API reports, and the refusal to switch a Prometheus that reads another file. The
page watcher reads a fake webhook receiver.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from ttbt5_otel._cli import demo_incident, slo_profile
from ttbt5_otel._cli.stack import Record, _save, components, use_slo_profile
from ttbt5_otel._cli.stack_parts import STACK_FILES
from ttbt5_otel._exceptions import StackError


@pytest.fixture
def binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLLECTOR", "PROMETHEUS", "ALERTMANAGER", "REDIS", "JAEGER", "VICTORIALOGS"):
        monkeypatch.setenv(f"TTBT5_{name}_BIN", "/bin/true")


def test_each_profile_loads_one_slo_file_beside_the_other_rules(tmp_path: Path) -> None:
    for profile, slo_file in (
        ("standard", "prometheus/rules/ttbt5-slos.yml"),
        ("demo", "prometheus/profiles/demo/ttbt5-slos.yml"),
    ):
        path = slo_profile.write_config(tmp_path, profile)
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = [Path(rule).name for rule in config["rule_files"]]
        assert names.count("ttbt5-slos.yml") == 1
        assert {"ttbt5-alerts.yml", "ttbt5-recording.yml", "span-metrics.yml"} <= set(names)
        assert config["rule_files"][-1].endswith(slo_file)
        assert all(
            Path(rule).is_absolute() and Path(rule).is_file() for rule in config["rule_files"]
        )
        assert config["scrape_configs"], "the shipped scrape configs are kept"
        # The demo profile's windows are ten times shorter; so is the scrape interval.
        assert config["global"]["scrape_interval"] == ("1s" if profile == "demo" else "10s")
        assert slo_profile.current_profile(tmp_path) == profile
        assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_demo_profile_divides_alertmanager_timings_by_the_same_factor(
    tmp_path: Path,
) -> None:
    shipped = yaml.safe_load(
        (STACK_FILES / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    )
    slo_profile.write_config(tmp_path, "standard")
    standard = yaml.safe_load((tmp_path / "alertmanager.yml").read_text(encoding="utf-8"))
    assert standard == shipped
    slo_profile.write_config(tmp_path, "demo")
    demo = yaml.safe_load((tmp_path / "alertmanager.yml").read_text(encoding="utf-8"))
    root = demo["route"]
    assert (root["group_wait"], root["group_interval"], root["repeat_interval"]) == (
        "3s",
        "30s",
        "24m",
    )
    critical = next(r for r in root["routes"] if r["receiver"] == "critical")
    assert (critical["group_wait"], critical["group_interval"], critical["repeat_interval"]) == (
        "1s",
        "6s",
        "6m",
    )
    assert demo["receivers"] == shipped["receivers"]
    assert demo["inhibit_rules"] == shipped["inhibit_rules"]
    assert oct((tmp_path / "alertmanager.yml").stat().st_mode & 0o777) == "0o600"


def test_the_profile_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(slo_profile.PROFILE_ENV, raising=False)
    assert slo_profile.requested_profile(None) is None
    monkeypatch.setenv(slo_profile.PROFILE_ENV, "demo")
    assert slo_profile.requested_profile(None) == "demo"
    assert slo_profile.requested_profile("standard") == "standard"
    monkeypatch.setenv(slo_profile.PROFILE_ENV, "fast")
    with pytest.raises(
        StackError, match="TTBT5_SLO_PROFILE='fast': expected one of standard, demo"
    ):
        slo_profile.requested_profile(None)


def test_prometheus_reads_the_state_directory_config_written_before_it_starts(
    tmp_path: Path, binaries: None
) -> None:
    [prometheus] = [c for c in components(tmp_path, with_redis=False, slo_profile="demo")
                    if c.name == "prometheus"]  # fmt: skip
    assert f"--config.file={tmp_path / 'prometheus.yml'}" in prometheus.argv
    [alertmanager] = [c for c in components(tmp_path, with_redis=False) if c.name == "alertmanager"]
    assert f"--config.file={tmp_path / 'alertmanager.yml'}" in alertmanager.argv
    assert prometheus.prepare is not None
    prometheus.prepare()
    assert slo_profile.current_profile(tmp_path) == "demo"
    [collector] = [c for c in components(tmp_path, with_redis=False) if c.name == "collector"]
    assert collector.env["TTBT5_COLLECTOR_SPAN_METRICS_FLUSH_INTERVAL"] == "2s"


class _Rules(BaseHTTPRequestHandler):
    groups: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        body = json.dumps({"status": "success", "data": {"groups": self.groups}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rules_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rules)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_loaded_profile_is_read_from_the_slo_groups_interval(rules_api: str) -> None:
    _Rules.groups = [{"name": "ttbt5-instance", "interval": 10}]
    assert slo_profile.loaded_profile(rules_api) is None
    _Rules.groups.append({"name": "ttbt5-slo-orders-demo-availability", "interval": 1})
    assert slo_profile.loaded_profile(rules_api) == "demo"
    _Rules.groups[-1]["interval"] = 10
    assert slo_profile.loaded_profile(rules_api) == "standard"
    with pytest.raises(StackError, match="evaluates the standard SLO profile, not demo"):
        slo_profile.wait_loaded(rules_api, "demo", timeout=0.3)
    assert slo_profile.loaded_profile("http://127.0.0.1:9") is None


def test_a_prometheus_started_with_another_config_is_not_switched(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no Prometheus of the stack"):
        use_slo_profile(tmp_path, "demo")
    me = Path("/proc/self/cmdline").read_bytes().split(b"\0")[:-1]
    import os  # noqa: PLC0415

    from ttbt5_otel._cli.processes import start_time_of  # noqa: PLC0415

    record = Record(
        os.getpid(),
        start_time_of(os.getpid()) or 0.0,
        ["prometheus", "--config.file=/etc/prometheus/prometheus.yml"],
        str(tmp_path / "prometheus.log"),
        "http://127.0.0.1:9/-/ready",
        {},
        [part.decode() for part in me],
    )
    _save(tmp_path, {"prometheus": record})
    with pytest.raises(StackError, match=r"older ttbt5-otel .* stack down"):
        use_slo_profile(tmp_path, "demo")


def _notification(received_at: str, fingerprint: str = "new", **labels: str) -> dict[str, Any]:
    return {
        "receiver": "critical",
        "status": "firing",
        "received_at": received_at,
        "alerts": [
            {
                "status": "firing",
                "fingerprint": fingerprint,
                "labels": {"alertname": "Ttbt5ErrorBudgetBurn", **labels},
                "annotations": {
                    "summary": "orders-demo: availability SLO burns",
                    "traces_url": "http://t",
                },
            }
        ],
    }


def test_the_watch_prints_every_notification_and_keeps_the_first_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivered: list[dict[str, Any]] = []
    asked: list[str | None] = []

    def fetch(url: str, since: str | None = None, timeout: float = 2.0) -> list[dict[str, Any]]:
        asked.append(since)
        return [n for n in delivered if since is None or n["received_at"] > since]

    monkeypatch.setattr(demo_incident, "fetch_notifications", fetch)
    monkeypatch.setattr(demo_incident, "_POLL_S", 0.02)
    lines: list[str] = []
    watch = demo_incident.PageWatch(
        "orders-demo",
        "2026-01-01T00:00:00.000Z",
        time.monotonic(),
        lines.append,
        ignore=frozenset({"earlier"}),
    )
    delivered.append(
        _notification("2026-01-01T00:00:01.000Z", response="ticket", service_name="orders-demo")
    )
    delivered.append(
        _notification("2026-01-01T00:00:02.000Z", response="page", service_name="other")
    )
    # A page of an earlier run, still firing: not this incident's.
    delivered.append(
        _notification(
            "2026-01-01T00:00:02.500Z", "earlier", response="page", service_name="orders-demo"
        )
    )
    delivered.append(
        _notification("2026-01-01T00:00:03.000Z", response="page", service_name="orders-demo")
    )
    deadline = time.monotonic() + 5
    while watch.page is None and time.monotonic() < deadline:
        time.sleep(0.02)
    watch.stop()
    assert watch.page is not None
    assert watch.page.alert["labels"]["service_name"] == "orders-demo"
    assert watch.page.alert["fingerprint"] == "new"  # not the earlier run's page
    assert watch.page.summary()["alertname"] == "Ttbt5ErrorBudgetBurn"
    text = "\n".join(lines)
    assert text.count("notification at") == 3
    assert text.count("PAGE delivered by Alertmanager") == 1
    assert asked[0] == "2026-01-01T00:00:00.000Z"
    assert "2026-01-01T00:00:03.000Z" in asked  # each look asks only for what is new
