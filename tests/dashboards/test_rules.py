"""The Prometheus rules: valid, unit-tested, rendered from one definition, documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.dashboards._support import PROMETHEUS_DIR, RUNBOOKS, load_script, run, tool

RULES_DIR = PROMETHEUS_DIR / "rules"
RENDER = PROMETHEUS_DIR / "render_rules.py"
render_rules = load_script(RENDER, "ttbt5_render_rules")

TABLE_START = "<!-- thresholds:start -->"
TABLE_END = "<!-- thresholds:end -->"
APP_LABELS = ("service_name", "deployment_environment_name", "instance")


def _promtool() -> str:
    return tool("promtool", "prometheus")


def _rules(path: Path) -> list[dict[str, Any]]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return _rules(RULES_DIR / render_rules.ALERTS_FILE)


def _anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the Markdown headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _render(tmp_path: Path, *options: str) -> Path:
    out = tmp_path / "rules"
    subprocess.run(
        [sys.executable, str(RENDER), "--output-dir", str(out), *options],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


# --- promtool


def test_rule_files_are_valid() -> None:
    files = sorted(RULES_DIR.glob("*.yml")) + sorted(PROMETHEUS_DIR.glob("profiles/*/*.yml"))
    run([_promtool(), "check", "rules", "--lint=all", "--lint-fatal", *map(str, files)])


def test_rule_unit_tests_pass() -> None:
    # The SLO rules' tests simulate days of traffic: test_slos.py runs them on their own.
    tests = [
        path
        for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
        if not path.name.startswith("ttbt5-slos")
    ]
    assert PROMETHEUS_DIR / "tests" / "ttbt5-alerts-test.yml" in tests
    run([_promtool(), "test", "rules", *map(str, tests)])


_BASE_ANNOTATIONS = {"summary", "description", "runbook_url"}
_EVIDENCE_ANNOTATIONS = {"traces_url", "traces_api_url", "logs_url", "logs_api_url"}


def _annotation_keys(alertname: str) -> set[str]:
    """Every alert is summarised, described and has a runbook; those of a service link to
    its traces and logs."""
    names_service = any(
        alert.name == alertname and "$labels.service_name" in alert.summary
        for alert in render_rules.ALERTS
    )
    return _BASE_ANNOTATIONS | (_EVIDENCE_ANNOTATIONS if names_service else set())


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    loaded = yaml.safe_load((PROMETHEUS_DIR / "tests" / "ttbt5-alerts-test.yml").read_text())
    fired: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for group in loaded["tests"]:
        for case in group.get("alert_rule_test", []):
            if not case.get("exp_alerts"):
                silent.add(case["alertname"])
            for alert in case.get("exp_alerts") or []:
                fired.add((case["alertname"], alert["exp_labels"]["severity"]))
                assert set(alert["exp_annotations"]) == _annotation_keys(case["alertname"])
    rules = {(rule["alert"], rule["labels"]["severity"]) for rule in _alerts()}
    assert rules <= fired, rules - fired
    assert {name for name, _ in rules} <= silent


# --- rendering


def test_committed_rules_equal_the_generator_output() -> None:
    diffs = render_rules.stale(RULES_DIR, render_rules.Settings())
    assert not diffs, "run python dashboards/prometheus/render_rules.py\n" + "".join(diffs)


def test_check_option_reports_stale_files(tmp_path: Path) -> None:
    out = _render(tmp_path)
    check = [sys.executable, str(RENDER), "--check", "--output-dir", str(out)]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    alerts = out / render_rules.ALERTS_FILE
    alerts.write_text(alerts.read_text().replace("> 0.05", "> 0.5"))
    stale = subprocess.run(check, capture_output=True, text=True, check=False)
    assert stale.returncode == 1
    assert "> 0.05" in stale.stdout


def test_fast_copy_has_short_durations_and_is_valid(tmp_path: Path) -> None:
    out = _render(tmp_path, "--fast")
    run([_promtool(), "check", "rules", *map(str, sorted(out.glob("*.yml")))])
    normal = {rule["alert"] for rule in _alerts()}
    fast_files = [out / render_rules.RECORDING_FILE, out / render_rules.ALERTS_FILE]
    for path in fast_files:
        loaded = yaml.safe_load(path.read_text())
        assert all(group["interval"] == "1s" for group in loaded["groups"])
        for rule in _rules(path):
            assert "5m]" not in rule["expr"], rule
            assert "offset 5m" not in rule["expr"], rule
            if "alert" in rule:
                assert rule["for"] == "0s", rule
                assert "last 5m" not in rule["annotations"]["description"], rule
    assert {rule["alert"] for rule in _rules(fast_files[1])} == normal


def test_for_scale_and_window_options(tmp_path: Path) -> None:
    out = _render(tmp_path, "--for-scale", "0.1", "--interval", "5s", "--window", "1m")
    durations = {rule["alert"]: rule["for"] for rule in _rules(out / render_rules.ALERTS_FILE)}
    assert durations["Ttbt5HighErrorRatio"] == "30s"
    assert durations["Ttbt5LowCacheHitRatio"] == "90s"
    recording = _rules(out / render_rules.RECORDING_FILE)
    assert any("[1m]" in rule["expr"] for rule in recording)


def test_durations_are_formatted_for_prometheus() -> None:
    assert render_rules.format_duration(300) == "5m"
    assert render_rules.format_duration(90) == "90s"
    assert render_rules.format_duration(0) == "0s"
    assert render_rules.format_duration(3600) == "1h"
    assert render_rules.parse_duration("15m") == 900


# --- labels, annotations, docs


def _about_a_scrape_target(expr: str) -> bool:
    """Collector and scrape alerts: labelled by the scrape target's job and instance."""
    return expr.startswith(("up ", "(\n  scrape_samples_scraped")) or "collector:otelcol_" in expr


def test_every_alert_is_labelled_and_annotated() -> None:
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule
        assert set(rule["annotations"]) == _annotation_keys(rule["alert"]), rule
        assert render_rules.parse_duration(rule["for"]) >= 60, rule
        description = rule["annotations"]["description"]
        assert "{{ $labels.instance }}" in description, rule
        if _about_a_scrape_target(rule["expr"]):
            assert "{{ $labels.job }}" in description, rule
            assert "{{ $labels.instance }}" in rule["annotations"]["summary"], rule
        else:
            assert "{{ $labels.service_name }}" in description, rule
            assert "{{ $labels.service_name }}" in rule["annotations"]["summary"], rule
            # The alert keeps the labels that say where it comes from.
            assert all(label in rule["expr"] or "instance:" in rule["expr"] for label in APP_LABELS)


def test_runbook_links_point_at_existing_sections() -> None:
    anchors = _anchors(RUNBOOKS.read_text(encoding="utf-8"))
    for rule in _alerts():
        base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert base == render_rules.RUNBOOK_BASE, rule
        assert base.endswith("/docs/runbooks.md"), base
        assert anchor in anchors, f"docs/runbooks.md has no section #{anchor}"


def test_thresholds_table_in_the_runbooks_is_current() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    assert TABLE_START in text
    assert TABLE_END in text
    documented = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip("\n") + "\n"
    assert documented == render_rules.thresholds_table(), (
        "update the table: python dashboards/prometheus/render_rules.py --table"
    )


def test_collector_alerts_name_their_source_labels() -> None:
    """Each collector alert says which component and signal in its summary and description."""
    source = {
        "Ttbt5CollectorRefusingData": "signal",
        "Ttbt5CollectorExportQueueFull": "exporter",
        "Ttbt5CollectorExportFailing": "exporter",
    }
    rules = {rule["alert"]: rule for rule in _alerts()}
    for name, label in source.items():
        annotations = rules[name]["annotations"]
        assert f"{{{{ $labels.{label} }}}}" in annotations["summary"], name
        assert f"{{{{ $labels.{label} }}}}" in annotations["description"], name
        assert f"by (job, instance, {label})" in rules[name]["expr"], name


def test_one_incident_pages_once() -> None:
    """The effect alerts leave the incidents their cause alerts already report."""
    rules = {rule["alert"]: rule["expr"] for rule in _alerts()}
    assert "unless on (job, instance, signal)" in rules["Ttbt5CollectorRefusingData"]
    assert "unless on (job, instance, exporter)" in rules["Ttbt5CollectorExportQueueFull"]
    scrape_limit = rules["Ttbt5ScrapeLimitExceeded"].strip()
    assert scrape_limit.replace("\n", "\n  ") in rules["Ttbt5TargetDown"]


def test_prometheus_config_limits_the_application_scrape_and_scrapes_itself() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    app = jobs["otel-collector"]
    assert app["static_configs"][0]["targets"] == ["127.0.0.1:8889"]
    # A 2,000-attribute-set histogram (~38,000 samples) is refused, a normal app is not.
    assert 5_000 <= app["sample_limit"] < 38_000
    assert 16 < app["label_limit"] <= 64
    assert app["label_name_length_limit"] >= 64
    assert app["label_value_length_limit"] >= 256
    # The stack and docker compose run Prometheus on 127.0.0.1:9090 / 0.0.0.0:9090.
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:9090"]


def test_prometheus_config_is_valid() -> None:
    run([_promtool(), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
