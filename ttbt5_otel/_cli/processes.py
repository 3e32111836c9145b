"""Process plumbing for the local stack: detached start, identity, readiness, stop.

A pid alone does not identify a process: after it exits the kernel may hand the same number
to an unrelated one. Every process is therefore recorded as (pid, start time), the start
time being field 22 of ``/proc/<pid>/stat``, and nothing is signalled unless both match.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Final

import psutil

from ttbt5_otel._exceptions import StackError

_POLL_SECONDS: Final = 0.1
# Index of field 22 (starttime) once the fields before and including the name are cut off.
_START_TIME: Final = 19
_PROBE_TIMEOUT: Final = 1.0


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as the kernel knows it: pid plus start time in clock ticks since boot."""

    pid: int
    start_time: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or
    # parentheses, so the fixed-position fields start after the last ")".
    return raw[raw.rfind(")") + 2 :].split()


def start_time_of(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks since boot), or None when there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[_START_TIME]) if fields is not None and len(fields) > _START_TIME else None


def _reap(pid: int) -> None:
    # A process this one started and that has exited stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(proc: ProcessId) -> bool:
    """True when ``proc`` still exists, is not a zombie, and is the same process as recorded."""
    _reap(proc.pid)
    fields = _stat_fields(proc.pid)
    if fields is None or len(fields) <= _START_TIME:
        return False
    # fields[0] is the state; a zombie has exited even though its pid is still taken.
    return fields[0] not in ("Z", "X") and int(fields[_START_TIME]) == proc.start_time


def spawn_detached(argv: Sequence[str], env: Mapping[str, str], log: Path) -> ProcessId:
    """Start ``argv`` in its own session with output appended to ``log``.

    The new process survives the caller (no shared session or process group, no pipes to
    it), which is what lets ``stack up`` return while the stack keeps running. It keeps the
    caller's working directory, so every path in ``argv`` must be absolute.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions, setsid=True)
    start = start_time_of(pid)
    if start is None:  # exited already; recorded with an impossible start time
        _reap(pid)
        return ProcessId(pid, -1)
    return ProcessId(pid, start)


def stop(procs: Sequence[ProcessId], timeout: float) -> list[ProcessId]:
    """SIGTERM each running process of ``procs``, SIGKILL those still alive after ``timeout``.

    Returns the processes that were running and have now been stopped.
    """
    running = [p for p in procs if is_running(p)]
    for proc in running:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(is_running(p) for p in running) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    for proc in running:
        if is_running(proc):
            _signal(proc, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    while any(is_running(p) for p in running) and time.monotonic() < kill_deadline:
        time.sleep(_POLL_SECONDS)
    return running


def _signal(proc: ProcessId, sig: signal.Signals) -> None:
    # Checked again right before the signal, so a pid recycled during the wait is spared.
    if is_running(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could not bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a closed connection in TIME_WAIT would look like a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ensure_ports_free(name: str, ports: Sequence[int], host: str) -> None:
    """Raise ``StackError`` naming the port and its owner when one of ``ports`` is taken."""
    for port in ports:
        if port_in_use(port, host):
            raise StackError(
                f"port {port} needed by {name} is already in use by {port_owner(port)}; "
                "stop that process or free the port"
            )


def port_owner(port: int) -> str:
    """Describe the process listening on ``port`` (pid and command line) as far as visible."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        connections = []
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process this user cannot inspect"
            try:
                cmdline = " ".join(psutil.Process(conn.pid).cmdline())
            except psutil.Error:
                cmdline = "?"
            return f"pid {conn.pid} ({cmdline[:160]})"
    return "an unknown process"


def http_ready(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as response:  # noqa: S310 - fixed loopback URLs
            return bool(response.status == HTTPStatus.OK)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def redis_ready(host: str, port: int) -> bool:
    """True when a Redis server at ``host:port`` answers PING with PONG."""
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def probe(ready: str) -> bool:
    """Run a readiness probe: an http:// URL that must answer 200, or redis://host:port."""
    if ready.startswith("redis://"):
        host, _, port = ready.removeprefix("redis://").partition(":")
        return redis_ready(host, int(port))
    return http_ready(ready)


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``log`` (empty when it does not exist)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
