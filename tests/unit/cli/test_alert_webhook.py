"""The stack's alert webhook receiver, reading what it holds, and ``ttbt5-otel alerts``.

The receiver runs in a thread (or, for its signal handling, a subprocess) on a port the
system picks; nothing here listens on the stack's fixed ports.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.loopback import free_port
from tests.paths import REPO
from ttbt5_otel._cli import alert_view
from ttbt5_otel._cli.alert_view import fetch_notifications, format_notification, wait_for
from ttbt5_otel._cli.alert_webhook import (
    MAX_BODY,
    RECENT_LIMIT,
    AlertServer,
    NotificationStore,
    make_server,
)
from ttbt5_otel._cli.main import main
from ttbt5_otel._cli.stack import components
from ttbt5_otel._exceptions import StackError

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
RUNBOOK = "https://github.com/ttbt5/ttbt5-otel/blob/main/docs/runbooks.md#error-budget-burn"
TRACES = (
    "http://127.0.0.1:16686/search?service=orders-demo&tags=%7B%22otel.status_code%22%3A"
    "%22ERROR%22%7D&start=1760000000000000&end=1760003900000000&limit=20&lookback=custom"
)
LOGS = (
    "http://127.0.0.1:9428/select/vmui/#/?query=%22service.name%22%3A%22orders-demo%22"
    "%20severity_number%3A%3E%3D17%20_time%3A%5B1760000000%2C1760003900%5D"
)
DASHBOARD = (
    "http://localhost:3000/d/ttbt5-error-budget/ttbt5-error-budget?var-service=orders-demo"
    "&var-slo=availability"
)
SUMMARY = "orders-demo: availability SLO burns its error budget 14.4x too fast"


def page(status: str = "firing", service: str = "orders-demo") -> dict[str, Any]:
    """A notification as Alertmanager 0.27 posts it for the demo's burn-rate page."""
    labels = {
        "alertname": "Ttbt5ErrorBudgetBurn",
        "service_name": service,
        "slo": "availability",
        "severity": "critical",
        "response": "page",
        "burn_rate": "14.4",
        "long_window": "1h",
        "short_window": "5m",
        "slo_profile": "demo",
    }
    return {
        "receiver": "critical",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {
                    "summary": f"{service}: availability SLO burns its error budget 14.4x too fast",
                    "description": "2.5% of the requests failed over the last 1h.",
                    "runbook_url": RUNBOOK,
                    "traces_url": TRACES,
                    "traces_api_url": "http://127.0.0.1:16686/api/traces?service=orders-demo",
                    "logs_url": LOGS,
                    "dashboard_url": DASHBOARD,
                },
                "startsAt": "2025-10-09T08:53:20.123Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2025-10-09T09:01:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=slo%3Asli_error",
                "fingerprint": "4f1c2a9be0d3e5a7",
            }
        ],
        "groupLabels": {"alertname": "Ttbt5ErrorBudgetBurn", "service_name": service},
        "commonLabels": labels,
        "commonAnnotations": {"summary": SUMMARY},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="Ttbt5ErrorBudgetBurn"}',
        "truncatedAlerts": 0,
    }


def ticket() -> dict[str, Any]:
    """A warning without service or links: a collector alert."""
    return {
        "receiver": "warning",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Ttbt5CollectorExportFailures", "severity": "warning"},
                "annotations": {"summary": "the collector fails to export spans"},
                "startsAt": "2025-10-09T08:50:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "0a1b2c3d4e5f6789",
            }
        ],
        "version": "4",
    }


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "alerts.jsonl"


@pytest.fixture
def receiver(store_path: Path) -> Iterator[str]:
    """A receiver on a free port; its base URL."""
    with Running(store_path) as url:
        yield url


class Running:
    """Serve a receiver in a thread for the length of a ``with`` block."""

    def __init__(self, store: Path) -> None:
        self.server: AlertServer = make_server("127.0.0.1", 0, store)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send exactly the given headers (no Content-Length unless given), then ``body``."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.putrequest(method, path)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def post(url: str, payload: object, path: str = "/alerts") -> tuple[int, bytes]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return request(url, "POST", path, body, headers)


def get_json(url: str, path: str) -> Any:
    status, body = request(url, "GET", path)
    assert status == 200, body
    return json.loads(body)


# --- the receiver


def test_a_notification_is_stored_as_one_private_line_with_its_receipt_time(
    receiver: str, store_path: Path
) -> None:
    before = time.time()
    assert post(receiver, page()) == (200, b"ok\n")

    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
    [line] = store_path.read_text(encoding="utf-8").splitlines()
    stored = json.loads(line)
    received_at = stored.pop("received_at")
    assert stored == page()
    assert STAMP.fullmatch(received_at), received_at
    assert before - 1 <= datetime.fromisoformat(received_at).timestamp() <= time.time() + 1


def test_get_answers_the_notifications_oldest_first_and_after_since(receiver: str) -> None:
    assert get_json(receiver, "/alerts") == {"notifications": []}
    for notification in (page(), ticket(), page("resolved")):
        assert post(receiver, notification)[0] == 200

    found = get_json(receiver, "/alerts")["notifications"]
    assert [n["receiver"] for n in found] == ["critical", "warning", "critical"]
    assert [n["status"] for n in found] == ["firing", "firing", "resolved"]
    stamps = [n["received_at"] for n in found]
    # Strictly increasing, even within one millisecond: `since` never skips one.
    assert stamps == sorted(set(stamps))

    since = get_json(receiver, f"/alerts?since={stamps[0]}")["notifications"]
    assert [n["received_at"] for n in since] == stamps[1:]
    assert get_json(receiver, f"/alerts?since={stamps[-1]}") == {"notifications": []}
    assert fetch_notifications(receiver, since=stamps[1]) == found[2:]
    assert fetch_notifications(f"{receiver}/alerts/") == found


def test_the_notifications_survive_a_restart(store_path: Path) -> None:
    with Running(store_path) as url:
        post(url, page())
        first = fetch_notifications(url)
    with Running(store_path) as url:
        assert fetch_notifications(url) == first
        post(url, ticket())
        found = fetch_notifications(url)
    assert found[0] == first[0]
    assert found[1]["received_at"] > first[0]["received_at"]


def test_only_the_last_notifications_are_answered(store_path: Path) -> None:
    store = NotificationStore(store_path)
    for number in range(RECENT_LIMIT + 5):
        store.append({"receiver": "default", "number": number, "alerts": []})
    with Running(store_path) as url:
        found = fetch_notifications(url)
        assert [n["number"] for n in found] == list(range(5, RECENT_LIMIT + 5))
        # A line cut short (a crash while writing) is skipped.
        with store_path.open("a", encoding="utf-8") as file:
            file.write('{"receiver": "def\n')
        assert fetch_notifications(url) == found[1:]
        # Removed by hand: empty, until the next notification recreates it.
        store_path.unlink()
        assert fetch_notifications(url) == []
        assert post(url, ticket())[0] == 200
        [again] = fetch_notifications(url)
    assert again["received_at"] > found[-1]["received_at"]
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600


def test_the_store_is_made_private_and_never_followed_through_a_link(tmp_path: Path) -> None:
    loose = tmp_path / "loose.jsonl"
    loose.write_text("")
    loose.chmod(0o644)
    NotificationStore(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600

    target = tmp_path / "elsewhere"
    link = tmp_path / "alerts.jsonl"
    link.symlink_to(target)
    with pytest.raises(OSError, match=r"symbolic links|Too many levels"):
        make_server("127.0.0.1", 0, link)
    assert not target.exists()


def test_a_notification_that_cannot_be_stored_is_answered_500(
    receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(_store: NotificationStore, _notification: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(NotificationStore, "append", disk_full)
    # Alertmanager retries a delivery answered 5xx.
    assert post(receiver, page()) == (500, b"cannot store it: No space left on device\n")


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Length": str(MAX_BODY + 1)}, b"", 413),
        ({}, b"", 411),
        ({"Content-Length": "many"}, b"", 400),
        ({"Content-Length": "9"}, b"not json!", 400),
        ({"Content-Length": "3"}, b"[1]", 400),
        ({"Content-Length": str(MAX_BODY)}, b"[" * MAX_BODY, 400),
    ],
    ids=["too-large", "no-length", "bad-length", "not-json", "not-an-object", "too-deep"],
)
def test_bad_posts_are_refused_and_nothing_is_stored(
    receiver: str, store_path: Path, headers: dict[str, str], body: bytes, status: int
) -> None:
    # The too-large body is never sent: the receiver answers from the headers alone.
    assert request(receiver, "POST", "/alerts", body, headers)[0] == status
    assert store_path.read_text(encoding="utf-8") == ""


def test_other_paths_are_not_found_and_readiness_is_answered(
    receiver: str, store_path: Path
) -> None:
    assert post(receiver, page(), path="/other")[0] == 404
    assert request(receiver, "GET", "/")[0] == 404
    assert request(receiver, "GET", "/-/ready") == (200, b"ready\n")
    assert request(receiver, "GET", "/alerts?since=yesterday")[0] == 400
    assert store_path.read_text(encoding="utf-8") == ""


def test_the_process_logs_no_body_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    store = tmp_path / "alerts.jsonl"
    argv = [sys.executable, "-m", "ttbt5_otel._cli.alert_webhook", "--port", "0", "--store", store]
    with subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/alerts", first)
            assert match, first
            url = f"http://127.0.0.1:{match.group(1)}"
            assert post(url, page())[0] == 200
            assert post(url, "x", path="/elsewhere")[0] == 404
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            log = proc.stderr.read()
        finally:
            if proc.poll() is None:  # the test failed before SIGTERM
                proc.kill()
    assert "POST /alerts 200" in log
    assert "POST /elsewhere 404" in log
    assert "stopped" in log
    assert "Ttbt5ErrorBudgetBurn" not in log
    assert "orders-demo" not in log
    assert len(store.read_text(encoding="utf-8").splitlines()) == 1


# --- reading and printing


def test_format_notification_prints_each_alert_and_its_links_in_order() -> None:
    assert format_notification(page()) == [
        f"FIRING    critical  Ttbt5ErrorBudgetBurn  orders-demo  {SUMMARY}",
        f"    runbook   {RUNBOOK}",
        f"    traces    {TRACES}",
        f"    logs      {LOGS}",
        f"    dashboard {DASHBOARD}",
    ]
    resolved = page("resolved")
    del resolved["alerts"][0]["annotations"]["traces_url"]
    resolved["alerts"].append(ticket()["alerts"][0])
    assert format_notification(resolved) == [
        f"RESOLVED  critical  Ttbt5ErrorBudgetBurn  orders-demo  {SUMMARY}",
        f"    runbook   {RUNBOOK}",
        f"    logs      {LOGS}",
        f"    dashboard {DASHBOARD}",
        "FIRING    warning   Ttbt5CollectorExportFailures  -  the collector fails to export spans",
    ]


def test_format_notification_keeps_control_characters_off_the_terminal() -> None:
    hostile = page()
    hostile["alerts"][0]["annotations"] = {"summary": "line\nbreak \x1b[31mred", "logs_url": 7}
    hostile["alerts"].append("not an alert")
    assert format_notification(hostile) == [
        "FIRING    critical  Ttbt5ErrorBudgetBurn  orders-demo  line break  [31mred",
        "    logs      7",
    ]
    assert format_notification({"alerts": None}) == []


def test_fetch_raises_stack_error_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StackError, match=r"alert webhook receiver at .* does not answer"):
        fetch_notifications(url, timeout=1)


def test_fetch_raises_stack_error_when_something_else_answers(receiver: str) -> None:
    with pytest.raises(StackError, match="HTTP 404"):
        fetch_notifications(f"{receiver}/other")
    with pytest.raises(StackError, match="not an http"):
        fetch_notifications("file:///etc/passwd")


def test_wait_for_times_out_after_reporting_what_arrived(receiver: str) -> None:
    post(receiver, ticket())
    seen: list[dict[str, Any]] = []
    started = time.monotonic()
    never = wait_for(lambda _a, _n: False, receiver, None, 0.3, poll=0.05, on_new=seen.append)
    assert never is None
    assert 0.3 <= time.monotonic() - started < 3
    assert [n["receiver"] for n in seen] == ["warning"]


def test_wait_for_returns_the_matching_alert_as_it_arrives(receiver: str) -> None:
    post(receiver, page(service="old"))
    [old] = fetch_notifications(receiver)
    later = threading.Timer(0.2, lambda: (post(receiver, ticket()), post(receiver, page())))
    later.start()
    seen: list[dict[str, Any]] = []
    try:
        found = wait_for(
            lambda alert, _n: alert["labels"].get("alertname") == "Ttbt5ErrorBudgetBurn",
            receiver,
            old["received_at"],
            timeout=10,
            poll=0.05,
            on_new=seen.append,
        )
    finally:
        later.join()
    assert found is not None
    alert, notification = found
    assert alert["labels"]["service_name"] == "orders-demo"
    assert notification["receiver"] == "critical"
    assert [n["receiver"] for n in seen] == ["warning", "critical"]


# --- ttbt5-otel alerts


def test_alerts_command_prints_the_notifications(
    receiver: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "--url", receiver]) == 0
    assert capsys.readouterr().out == f"no notifications received yet by {receiver}\n"

    post(receiver, page())
    post(receiver, ticket())
    assert main(["alerts", "--url", receiver]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\S+Z  receiver critical, 1 alert", lines[0]), lines[0]
    assert lines[1] == f"  FIRING    critical  Ttbt5ErrorBudgetBurn  orders-demo  {SUMMARY}"
    assert lines[2] == f"      runbook   {RUNBOOK}"
    assert lines[5] == f"      dashboard {DASHBOARD}"
    assert re.fullmatch(r"\S+Z  receiver warning, 1 alert", lines[6]), lines[6]
    assert len(lines) == 8


def test_alerts_command_prints_json_lines_from_the_environment_url(
    receiver: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTBT5_ALERTS_URL", receiver)
    post(receiver, page())
    assert main(["alerts", "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    shown = json.loads(line)
    assert shown.pop("received_at")
    assert shown == page()


def test_alerts_follow_prints_new_notifications_until_interrupted(
    receiver: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    post(receiver, ticket())
    polls = 0

    def sleep(_seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 1:
            post(receiver, page())
        elif polls == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(alert_view.time, "sleep", sleep)
    assert main(["alerts", "--follow", "--url", receiver]) == 130
    out = capsys.readouterr().out
    assert out.count("receiver warning") == 1
    assert out.count("receiver critical") == 1
    assert out.index("receiver warning") < out.index("receiver critical")


def test_alerts_command_exits_1_when_the_receiver_does_not_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["alerts", "--url", url, "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert "alert webhook receiver" in err
    assert "does not answer" in err
    assert "ttbt5-otel stack up" in err
    assert main(["alerts", "--url", "ftp://x"]) == 2


# --- the stack component


@pytest.fixture
def binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any executable will do: components() only names the binaries, it starts nothing."""
    for name in ("COLLECTOR", "PROMETHEUS", "ALERTMANAGER", "REDIS", "JAEGER", "VICTORIALOGS"):
        monkeypatch.setenv(f"TTBT5_{name}_BIN", sys.executable)


@pytest.mark.usefixtures("binaries")
def test_the_stack_starts_the_receiver_before_alertmanager(tmp_path: Path) -> None:
    found = components(tmp_path, with_redis=False)
    names = [c.name for c in found]
    assert names.index("alert-webhook") == names.index("alertmanager") - 1
    [webhook] = [c for c in found if c.name == "alert-webhook"]
    assert webhook.argv == (
        sys.executable,
        "-m",
        "ttbt5_otel._cli.alert_webhook",
        "--host",
        "127.0.0.1",
        "--port",
        "9099",
        "--store",
        str(tmp_path / "alerts.jsonl"),
    )
    assert webhook.ports == (9099,)
    assert webhook.ready == "http://127.0.0.1:9099/-/ready"
    assert dict(webhook.urls) == {"notifications": "http://127.0.0.1:9099/alerts"}
    assert all(Path(part).is_absolute() for part in (webhook.argv[0], webhook.argv[-1]))

    # Where Alertmanager's configuration posts every notification.
    config = yaml.safe_load(
        (REPO / "dashboards/alertmanager/alertmanager.yml").read_text(encoding="utf-8")
    )
    posted = {
        hook["url"]
        for receiver in config["receivers"]
        for hook in receiver.get("webhook_configs", [])
    }
    assert posted == {webhook.urls["notifications"]}
