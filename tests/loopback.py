"""Small helpers for tests that run real servers and processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import ttbt5_otel
from ttbt5_otel._app.settings import option_table


def _ports_for_servers() -> range:
    """Ports below the kernel's ephemeral range, clear of the stack's fixed ports (243xx).

    A port the kernel handed out by ``bind(0)`` comes from the ephemeral range, which is also
    where every outgoing connection gets its local port: between the probe and the server's
    own bind, a client of another process could take it ("address already in use").
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(25000, low) if low > 26000 else range(0)


_SERVER_PORTS = _ports_for_servers()
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and no earlier call gave.

    Chosen outside the range outgoing connections take their ports from (see above), so it
    stays free until the server started on it binds it.
    """
    for _ in range(200 if _SERVER_PORTS else 0):
        port = _SERVER_PORTS[random.randrange(len(_SERVER_PORTS))]
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(handler: Callable[[BaseHTTPRequestHandler], None], method: str) -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port answering ``method`` with ``handler``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    setattr(Handler, f"do_{method}", handler)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def webhook(received: list[dict[str, Any]]) -> ThreadingHTTPServer:
    """An Alertmanager webhook receiver appending each notification body to ``received``."""

    def post(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers["Content-Length"])
        received.append(json.loads(request.rfile.read(length)))
        request.send_response(200)
        request.end_headers()

    return serve(post, "POST")


def stop_processes(processes: Iterable[subprocess.Popen[Any]]) -> None:
    """SIGTERM every process, then wait; SIGKILL those still alive after 20 s."""
    started = list(processes)
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# The guide's variable names the settings read as aliases (LOG_LEVEL, APP_NAME, ...): a
# machine may well have some of them set for other software.
GUIDE_VARIABLES = frozenset(
    name
    for row in option_table()
    for name in row.variables
    if not name.startswith(("OTEL_", "TTBT5_"))
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without OTEL_*, TTBT5_* and pytest variables, plus ``extra``.

    A child process under test must see only the settings the test gives it, and must not
    believe it runs under pytest (that turns instrumentation errors into exceptions).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "TTBT5_", "PYTEST_")) and k not in GUIDE_VARIABLES
    }
    # Children import the very package this process tests (a copy under test, such as the
    # mutation check's, included), not whichever one the interpreter would find first.
    package_root = str(Path(ttbt5_otel.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def wait_until(
    what: str,
    probe: Callable[[], Any],
    timeout: float,
    diagnostics: Callable[[], object] = str,
    interval: float = 0.2,
) -> Any:
    """Poll ``probe`` until it returns something truthy; at the deadline fail with diagnostics."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)
