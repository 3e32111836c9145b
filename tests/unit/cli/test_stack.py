"""The local stack's safety rules, checked without starting the stack itself.

Prometheus gets no lifecycle API unless asked; Redis gets a generated password that lives in
a 0600 file and never on a command line; state files are 0600 in a 0700 directory; ``down``
and ``reload`` signal only a process whose pid, start time and command line all match the
record. The process tests use real ``sleep`` processes, each killed by the test itself.
"""

from __future__ import annotations

import json
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ttbt5_otel._cli.main import main
from ttbt5_otel._cli.processes import command_line, start_time_of
from ttbt5_otel._cli.stack import (
    REDIS_CONFIG_FILE,
    REDIS_PASSWORD_FILE,
    STATE_FILE,
    Record,
    _append_private,
    _private_dir,
    _save,
    components,
    down,
    lifecycle_requested,
    load,
    redis_password,
    redis_url,
    reload,
    status,
)
from ttbt5_otel._exceptions import StackError

SLEEP = shutil.which("sleep") or "/bin/sleep"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any executable will do: components() only names the binaries, it starts nothing."""
    for name in ("COLLECTOR", "PROMETHEUS", "ALERTMANAGER", "REDIS", "JAEGER", "VICTORIALOGS"):
        monkeypatch.setenv(f"TTBT5_{name}_BIN", sys.executable)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([SLEEP, "60"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def record_for(
    proc: subprocess.Popen[bytes], tmp_path: Path, *, argv: list[str], cmdline: list[str] | None
) -> dict[str, object]:
    start = start_time_of(proc.pid)
    assert start is not None
    return {
        "pid": proc.pid,
        "start_time": start,
        "argv": argv,
        "log": str(tmp_path / "prometheus.log"),
        "ready": "http://127.0.0.1:9/-/ready",
        "urls": {},
        "cmdline": cmdline,
    }


def true_record(proc: subprocess.Popen[bytes], tmp_path: Path) -> dict[str, object]:
    """The record ``stack up`` would have written for ``proc``: every field matches it."""
    cmdline = command_line(proc.pid)
    assert cmdline is not None
    return record_for(proc, tmp_path, argv=[SLEEP, "60"], cmdline=list(cmdline))


def in_subprocess(call: str) -> subprocess.CompletedProcess[str]:
    """Run ``call`` (a function of ttbt5_otel._cli.stack) in a fresh interpreter."""
    code = f"from pathlib import Path\nfrom ttbt5_otel._cli.stack import down, reload\n{call}\n"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def write_state(tmp_path: Path, **records: dict[str, object]) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"components": records}))


# --- Prometheus lifecycle API


@pytest.mark.usefixtures("binaries")
def test_prometheus_has_no_lifecycle_api_unless_asked(tmp_path: Path) -> None:
    def prometheus_argv(**options: bool) -> tuple[str, ...]:
        found = components(tmp_path, with_redis=False, **options)
        [prometheus] = [c for c in found if c.name == "prometheus"]
        return prometheus.argv

    assert "--web.enable-lifecycle" not in prometheus_argv()
    assert "--web.enable-lifecycle" in prometheus_argv(prometheus_lifecycle=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("no", False), ("1", True), ("TRUE", True)],
)
def test_lifecycle_is_asked_for_by_the_environment_only_explicitly(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("TTBT5_PROMETHEUS_LIFECYCLE", raising=False)
    else:
        monkeypatch.setenv("TTBT5_PROMETHEUS_LIFECYCLE", value)
    assert lifecycle_requested() is expected


# --- Redis password


@pytest.mark.usefixtures("binaries")
def test_redis_password_is_generated_once_into_a_private_file(tmp_path: Path) -> None:
    assert redis_password(tmp_path) is None
    assert redis_url(tmp_path) is None
    [redis] = [c for c in components(tmp_path, with_redis=True) if c.name == "redis"]
    assert redis.prepare is not None
    redis.prepare()

    password = redis_password(tmp_path)
    assert password is not None
    assert len(password) >= 40  # token_urlsafe(32): 256 random bits
    assert mode(tmp_path / REDIS_PASSWORD_FILE) == 0o600
    config = tmp_path / REDIS_CONFIG_FILE
    assert mode(config) == 0o600
    assert f'requirepass "{password}"' in config.read_text().splitlines()
    assert "bind 127.0.0.1" in config.read_text().splitlines()
    # Kept across starts, so apps holding the URL keep working after a restart.
    redis.prepare()
    assert redis_password(tmp_path) == password
    assert redis_url(tmp_path) == f"redis://:{password}@127.0.0.1:6379/0"


@pytest.mark.usefixtures("binaries")
def test_redis_password_is_on_no_command_line_and_in_no_record(tmp_path: Path) -> None:
    [redis] = [c for c in components(tmp_path, with_redis=True) if c.name == "redis"]
    assert redis.prepare is not None
    redis.prepare()
    password = redis_password(tmp_path)
    assert password is not None
    assert redis.argv[1:] == (str(tmp_path / REDIS_CONFIG_FILE),)
    shown = json.dumps([redis.argv, redis.ready, dict(redis.urls)])
    assert password not in shown
    # What `up` and `status` print says where the password is, not what it is.
    assert f"password_file={tmp_path / REDIS_PASSWORD_FILE}" in redis.ready
    assert redis.urls["URL (password masked)"] == "redis://:***@127.0.0.1:6379/0"
    assert redis.urls["password file"] == str(tmp_path / REDIS_PASSWORD_FILE)


def test_a_password_file_left_readable_is_tightened(tmp_path: Path) -> None:
    (tmp_path / REDIS_PASSWORD_FILE).write_text("s3cret-value\n")
    (tmp_path / REDIS_PASSWORD_FILE).chmod(0o644)
    assert redis_password(tmp_path) == "s3cret-value"
    assert mode(tmp_path / REDIS_PASSWORD_FILE) == 0o600


# --- state file and directory modes


def test_the_state_file_is_private_even_over_an_older_readable_one(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{}")
    (tmp_path / STATE_FILE).chmod(0o644)
    record = Record(1, 1.0, ["x"], "x.log", "http://127.0.0.1:9/", {}, ["x"])
    _save(tmp_path, {"collector": record})
    assert mode(tmp_path / STATE_FILE) == 0o600
    assert load(tmp_path) == {"collector": record}
    assert not list(tmp_path.glob("*.tmp"))


def test_a_new_state_directory_and_its_logs_are_private(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    _private_dir(state)
    assert mode(state) == 0o700
    _append_private(state / "collector.log", "--- starting collector\n")
    assert mode(state / "collector.log") == 0o600


def test_an_existing_stack_directory_is_tightened_a_foreign_one_left_alone(
    tmp_path: Path,
) -> None:
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    stack_dir.chmod(0o755)
    log = stack_dir / "collector.log"
    log.write_text("an older run\n")
    log.chmod(0o644)
    _private_dir(stack_dir)
    assert mode(stack_dir) == 0o700
    _append_private(log, "--- starting collector\n")
    assert mode(log) == 0o600
    assert log.read_text() == "an older run\n--- starting collector\n"

    # Say `--state-dir ~`: files written there are private, the directory is not ours.
    foreign = tmp_path / "home"
    foreign.mkdir()
    foreign.chmod(0o755)
    (foreign / "notes.txt").write_text("not the stack's\n")
    _private_dir(foreign)
    assert mode(foreign) == 0o755


# --- process identity: pid, start time and command line


@pytest.mark.integration
def test_down_spares_a_process_whose_command_line_does_not_match(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """A record naming a live process with the right start time but another program."""
    argv = ["/usr/bin/prometheus", "--config.file=/etc/prometheus.yml"]
    write_state(tmp_path, prometheus=record_for(sleeper, tmp_path, argv=argv, cmdline=argv))

    [found] = status(tmp_path)
    assert not found.running

    assert main(["stack", "down", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"prometheus: pid {sleeper.pid} runs `{SLEEP} 60`" in out, out
    assert "not signalled, record dropped" in out
    assert sleeper.poll() is None, "the foreign process was signalled"
    assert not (tmp_path / STATE_FILE).exists()


@pytest.mark.integration
def test_down_spares_a_legacy_record_whose_argv_does_not_match(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """Records written before command lines were recorded are checked against their argv."""
    record = record_for(sleeper, tmp_path, argv=["/usr/bin/prometheus"], cmdline=None)
    del record["cmdline"]
    write_state(tmp_path, prometheus=record)
    lines: list[str] = []
    assert down(tmp_path, timeout=5.0, report=lines.append) == {"prometheus": False}
    assert [line for line in lines if "not signalled" in line], lines
    assert sleeper.poll() is None


@pytest.mark.integration
def test_down_stops_a_process_whose_command_line_matches(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """The control case: the same kind of record, true this time, is acted upon."""
    write_state(tmp_path, prometheus=true_record(sleeper, tmp_path))
    [found] = status(tmp_path)
    assert found.running
    # In a child process, so that this one (the sleeper's parent) sees the signal that ended it.
    result = in_subprocess(f"down(Path({str(tmp_path)!r}), timeout=5.0)")
    assert result.returncode == 0, result.stderr
    assert "not signalled" not in result.stdout
    assert sleeper.wait(timeout=5) == -signal.SIGTERM


@pytest.mark.integration
def test_down_stops_its_processes_after_the_wall_clock_was_stepped(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """The kernel's boot time in epoch seconds moves when the clock is stepped (NTP, a
    resumed VM); a record made before the step still names the same processes after it."""
    write_state(tmp_path, prometheus=true_record(sleeper, tmp_path))
    stepped = (
        "import psutil._pslinux as linux\n"
        "real = linux.boot_time\n"
        "linux.boot_time = lambda: real() + 7.0\n"
    )
    result = in_subprocess(f"{stepped}down(Path({str(tmp_path)!r}), timeout=5.0)")
    assert result.returncode == 0, result.stderr
    assert sleeper.wait(timeout=5) == -signal.SIGTERM


def test_a_record_with_an_epoch_start_time_still_names_its_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """Records written by older versions hold the start time in epoch seconds."""
    record = true_record(sleeper, tmp_path)
    record["start_time"] = psutil.Process(sleeper.pid).create_time()
    write_state(tmp_path, prometheus=record)
    [found] = status(tmp_path)
    assert found.running
    record["start_time"] = psutil.Process(sleeper.pid).create_time() - 1
    write_state(tmp_path, prometheus=record)
    [found] = status(tmp_path)
    assert not found.running


@pytest.mark.integration
def test_reload_sends_sighup_to_the_recorded_process_only(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    argv = ["/usr/bin/prometheus"]
    write_state(tmp_path, prometheus=record_for(sleeper, tmp_path, argv=argv, cmdline=argv))
    with pytest.raises(StackError, match="not signalled"):
        reload(tmp_path)
    assert sleeper.poll() is None
    with pytest.raises(StackError, match="no alertmanager recorded"):
        reload(tmp_path, "alertmanager")

    cmdline = command_line(sleeper.pid)
    assert cmdline is not None
    record = record_for(sleeper, tmp_path, argv=argv, cmdline=list(cmdline))
    write_state(tmp_path, prometheus=record)
    result = in_subprocess(f"reload(Path({str(tmp_path)!r}))")
    assert result.returncode == 0, result.stderr
    # sleep has no SIGHUP handler: the signal's default action ends it.
    assert sleeper.wait(timeout=5) == -signal.SIGHUP
    with pytest.raises(StackError, match="is not running"):
        reload(tmp_path)
