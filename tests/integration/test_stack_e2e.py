"""The local stack end to end: ``ttbt5-otel stack up``, an instrumented app, Prometheus queries.

All tests of this module share one stack (collector, Prometheus, Alertmanager, Redis) on the
default ports, started through the command line in a subprocess. They run in file order:
the data checks first, then the collector outage (which restarts the collector and so resets
its self-telemetry), then what a local user or a web page can do to the stack (lifecycle API,
Redis without the password, state file modes), and last ``status`` and ``down``. A port
already taken by a process that the stack did not start fails the first test with the port
and that process named.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.loopback import clean_env
from tests.paths import REPO
from tests.stores import get_json, get_lines
from ttbt5_otel._cli.processes import ProcessId
from ttbt5_otel._cli.stack import redis_url, reload

pytestmark = pytest.mark.integration


APP = Path(__file__).parent / "apps" / "loop_app.py"
METRICS_DOC = REPO / "docs" / "metrics.md"
PROMETHEUS = "http://127.0.0.1:9090"
COLLECTOR_METRICS = "http://127.0.0.1:8889/metrics"
DATA_TIMEOUT = 60.0
COMPONENTS = (
    "jaeger",
    "victorialogs",
    "collector",
    "prometheus",
    "alert-webhook",
    "alertmanager",
    "redis",
)
COMMON_LABELS = {"service_name": "shop", "job": "shop", "deployment_environment_name": "test"}

# What the loop app records: every row of docs/metrics.md with one of these OTel names
# must exist in Prometheus after it ran.
APP_METRICS = {
    "ttbt5.operation.duration",
    "ttbt5.errors",
    "process.cpu.time",
    "process.memory.usage",
    "process.memory.virtual",
    "ttbt5.process.memory.limit",
    "process.thread.count",
    "process.unix.file_descriptor.count",
    "traces.span.metrics.calls",
    "traces.span.metrics.duration",
}


# --- helpers


def cli(state: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "stack", *args, "--state-dir", str(state)],
        # Span metrics every second instead of every 15 s, so the test does not wait for them.
        env=clean_env(TTBT5_COLLECTOR_SPAN_METRICS_FLUSH_INTERVAL="1s"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def app_env() -> dict[str, str]:
    return clean_env(
        TTBT5_OTLP_ENDPOINT="http://127.0.0.1:4317",
        TTBT5_METRIC_EXPORT_INTERVAL="1",
        TTBT5_SCHEDULE_DELAY="0.2",
    )


def recorded(state: Path) -> dict[str, ProcessId]:
    path = state / "stack.json"
    if not path.exists():
        return {}
    components = json.loads(path.read_text())["components"]
    return {name: ProcessId(c["pid"], c["start_time"]) for name, c in components.items()}


def alive(proc: ProcessId) -> bool:
    """Read /proc directly rather than through the code under test: exists and not a zombie."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def kill_leftovers(procs: dict[str, ProcessId]) -> None:
    for proc in procs.values():
        if alive(proc):
            os.kill(proc.pid, signal.SIGKILL)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = DATA_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last result: {last!r}")


def query(expr: str) -> list[dict[str, Any]]:
    url = f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def wait_series(expr: str, accept: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        found = query(expr)
        return found if found and accept(found) else None

    found: list[dict[str, Any]] = wait_for(f"{expr} in Prometheus", probe)
    first = found[0]
    print(f"{expr}: {len(found)} series, e.g. {first['metric']} = {first['value'][1]}")
    return found


def collector_count(service: str) -> float | None:
    """The operation count of ``service`` as the collector exposes it right now."""
    with urllib.request.urlopen(COLLECTOR_METRICS, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("ttbt5_operation_duration_seconds_count{") and (
            f'service_name="{service}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class AppRun:
    calls: int
    max_call_seconds: float
    progress: list[tuple[float, int]]


def app_result(stdout: str) -> AppRun:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    progress = [(line["time"], line["progress"]) for line in lines if "progress" in line]
    return AppRun(lines[-1]["calls"], lines[-1]["max_call_seconds"], progress)


def documented_metrics() -> list[dict[str, Any]]:
    """Rows of the OTel-name tables in docs/metrics.md."""
    rows = []
    in_table = False
    for line in METRICS_DOC.read_text().splitlines():
        if line.startswith("| OTel name |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        otel, kind, unit, prometheus, labels = cells[:5]
        rows.append(
            {
                "otel": otel.strip("`"),
                "kind": kind,
                "unit": unit.strip("`"),
                "prometheus": re.findall(r"`([^`]+)`", prometheus)[0],
                "labels": re.findall(r"`([^`]+)`", labels),
            }
        )
    return rows


# --- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("stack")
    try:
        result = cli(state, "up", "--with-redis")
        if result.returncode != 0:
            pytest.fail(f"stack up failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
        print(result.stdout)
        yield state
    finally:
        leftovers = recorded(state)
        cli(state, "down")
        kill_leftovers(leftovers)


@pytest.fixture(scope="module")
def shop_run(stack: Path) -> AppRun:
    proc = subprocess.run(
        [sys.executable, str(APP), "5"],
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return app_result(proc.stdout)


# --- tests


def test_app_metrics_reach_prometheus_with_their_labels(shop_run: AppRun) -> None:
    calls = shop_run.calls
    assert calls > 10
    selector = 'service_name="shop"'
    checks = {
        f'ttbt5_operation_duration_seconds_count{{{selector},code_function="charge",'
        'code_namespace="__main__",outcome="success"}': lambda v: v == calls,
        f'ttbt5_errors_total{{{selector},error_type="ApplicationError",error_severity="high",'
        'error_category="unknown"}': lambda v: v == calls // 2,
        f'process_cpu_time_seconds_total{{{selector},cpu_mode="user"}}': lambda v: v > 0,
        f'traces_span_metrics_calls_total{{{selector},span_name="checkout",'
        'span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_UNSET"}': lambda v: v == calls,
        f'traces_span_metrics_calls_total{{{selector},span_name="charge"}}': lambda v: v == calls,
    }
    for expr, accept in checks.items():
        [series] = wait_series(expr, lambda found, accept=accept: accept(value(found[0])))
        for label, expected in COMMON_LABELS.items():
            assert series["metric"][label] == expected, series
        assert series["metric"]["service_version"] == "1.2.3", series


def test_traces_logs_and_exemplars_reach_the_stores(shop_run: AppRun) -> None:
    """Through `stack up`'s collector: the app's traces in Jaeger, its log records in
    VictoriaLogs under the same trace ids, its histograms' exemplars in Prometheus."""
    jaeger = "http://127.0.0.1:16686"
    search = urllib.parse.urlencode({"service": "shop", "limit": "50"})
    traces = wait_for("the shop's traces in Jaeger",
                      lambda: get_json(f"{jaeger}/api/traces?{search}")["data"])  # fmt: skip
    trace_ids = {trace["traceID"] for trace in traces}

    def records() -> list[dict[str, Any]]:
        logs_query = urllib.parse.urlencode({"query": '"service.name":"shop"', "limit": "200"})
        return get_lines(f"http://127.0.0.1:9428/select/logsql/query?{logs_query}")

    found = wait_for("the shop's log records in VictoriaLogs", records)
    assert {record["_msg"] for record in found} >= {"charging"}
    assert trace_ids & {record.get("trace_id") for record in found}

    def exemplars() -> set[str]:
        now = time.time()
        params = urllib.parse.urlencode({
            "query": 'ttbt5_operation_duration_seconds_bucket{service_name="shop"}',
            "start": str(now - 600), "end": str(now),
        })  # fmt: skip
        data = get_json(f"{PROMETHEUS}/api/v1/query_exemplars?{params}")["data"]
        return {e["labels"]["trace_id"] for series in data for e in series["exemplars"]}

    exemplar_ids = wait_for("exemplars of the shop's operations", exemplars)
    some = min(exemplar_ids)
    assert get_json(f"{jaeger}/api/traces/{some}")["data"][0]["traceID"] == some


def test_collector_self_telemetry_shows_everything_accepted_nothing_lost(
    shop_run: AppRun,
) -> None:
    calls = shop_run.calls
    job = 'job="otel-collector-self"'
    # Each iteration makes two spans and logs once (plus once per handled error).
    wait_series(
        f"sum(otelcol_receiver_accepted_spans{{{job}}})", lambda f: value(f[0]) >= 2 * calls
    )
    wait_series(
        f"sum(otelcol_receiver_accepted_log_records{{{job}}})", lambda f: value(f[0]) >= calls
    )
    wait_series(f"sum(otelcol_receiver_accepted_metric_points{{{job}}})", lambda f: value(f[0]) > 0)
    for signal_name in ("spans", "metric_points", "log_records"):
        for metric in ("otelcol_receiver_refused", "otelcol_receiver_failed"):
            # Present with value 0: the receiver reports refusals even when there are none.
            [series] = query(f"sum({metric}_{signal_name}{{{job}}})")
            assert value(series) == 0, (metric, signal_name, series)
        # Created on the first failure only, hence the fallback to 0.
        [series] = query(f"sum(otelcol_exporter_send_failed_{signal_name}{{{job}}}) or vector(0)")
        assert value(series) == 0, (signal_name, series)


def test_documented_prometheus_names_exist(shop_run: AppRun) -> None:
    rows = documented_metrics()
    documented = {row["otel"] for row in rows}
    assert documented >= APP_METRICS, APP_METRICS - documented
    checked = 0
    for row in rows:
        if row["otel"] not in APP_METRICS:
            continue
        found = wait_series(f'{row["prometheus"]}{{service_name="shop"}}', bool)
        for label in row["labels"]:
            assert any(label in series["metric"] for series in found), (row, found)
        checked += 1
    assert checked == len(APP_METRICS)
    del shop_run


def test_collector_outage_neither_blocks_calls_nor_loses_later_data(stack: Path) -> None:
    service = "shop-outage"
    app = subprocess.Popen(
        [sys.executable, str(APP), "15", "0.02", service],
        env=app_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        before = wait_for(
            "the app's first metrics at the collector", lambda: collector_count(service)
        )
        old = recorded(stack)["collector"]
        assert alive(old)
        os.kill(old.pid, signal.SIGKILL)
        wait_for("the collector to die", lambda: not alive(old), timeout=10)
        time.sleep(2)

        again = cli(stack, "up", "--with-redis")
        assert again.returncode == 0, again.stderr
        restarted_at = time.time()
        # Only the missing component is started again.
        assert "prometheus: already running" in again.stdout, again.stdout
        assert "collector: ready" in again.stdout, again.stdout
        new = recorded(stack)["collector"]
        assert new != old
        assert alive(new)

        stdout, stderr = app.communicate(timeout=60)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert app.returncode == 0, stderr
    run = app_result(stdout)
    print(f"outage run: {run.calls} calls, max call {run.max_call_seconds * 1000:.1f} ms")
    # Export runs on background threads: no call waits for the dead collector.
    assert run.max_call_seconds < 0.5
    before_restart = max((n for t, n in run.progress if t < restarted_at), default=0)
    assert run.calls > before_restart > before
    # The final cumulative count includes every call made after the restart.
    wait_series(
        f'ttbt5_operation_duration_seconds_count{{service_name="{service}",code_function="charge"}}',
        lambda found: value(found[0]) == run.calls,
    )


def prometheus_self_metric(name: str) -> float | None:
    """A sample of Prometheus's own /metrics, read directly (no scrape delay)."""
    with urllib.request.urlopen(f"{PROMETHEUS}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def test_prometheus_refuses_lifecycle_requests_from_a_web_page(stack: Path) -> None:
    """Without --web.enable-lifecycle, a cross-origin POST can neither reload nor stop it."""
    for path in ("/-/reload", "/-/quit"):
        request = urllib.request.Request(
            f"{PROMETHEUS}{path}", method="POST", headers={"Origin": "http://evil.example"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        with refused.value as response:
            assert response.code == 403, (path, response.code)
            assert b"Lifecycle API is not enabled" in response.read()
    prometheus = recorded(stack)["prometheus"]
    argv = json.loads((stack / "stack.json").read_text())["components"]["prometheus"]["argv"]
    assert "--web.enable-lifecycle" not in argv
    time.sleep(1)  # a /-/quit that had been accepted would have taken effect by now
    assert alive(prometheus)
    with urllib.request.urlopen(f"{PROMETHEUS}/-/ready", timeout=5) as response:
        assert response.status == 200


def test_sighup_reloads_prometheus(stack: Path) -> None:
    name = "prometheus_config_last_reload_success_timestamp_seconds"
    before = prometheus_self_metric(name)
    assert before is not None
    prometheus = recorded(stack)["prometheus"]
    reload(stack)
    wait_for(
        "Prometheus to reload its configuration",
        lambda: (prometheus_self_metric(name) or 0) > before,
        timeout=15,
    )
    assert prometheus_self_metric("prometheus_config_last_reload_successful") == 1
    assert recorded(stack)["prometheus"] == prometheus
    assert alive(prometheus)


def test_redis_refuses_clients_without_the_password_of_the_state_directory(stack: Path) -> None:
    password_file = stack / "redis.password"
    password = password_file.read_text().strip()
    with socket.create_connection(("127.0.0.1", 6379), timeout=5) as anonymous:
        anonymous.sendall(b"PING\r\n")
        assert anonymous.recv(256).startswith(b"-NOAUTH")
    with socket.create_connection(("127.0.0.1", 6379), timeout=5) as guesser:
        guesser.sendall(b"AUTH not-the-password\r\n")
        assert guesser.recv(256).startswith(b"-WRONGPASS")
    # The documented setting, as apps and the demo get it.
    url = redis_url(stack)
    assert url == f"redis://:{password}@127.0.0.1:6379/0"
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        assert client.ping()
    finally:
        client.close()
    # The secret is in no command line, record or log; `status` says where it is.
    pid = recorded(stack)["redis"].pid
    assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert password not in (stack / "stack.json").read_text()
    for log in stack.glob("*.log"):
        assert password not in log.read_text(errors="replace"), log
    shown = cli(stack, "status")
    assert f"password_file={password_file}" in shown.stdout, shown.stdout
    assert password not in shown.stdout + shown.stderr


def test_state_directory_is_private(stack: Path) -> None:
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(stack) == 0o700
    files = [path for path in stack.iterdir() if path.is_file()]
    names = {path.name for path in files}
    assert {"stack.json", "redis.password", "redis.conf", "collector.log"} <= names, names
    for path in files:
        assert mode(path) == 0o600, path
    for name in COMPONENTS:
        assert mode(stack / name) == 0o700, name


def test_status_and_down_stop_exactly_the_recorded_processes(stack: Path) -> None:
    status = cli(stack, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name in COMPONENTS:
        [line] = [line for line in status.stdout.splitlines() if line.startswith(name)]
        assert line.split()[1:3] == ["running", "ready"], line
    # Where to reach each part, the stores included.
    assert "query API               http://127.0.0.1:16686/api/traces" in status.stdout
    assert "web UI                  http://127.0.0.1:9428/select/vmui/" in status.stdout
    procs = recorded(stack)
    assert set(procs) == set(COMPONENTS)

    down = cli(stack, "down")
    assert down.returncode == 0, down.stderr
    for name in COMPONENTS:
        assert f"{name}: stopped" in down.stdout, down.stdout
    for name, proc in procs.items():
        assert not alive(proc), name
    assert not (stack / "stack.json").exists()

    after = cli(stack, "status")
    assert after.returncode == 1
    assert "no stack recorded" in after.stdout


def _processes_mentioning(path: Path) -> list[str]:
    """Live processes whose command line names ``path`` (every part of the stack does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in command and alive(ProcessId(int(entry.name), 0)):
            found.append(f"{entry.name}: {command[:200]}")
    return found


def test_a_second_stack_up_starts_in_seconds_and_down_leaves_nothing(stack: Path) -> None:
    """After the first start nothing is built again: a restart only waits for readiness."""
    started = time.monotonic()
    up = cli(stack, "up", "--with-redis")
    elapsed = time.monotonic() - started
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"second stack up: {elapsed:.1f} s")
    # A build of the collector or the stores takes minutes; readiness takes seconds.
    assert elapsed < 60, up.stdout
    status = cli(stack, "status")
    for name in COMPONENTS:
        [line] = [line for line in status.stdout.splitlines() if line.startswith(name)]
        assert line.split()[1:3] == ["running", "ready"], line
    assert _processes_mentioning(stack)

    down = cli(stack, "down")
    assert down.returncode == 0, down.stderr
    assert _processes_mentioning(stack) == []
