"""``init()`` against real OTLP receivers on loopback, in a separate process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver, HttpReceiver, Received, free_port

pytestmark = pytest.mark.integration
APPS = Path(__file__).parent / "apps"
APP = APPS / "shop_app.py"


def run_app(env_extra: dict[str, str], *args: str, timeout: float = 60) -> tuple[dict, float]:
    env = clean_env(**env_extra)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(APP), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), elapsed


def assert_everything_arrived(received: Received) -> None:
    spans = received.spans()
    names = {s["name"] for s in spans}
    assert {"checkout", "charge"} <= names
    charge = next(s for s in spans if s["name"] == "charge")
    resource = charge["resource"]
    assert resource["service.name"] == "shop"
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment.name"] == "test"
    assert resource["service.instance.id"]
    assert charge["attributes"]["code.function"] == "charge"
    checkout = next(s for s in spans if s["name"] == "checkout")
    assert checkout["attributes"]["cart_size"] == 3
    handled = [
        attributes
        for s in spans
        if s["name"] == "checkout"
        for name, attributes in s["events"]
        if name == "exception"
    ]
    assert len(handled) == 2
    assert handled[0]["error.handled"] is True

    points = received.metric_points()
    durations = [p for p in points if p["name"] == "ttbt5.operation.duration"]
    assert durations, sorted({p["name"] for p in points})
    assert durations[0]["unit"] == "s"
    # Cumulative temporality: each export repeats the running total, so the last one counts.
    assert durations[-1]["count"] == 5
    assert durations[0]["attributes"]["outcome"] == "success"
    errors = [p for p in points if p["name"] == "ttbt5.errors"]
    assert errors[-1]["value"] == 2
    assert errors[0]["attributes"] == {
        "error.type": "ApplicationError",
        "error.severity": "high",
        "error.category": "unknown",
    }
    assert {"process.cpu.time", "process.memory.usage"} <= {p["name"] for p in points}
    assert durations[0]["resource"]["service.name"] == "shop"

    logs = received.log_records()
    charging = [r for r in logs if r["body"] == "charging"]
    assert len(charging) == 5
    assert charging[0]["attributes"]["order_id"] == "o-0"
    assert charging[0]["attributes"]["password"] == "[REDACTED]"
    assert charging[0]["span_id"] in {s["span_id"] for s in spans if s["name"] == "charge"}
    assert any(r["severity"] == "ERROR" and "limit exceeded" in r["body"] for r in logs)


def test_grpc_export_delivers_all_signals_on_graceful_shutdown():
    with GrpcReceiver() as receiver:
        result, _ = run_app({"TTBT5_OTLP_ENDPOINT": receiver.endpoint})
        assert result["calls"] == 5
        assert_everything_arrived(receiver.received)


def test_http_protobuf_export():
    with HttpReceiver() as receiver:
        run_app(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        )
        assert set(receiver.content_types) == {"application/x-protobuf"}
        assert_everything_arrived(receiver.received)


def test_no_collector_neither_fails_nor_blocks_calls():
    closed = free_port()
    result, elapsed = run_app(
        {
            "TTBT5_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}",
            "TTBT5_OTLP_TIMEOUT": "2",
            "TTBT5_SHUTDOWN_TIMEOUT": "3",
            "TTBT5_SCHEDULE_DELAY": "0.05",
        },
        "50",
    )
    assert result["calls"] == 50
    # Export runs on background threads: a call waiting on the dead endpoint would take
    # at least the 2 s export timeout.
    assert result["max_call_seconds"] < 0.5
    # Shutdown gives up within its bound instead of hanging the exit.
    assert elapsed < 30


def test_opentelemetry_instrument_uses_the_same_setup(tmp_path):
    app = tmp_path / "plain_app.py"
    app.write_text(
        "import logging\n"
        "from opentelemetry import trace\n"
        "with trace.get_tracer('plain').start_as_current_span('auto-configured'):\n"
        "    logging.getLogger('plain').warning('agent-log')\n"
    )
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    with GrpcReceiver() as receiver:
        env = clean_env()
        env.update(
            {
                "TTBT5_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_SERVICE_NAME": "agent-app",
                "OTEL_PYTHON_DISTRO": "ttbt5",
            }
        )
        proc = subprocess.run(
            [str(instrument), sys.executable, str(app)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert receiver.received.wait_for(lambda r: r.spans())
        [recorded] = receiver.received.spans()
        assert recorded["name"] == "auto-configured"
        assert recorded["resource"]["service.name"] == "agent-app"
        assert recorded["resource"]["telemetry.distro.name"] == "ttbt5-otel"
        # The logging instrumentation is installed here as opentelemetry-bootstrap would;
        # the distro leaves it out, so each record is exported once, by the ttbt5 bridge.
        assert receiver.received.wait_for(lambda r: r.log_records())
        logs = [r for r in receiver.received.log_records() if r["body"] == "agent-log"]
        assert len(logs) == 1, logs
        assert logs[0]["trace_id"] == recorded["trace_id"]
        assert "agent-log" in proc.stderr, "the app's console still shows its warning"


def test_forked_child_gets_its_own_instance_id(tmp_path):
    script = tmp_path / "fork_app.py"
    script.write_text(
        "import os, sys\n"
        "import ttbt5_otel\n"
        "t = ttbt5_otel.init(service_name='forker', exporter='none', runtime_metrics=False)\n"
        "parent = t.resource.attributes['service.instance.id']\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.write(w, t.resource.attributes['service.instance.id'].encode())\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "child = os.read(r, 100).decode()\n"
        "print(parent, child)\n"
    )
    env = clean_env()
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    parent, child = proc.stdout.split()
    assert parent != child


@pytest.mark.parametrize("ending", ["terminate", "close"])
def test_pool_workers_export_everything_with_their_own_identity(ending):
    """Pool workers exit through os._exit; their spans still arrive, each with its pid."""
    with GrpcReceiver() as receiver:
        env = clean_env()
        env.update({"TTBT5_OTLP_ENDPOINT": receiver.endpoint, "TTBT5_SCHEDULE_DELAY": "5"})
        proc = subprocess.run(
            [sys.executable, str(APPS / "pool_app.py"), "400", ending],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        jobs = lambda r: [s for s in r.spans() if s["name"] == "job"]  # noqa: E731
        assert receiver.received.wait_for(lambda r: len(jobs(r)) >= 400, timeout=20)
        spans = jobs(receiver.received)
    assert sorted(s["attributes"]["job.index"] for s in spans) == list(range(400))
    identities = {
        (s["resource"]["process.pid"], s["resource"]["service.instance.id"]) for s in spans
    }
    assert len(identities) == int(proc.stdout.split()[0]) > 1
    assert len({pid for pid, _ in identities}) == len({iid for _, iid in identities})


def test_two_hundred_forks_neither_hang_nor_lose_spans(tmp_path):
    """Each forked child exports its span under its own pid and exits promptly."""
    script = tmp_path / "forks.py"
    script.write_text(
        "import os, sys\n"
        "from opentelemetry import trace\n"
        "import ttbt5_otel\n"
        "ttbt5_otel.init(service_name='forks', instrument=('none',), runtime_metrics=False)\n"
        "for i in range(200):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        with trace.get_tracer('forks').start_as_current_span('child'):\n"
        "            pass\n"
        "        sys.exit(0)\n"
        "    os.waitpid(pid, 0)\n"
    )
    with GrpcReceiver() as receiver:
        env = clean_env()
        env["TTBT5_OTLP_ENDPOINT"] = receiver.endpoint
        proc = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        children = lambda r: [s for s in r.spans() if s["name"] == "child"]  # noqa: E731
        assert receiver.received.wait_for(lambda r: len(children(r)) >= 200, timeout=20)
        pids = {s["resource"]["process.pid"] for s in children(receiver.received)}
    assert len(pids) == 200


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_shutdown_is_bounded_against_a_frozen_collector(protocol):
    """Accepting connections and never answering cannot hold shutdown past its budget."""
    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(1024)
    app = (
        "import json, logging, time, ttbt5_otel\n"
        "ttbt5_otel.init(service_name='frozen', shutdown_timeout=2, instrument=('none',))\n"
        "for i in range(3000):\n"
        "    with ttbt5_otel.span('work'):\n"
        "        logging.getLogger('w').warning('item %d', i)\n"
        "started = time.monotonic()\n"
        "ttbt5_otel.shutdown()\n"
        "print(json.dumps({'shutdown_s': time.monotonic() - started}))\n"
    )
    env = clean_env(
        TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{frozen.getsockname()[1]}",
        TTBT5_OTLP_PROTOCOL=protocol,
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", app], env=env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        frozen.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["shutdown_s"] < 2.5
    [gave_up] = [line for line in proc.stderr.splitlines() if "shutdown gave up" in line]
    assert "spans and" in gave_up
