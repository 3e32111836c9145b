"""The Alertmanager config: valid, routes by severity, examples that work when enabled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.dashboards._support import ALERTMANAGER_CONFIG, PROMETHEUS_DIR, run, tool

# Commented settings that only need their "# " removed to take effect.
_EXAMPLE_LINE = re.compile(r"^(\s+)# (\s*(?:- )?[a-z_]+:.*)$", re.MULTILINE)


def _amtool() -> str:
    return tool("amtool", "prometheus-alertmanager")


def _config() -> dict[str, object]:
    loaded = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _routes_to(receiver: str, *labels: str) -> None:
    run(
        [
            _amtool(),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={receiver}",
            *labels,
        ]
    )


def test_config_is_valid() -> None:
    run([_amtool(), "check-config", str(ALERTMANAGER_CONFIG)])


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "critical"), ("warning", "warning")]
)
def test_severity_selects_the_receiver(severity: str, receiver: str) -> None:
    _routes_to(receiver, f"severity={severity}", "alertname=Ttbt5HighErrorRatio", "service_name=a")


def test_alerts_without_severity_reach_the_default_receiver() -> None:
    _routes_to("default", "alertname=Custom", "service_name=a")


def test_every_severity_of_the_rules_has_its_own_route() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "rules" / "ttbt5-alerts.yml").read_text())
    severities = {
        rule["labels"]["severity"] for group in rules["groups"] for rule in group["rules"]
    }
    assert severities == {"critical", "warning"}
    for severity in severities:
        _routes_to(severity, f"severity={severity}", "alertname=Ttbt5TargetDown")


def test_grouping_repeats_and_inhibition() -> None:
    config = _config()
    route = config["route"]
    assert isinstance(route, dict)
    assert route["group_by"] == ["alertname", "service_name", "deployment_environment_name", "slo"]
    by_receiver = {child["receiver"]: child for child in route["routes"]}
    # Criticals repeat more often than warnings.
    assert by_receiver["critical"]["repeat_interval"] == "1h"
    assert by_receiver["warning"]["repeat_interval"] == "12h"
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "service_name", "deployment_environment_name", "slo"],
        }
    ]


def test_burn_rate_pages_and_tickets_route_by_severity() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "rules" / "ttbt5-slos.yml").read_text())
    burns = [
        rule["labels"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "Ttbt5ErrorBudgetBurn"
    ]
    assert {(labels["response"], labels["severity"]) for labels in burns} == {
        ("page", "critical"),
        ("ticket", "warning"),
    }
    for labels in burns:
        matchers = [f"{key}={value}" for key, value in labels.items()]
        _routes_to(labels["severity"], "alertname=Ttbt5ErrorBudgetBurn", *matchers)


def test_every_receiver_posts_to_the_local_webhook_by_default() -> None:
    receivers = _config()["receivers"]
    assert isinstance(receivers, list)
    assert {receiver["name"] for receiver in receivers} == {"default", "critical", "warning"}
    for receiver in receivers:
        assert set(receiver) == {"name", "webhook_configs"}, receiver
        assert receiver["webhook_configs"] == [
            {"url": "http://127.0.0.1:9099/alerts", "send_resolved": True}
        ]


def test_commented_email_and_slack_examples_are_valid(tmp_path: Path) -> None:
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    enabled, count = _EXAMPLE_LINE.subn(r"\1\2", text)
    config = yaml.safe_load(enabled)
    assert "smtp_smarthost" in config["global"]
    kinds = {key for receiver in config["receivers"] for key in receiver}
    assert {"email_configs", "slack_configs"} <= kinds, count
    path = tmp_path / "alertmanager.yml"
    path.write_text(enabled, encoding="utf-8")
    run([_amtool(), "check-config", str(path)])
