"""The integration demo end to end: against the local stack, and in console mode."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.test_stack_e2e import (
    REPO,
    cli,
    kill_leftovers,
    recorded,
    wait_series,
)
from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver
from tests.stores import assert_error_records_of, assert_error_traces_of, get_json, get_lines
from ttbt5_otel._cli.alert_view import fetch_notifications
from ttbt5_otel._cli.stack import redis_url

pytestmark = pytest.mark.integration


def run_demo(env: dict[str, str], seconds: float) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "demo", "--seconds", str(seconds), "--rate", "40"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("SUMMARY ")]
    return json.loads(line.removeprefix("SUMMARY ")), proc.stdout


def test_demo_in_console_mode_without_a_stack():
    summary, stdout = run_demo(clean_env(TTBT5_EXPORTER="console"), 4)
    assert summary["exporter"] == "console"
    assert summary["orders"] > 50
    assert "Demo summary" in stdout
    assert "ttbt5-otel stack up" in stdout


def test_demo_sends_to_the_configured_endpoint_and_says_which():
    with GrpcReceiver() as receiver:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, TTBT5_SCHEDULE_DELAY="0.2")
        summary, stdout = run_demo(env, 3)
        assert summary["exporter"] == "otlp"
        assert summary["endpoint"] == receiver.endpoint
        assert f"OTLP to {receiver.endpoint}" in stdout
        assert receiver.received.wait_for(lambda r: r.spans())
        assert {s["resource"]["service.name"] for s in receiver.received.spans()} == {"orders-demo"}


@pytest.fixture
def stack(tmp_path: Path):
    state = tmp_path / "stack"
    up = cli(state, "up", "--with-redis")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield state
    finally:
        down = cli(state, "down")
        kill_leftovers(recorded(state))
        assert down.returncode == 0, down.stderr


def test_demo_against_the_local_stack(stack: Path):
    # The stack's Redis requires its generated password: the demo gets it as apps do.
    redis = redis_url(stack)
    assert redis is not None
    env = clean_env(
        TTBT5_METRIC_EXPORT_INTERVAL="1", TTBT5_SCHEDULE_DELAY="0.2", TTBT5_CACHE_REDIS_URL=redis
    )
    summary, stdout = run_demo(env, 12)
    assert summary["exporter"] == "otlp"
    assert summary["cache_levels"] == "memory+redis"
    assert summary["orders"] > 300
    assert 0.05 < summary["error_ratio"] < 1
    assert "closed->open" in summary["breaker_transitions"]
    assert "half_open->closed" in summary["breaker_transitions"]
    assert "http://127.0.0.1:9090" in stdout
    service = 'service_name="orders-demo"'
    wait_series(f"ttbt5_operation_duration_seconds_count{{{service}}}", lambda found: True)
    wait_series(
        f'ttbt5_cache_requests_total{{{service},cache_level="l1",cache_result="hit"}}',
        lambda found: True,
    )
    wait_series(f'ttbt5_cache_requests_total{{{service},cache_level="l2"}}', lambda found: True)
    wait_series(
        f'ttbt5_circuit_breaker_transitions_total{{{service},from="closed",to="open"}}',
        lambda found: True,
    )
    wait_series(f'ttbt5_retry_calls_total{{{service},retry_outcome="failed_with_retry"}}', bool)
    wait_series(f'ttbt5_errors_total{{{service},error_category="validation"}}', bool)
    wait_series(f'ttbt5_health_status{{{service},health_check="payments"}}', bool)
    wait_series(f'traces_span_metrics_calls_total{{{service},span_name="place_order"}}', bool)


def test_demo_incident_pages_within_a_minute(stack: Path):
    """The README's main command: a page delivered by Alertmanager within 60 s of the start.

    The stack starts with the real SLO rules; the demo switches it to the demo profile,
    fails the payment provider and watches the stack's webhook receiver. The time is taken
    from the launch of the process, interpreter start-up included, and checked against the
    receiver's own record of the delivery.
    """
    env = clean_env(TTBT5_CACHE_REDIS_URL=redis_url(stack) or "", TTBT5_STACK_DIR=str(stack))
    launched = datetime.now(UTC)
    proc = subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "demo", "--incident", "--state-dir", str(stack)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("SUMMARY ")]
    page = json.loads(line.removeprefix("SUMMARY "))["page"]
    assert page["alertname"] == "Ttbt5ErrorBudgetBurn"
    assert page["service"] == "orders-demo"
    assert page["severity"] == "critical"
    assert page["after_seconds"] < 60, page
    assert "now evaluates the demo SLO profile" in proc.stdout
    assert "PAGE delivered by Alertmanager" in proc.stdout
    shown = proc.stdout.split("PAGE delivered by Alertmanager", 1)[1]
    for needle in ("Ttbt5ErrorBudgetBurn", "orders-demo", "SLO burns its error budget", "traces"):
        assert needle in shown, shown[:2000]

    # What Alertmanager really delivered, as the receiver recorded it.
    delivered = [
        (notification, alert)
        for notification in fetch_notifications("http://127.0.0.1:9099")
        for alert in notification["alerts"]
        if alert["labels"].get("alertname") == "Ttbt5ErrorBudgetBurn"
        and alert["labels"].get("response") == "page"
        and alert["status"] == "firing"
    ]
    assert delivered, "the receiver holds no page"
    notification, alert = delivered[0]
    assert notification["receiver"] == "critical"
    assert alert["labels"]["slo_profile"] == "demo"
    received = datetime.fromisoformat(notification["received_at"])
    seconds = (received - launched).total_seconds()
    print(f"page delivered {seconds:.1f} s after the demo's launch")
    assert seconds < 60
    for key in ("runbook_url", "traces_url", "logs_url", "dashboard_url"):
        assert alert["annotations"][key].startswith("http"), key
    follow_the_page_to_its_evidence(alert["annotations"], env)


def follow_the_page_to_its_evidence(links: dict[str, str], env: dict[str, str]) -> None:
    """What a newcomer does next: the page's links give the failed orders' traces and their
    ERROR records, and the terminal view shows one of those traces with its log records."""
    traces = get_json(links["traces_api_url"])["data"]
    assert_error_traces_of("orders-demo", traces)
    assert_error_records_of("orders-demo", get_lines(links["logs_api_url"]))

    logs_base = links["logs_api_url"].split("/select/", 1)[0]

    def has_records(trace_id: str) -> bool:
        query = urllib.parse.urlencode({"query": f'trace_id:"{trace_id}"'})
        return bool(get_lines(f"{logs_base}/select/logsql/query?{query}"))

    trace_id = next((t["traceID"] for t in traces if has_records(t["traceID"])), None)
    assert trace_id, "no trace of the page has log records under its trace id"
    shown = subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "trace", trace_id],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert trace_id in shown.stdout
    assert "ERROR" in shown.stdout, shown.stdout
