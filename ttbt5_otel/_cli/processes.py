"""Process plumbing for the local stack: detached start, identity, readiness, stop.

A pid alone does not identify a process: after it exits the kernel may hand the same number
to an unrelated one. Every process is therefore recorded as (pid, start time, command line)
as psutil reports them, and nothing is signalled unless all three still match. The start
time guards against a recycled pid; the command line guards against a state file that names
a process someone else started (a hand-edited or planted record): such a process is spared.

The start time is counted from boot, not from the epoch. The kernel keeps a process's start
as clock ticks since boot, and psutil turns that into epoch seconds by adding the boot time
the kernel reports *now*, which moves whenever the wall clock is stepped (NTP, a resumed
VM). An epoch start time recorded by ``stack up`` can therefore differ from the one ``stack
down`` reads minutes later, and every process would look like a stranger and be left
running.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

import psutil

from ttbt5_otel._exceptions import StackError

_PROBE_TIMEOUT: Final = 1.0
_POLL_SECONDS: Final = 0.1
_KILL_WAIT: Final = 5.0


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as the kernel knows it: pid, start time (seconds after boot), command line.

    ``cmdline`` is what psutil reports for the process (``/proc/<pid>/cmdline``); ``None``
    skips that check, for callers that only know pid and start time.
    """

    pid: int
    start_time: float
    cmdline: tuple[str, ...] | None = None


# Epoch start times (records of older versions) are above this; boot-relative ones are not.
_EPOCH_START_FLOOR: Final = 1e9


def _after_boot(epoch: float) -> float:
    # Ticks are 1/100 s; rounding drops the float noise of adding and removing the boot time.
    return round(epoch - psutil.boot_time(), 2)


def _since_boot(process: psutil.Process) -> float:
    # create_time() adds the boot time read now and _after_boot removes it: a step cancels out.
    return _after_boot(process.create_time())


def start_time_of(pid: int) -> float | None:
    """Start time of ``pid`` in seconds after boot, or None when there is no such process."""
    try:
        return _since_boot(psutil.Process(pid))
    except psutil.Error:
        return None


def boot_relative(start_time: float) -> float:
    """A recorded start time as seconds after boot (records of older versions hold epoch)."""
    return start_time if start_time < _EPOCH_START_FLOOR else _after_boot(start_time)


def command_line(pid: int) -> tuple[str, ...] | None:
    """The command line of ``pid`` as psutil reports it, or None when it cannot be read."""
    try:
        return tuple(psutil.Process(pid).cmdline())
    except psutil.Error:
        return None


def _live(proc: ProcessId) -> psutil.Process | None:
    """The live, non-zombie process with ``proc``'s pid and start time, whatever it runs."""
    with contextlib.suppress(ChildProcessError, OSError):
        # A child of this process that has exited stays a zombie until waited for.
        os.waitpid(proc.pid, os.WNOHANG)
    try:
        found = psutil.Process(proc.pid)
        if _since_boot(found) != proc.start_time or found.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return found


def _process(proc: ProcessId) -> psutil.Process | None:
    """The live, non-zombie process ``proc`` names, or None when it is gone or not the same."""
    found = _live(proc)
    if found is None or (proc.cmdline is not None and command_line(proc.pid) != proc.cmdline):
        return None
    return found


def is_running(proc: ProcessId) -> bool:
    """True when ``proc`` still exists, is not a zombie, and is the same process as recorded."""
    return _process(proc) is not None


def impostor(proc: ProcessId) -> tuple[str, ...] | None:
    """The command line found when pid and start time match but the command line does not.

    None when ``proc`` is running as recorded, is gone, or has no command line to compare.
    An unreadable command line counts as a mismatch (``("?",)``): what cannot be checked is
    not signalled.
    """
    if proc.cmdline is None or _live(proc) is None:
        return None
    found = command_line(proc.pid)
    if found == proc.cmdline:
        return None
    return found if found is not None else ("?",)


def spawn_detached(argv: Sequence[str], env: Mapping[str, str], log: Path) -> ProcessId:
    """Start ``argv`` in its own session with output appended to ``log``.

    The new process survives the caller (no shared session or process group, no pipes to
    it), which is what lets ``stack up`` return while the stack keeps running. It keeps the
    caller's working directory, so every path in ``argv`` must be absolute. The log is
    created readable by its owner only (logs may quote settings).

    The returned identity has no command line: right after ``posix_spawn`` returns, the
    child may still be inside its exec and ``/proc/<pid>/cmdline`` may read empty. Pid and
    start time identify the child; read its command line once it is up (``command_line``).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions, setsid=True)
    start = start_time_of(pid)
    if start is None:  # exited already; recorded with an impossible start time
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return ProcessId(pid, -1.0)
    return ProcessId(pid, start)


def send_signal(proc: ProcessId, signum: int) -> bool:
    """Send ``signum`` to ``proc`` if it is still the recorded process; False when it is not."""
    process = _process(proc)
    if process is None:
        return False
    try:
        process.send_signal(signum)
    except psutil.Error:
        return False
    return True


def stop(procs: Sequence[ProcessId], timeout: float) -> list[ProcessId]:
    """SIGTERM each running process of ``procs``, SIGKILL those still alive after ``timeout``.

    Returns the processes that were running and have now been stopped.
    """
    running = {proc: process for proc in procs if (process := _process(proc)) is not None}
    for process in running.values():
        with contextlib.suppress(psutil.Error):
            process.terminate()
    left = _wait_gone(list(running), timeout)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            running[proc].kill()
    _wait_gone(left, _KILL_WAIT)
    return list(running)


def _wait_gone(procs: Sequence[ProcessId], timeout: float) -> list[ProcessId]:
    # Not psutil.wait_procs: the stack's processes are children of an earlier `stack up`,
    # and where nothing reaps orphans they linger as zombies, which wait_procs counts as
    # alive until its timeout. A zombie has exited; _process says so.
    deadline = time.monotonic() + timeout
    left = [proc for proc in procs if _process(proc) is not None]
    while left and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        left = [proc for proc in left if _process(proc) is not None]
    return left


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


def _resp(*words: str) -> bytes:
    """One Redis command in the protocol's array form (safe for any bytes in ``words``)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def redis_ready(host: str, port: int, password: str | None = None) -> bool:
    """True when a Redis server at ``host:port`` answers PING with PONG (after AUTH if given)."""
    request = _resp("PING")
    expected = b"+PONG\r\n"
    if password is not None:
        request = _resp("AUTH", password) + request
        expected = b"+OK\r\n" + expected
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.sendall(request)
            answer = b""
            while len(answer) < len(expected):
                chunk = sock.recv(256)
                if not chunk:
                    break
                answer += chunk
            return answer.startswith(expected)
    except OSError:
        return False


def probe(ready: str) -> bool:
    """Run a readiness probe: an http:// URL that must answer 200, or a Redis address.

    The Redis form is ``redis://host:port``, optionally with ``?password_file=PATH``: the
    probe then authenticates with the password read from that file, so the probe string
    (which is stored and printed) never holds the secret itself.
    """
    if ready.startswith("redis://"):
        parts = urlsplit(ready)
        password = None
        files = parse_qs(parts.query).get("password_file")
        if files:
            try:
                password = Path(files[0]).read_text(encoding="utf-8").strip()
            except OSError:
                return False
        return redis_ready(parts.hostname or "127.0.0.1", parts.port or 6379, password)
    return http_ready(ready)


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``log`` (empty when it does not exist)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
