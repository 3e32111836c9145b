"""The ``ttbt5-otel`` command: doctor verdicts, exit codes, help, and stack errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver, HttpReceiver, free_port
from tests.paths import REPO
from ttbt5_otel._cli.main import main
from ttbt5_otel._cli.processes import start_time_of


def run_cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    clean = clean_env(**env)
    return subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", *args],
        env=clean,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def no_telemetry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "TTBT5_")):
            monkeypatch.delenv(key)


# --- doctor


def test_doctor_lists_what_init_would_instrument_and_why_not() -> None:
    result = run_cli(
        "doctor", TTBT5_EXPORTER="none", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="requests"
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert lines["flask"].split(None, 1)[1].startswith("yes (flask ")
    assert lines["requests"].endswith("no: disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    assert "no: log records are exported by the ttbt5 logging bridge" in lines["logging"]
    assert "no: library not installed" in lines["django"]


def test_doctor_says_what_head_sampling_does_to_span_metric_rates() -> None:
    """Below 1, sample_ratio shrinks every span-metric rate: doctor says so and by how much."""
    result = run_cli("doctor", TTBT5_EXPORTER="none", TTBT5_SAMPLE_RATIO="0.25")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    assert "sample_ratio=0.25 drops 75% of new traces" in warning
    assert "read 25% of the true values" in warning
    assert "TTBT5_TRACE_SAMPLING_PERCENT" in warning

    full = run_cli("doctor", TTBT5_EXPORTER="none")
    assert "WARNING" not in full.stdout


@pytest.mark.integration
def test_doctor_fails_with_exit_1_when_nothing_listens() -> None:
    port = free_port()
    result = run_cli(
        "doctor",
        "--timeout",
        "2",
        TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        TTBT5_OTLP_HEADERS="authorization=Bearer s3cr3t-value,x-tenant=acme",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict.startswith(f"FAIL: collector at http://127.0.0.1:{port} (grpc)"), verdict
    assert "UNAVAILABLE" in verdict
    # Header values are credentials: never printed.
    assert "s3cr3t-value" not in result.stdout + result.stderr
    assert "acme" not in result.stdout
    assert "'authorization': '[REDACTED]'" in result.stdout


@pytest.mark.integration
def test_doctor_fails_over_http_with_the_cause() -> None:
    port = free_port()
    result = run_cli(
        "doctor",
        "--timeout",
        "2",
        TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        TTBT5_OTLP_PROTOCOL="http/protobuf",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict.startswith("FAIL: "), verdict
    assert "Connection refused" in verdict


@pytest.mark.integration
def test_doctor_succeeds_against_a_grpc_receiver() -> None:
    with GrpcReceiver() as receiver:
        result = run_cli(
            "doctor",
            TTBT5_OTLP_ENDPOINT=receiver.endpoint,
            TTBT5_SERVICE_NAME="checked-app",
            OTEL_RESOURCE_ATTRIBUTES="team=core,db.password=hunter2",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert (
            result.stdout.strip()
            .splitlines()[-1]
            .startswith(f"OK: collector at {receiver.endpoint} (grpc) accepted a test span")
        )
        [span] = receiver.received.spans()
    assert span["name"] == "ttbt5-otel doctor"
    assert span["resource"]["service.name"] == "checked-app"
    assert "(from TTBT5_OTLP_ENDPOINT)" in result.stdout
    assert "hunter2" not in result.stdout
    assert "'team': 'core'" in result.stdout


@pytest.mark.integration
def test_doctor_succeeds_against_an_http_receiver() -> None:
    with HttpReceiver() as receiver:
        result = run_cli(
            "doctor", TTBT5_OTLP_ENDPOINT=receiver.endpoint, TTBT5_OTLP_PROTOCOL="http/protobuf"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: " in result.stdout
        assert [s["name"] for s in receiver.received.spans()] == ["ttbt5-otel doctor"]


@pytest.mark.usefixtures("no_telemetry_env")
def test_doctor_config_error_exits_2_naming_option_and_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_SAMPLE_RATIO", "2")
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "sample_ratio" in err
    assert "TTBT5_SAMPLE_RATIO" in err


@pytest.mark.usefixtures("no_telemetry_env")
def test_doctor_skips_the_export_when_nothing_is_exported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_EXPORTER", "none")
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("SKIP: ")


@pytest.mark.usefixtures("no_telemetry_env")
def test_doctor_refuses_a_password_in_the_endpoint_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_OTLP_ENDPOINT", "http://user:pa55word@127.0.0.1:4317")
    monkeypatch.setenv("TTBT5_EXPORTER", "none")
    assert main(["doctor"]) == 2
    captured = capsys.readouterr()
    assert "pa55word" not in captured.out + captured.err
    assert "http://user:[REDACTED]@127.0.0.1:4317" in captured.err
    assert "carries credentials" in captured.err


@pytest.mark.usefixtures("no_telemetry_env")
def test_doctor_refuses_a_token_in_the_endpoint_query_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_OTLP_ENDPOINT", "http://127.0.0.1:4318/?token=Tok9secretZ")
    assert main(["doctor"]) == 2
    captured = capsys.readouterr()
    assert "Tok9secretZ" not in captured.out + captured.err
    assert "query string" in captured.err


@pytest.mark.usefixtures("no_telemetry_env")
def test_doctor_masks_credentials_quoted_in_the_exporters_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A header value the HTTP client echoes in its error never reaches the terminal."""
    closed = free_port()
    monkeypatch.setenv("TTBT5_OTLP_ENDPOINT", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("TTBT5_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deploy.source=https://ci:Res9secretZ@git/x")
    assert main(["doctor", "--timeout", "1"]) == 1
    captured = capsys.readouterr()
    assert "Res9secretZ" not in captured.out + captured.err
    assert "https://[REDACTED]@git/x" in captured.out


# --- usage


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["doctor", "--help"],
        ["stack", "--help"],
        ["stack", "up", "--help"],
        ["stack", "status", "--help"],
        ["stack", "down", "--help"],
    ],
)
def test_help_works_for_each_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert "usage: ttbt5-otel" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["stack"], ["stack", "sideways"], ["doctor", "--timeout=0"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.integration
def test_python_dash_m_runs_the_command() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ttbt5-otel ")


# --- stack


def test_stack_down_with_nothing_recorded_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing to stop: no stack recorded in" in capsys.readouterr().out


def test_stack_status_with_nothing_recorded_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "status", "--state-dir", str(tmp_path)]) == 1
    assert "no stack recorded" in capsys.readouterr().out


def test_stack_state_dir_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_STACK_DIR", str(tmp_path))
    assert main(["stack", "down"]) == 0
    assert str(tmp_path) in capsys.readouterr().out


def test_missing_collector_binary_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_COLLECTOR_BIN", str(tmp_path / "no-such-otelcol"))
    assert main(["stack", "up", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"TTBT5_COLLECTOR_BIN={tmp_path / 'no-such-otelcol'} is not an executable file" in err
    assert "bash collector/build.sh" in err
    assert not (tmp_path / "stack.json").exists()


def test_missing_prometheus_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTBT5_COLLECTOR_BIN", sys.executable)
    monkeypatch.setenv("TTBT5_PROMETHEUS_BIN", str(tmp_path / "no-such-prometheus"))
    assert main(["stack", "up", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "TTBT5_PROMETHEUS_BIN" in err
    assert "apt-get install prometheus prometheus-alertmanager redis-server" in err
    assert not (tmp_path / "stack.json").exists()


@pytest.mark.integration
def test_stack_down_spares_a_process_whose_pid_was_recycled(tmp_path: Path) -> None:
    """A recorded pid now used by another process (other start time) is not signalled."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = start_time_of(bystander.pid)
        assert start is not None
        record = {
            "pid": bystander.pid,
            "start_time": start - 1,
            "argv": ["prometheus"],
            "log": str(tmp_path / "prometheus.log"),
            "ready": "http://127.0.0.1:9/-/ready",
            "urls": {},
        }
        (tmp_path / "stack.json").write_text(json.dumps({"components": {"prometheus": record}}))

        status = run_cli("stack", "status", "--state-dir", str(tmp_path))
        assert status.returncode == 1
        assert status.stdout.split()[:3] == ["prometheus", "gone", "not"], status.stdout

        down = run_cli("stack", "down", "--state-dir", str(tmp_path))
        assert down.returncode == 0, down.stderr
        assert "prometheus: was not running" in down.stdout
        assert bystander.poll() is None
        assert not (tmp_path / "stack.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_corrupt_state_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stack.json").write_text("{not json")
    assert main(["stack", "down", "--state-dir", str(tmp_path)]) == 1
    assert "is not a stack record" in capsys.readouterr().err


@pytest.mark.integration
def test_a_busy_port_fails_naming_the_port_and_its_owner(tmp_path: Path) -> None:
    """Nothing is started when a port of the stack belongs to a foreign process."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As servers do: connections of an earlier test in TIME_WAIT must not block the bind.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            listener.bind(("127.0.0.1", 4317))
        except OSError as exc:
            pytest.fail(f"port 4317 is taken by another process: {exc}")
        listener.listen()
        result = run_cli("stack", "up", "--state-dir", str(tmp_path))
    finally:
        listener.close()
    assert result.returncode == 1
    assert "port 4317 needed by collector is already in use by" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert not (tmp_path / "stack.json").exists()
    assert not (tmp_path / "collector.log").exists()


@pytest.mark.integration
def test_a_component_failing_to_start_stops_the_others_and_quotes_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-prometheus"
    fake.write_text("#!/bin/sh\necho 'fake prometheus: cannot open the storage' >&2\nexit 3\n")
    fake.chmod(0o755)
    state = tmp_path / "state"
    result = run_cli("stack", "up", "--state-dir", str(state), TTBT5_PROMETHEUS_BIN=str(fake))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "prometheus exited during startup" in result.stderr
    assert "fake prometheus: cannot open the storage" in result.stderr
    # The collector was started and ready first; it is stopped again.
    [ready] = [line for line in result.stdout.splitlines() if line.startswith("collector: ready")]
    pid = int(ready.split("pid ")[1].split(",")[0])
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split(") ")[1][0] in "ZX"
    assert not (state / "stack.json").exists()


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`ttbt5-otel doctor | true`: no BrokenPipeError report, exit 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ttbt5_otel", "doctor"],
        env=clean_env(TTBT5_EXPORTER="none"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # gone before the first line, as `true` would be
    errors = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, errors
    assert "BrokenPipeError" not in errors, errors
