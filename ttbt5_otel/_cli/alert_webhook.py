"""The local stack's alert webhook receiver: keeps what Alertmanager delivers.

Alertmanager posts every notification (its webhook JSON) to ``POST /alerts``; each is
appended as one JSON line, with a ``received_at`` time added, to a store file that only its
owner can read. ``GET /alerts[?since=<received_at>]`` answers ``{"notifications": [...]}``,
the newest ``RECENT_LIMIT`` oldest first, read back from that file so they survive a
restart; ``GET /-/ready`` answers 200. ``ttbt5-otel alerts`` and the demo read them
(``alert_view``).

    python -m ttbt5_otel._cli.alert_webhook --host 127.0.0.1 --port 9099 --store alerts.jsonl

Anyone on the machine can post here (loopback is not private): bodies are capped, never
logged, and only ever stored as parsed JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

MAX_BODY: Final = 1024 * 1024
RECENT_LIMIT: Final = 200
_OPEN_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
# A client that stops sending mid-request frees its thread after this many seconds.
_SOCKET_TIMEOUT_S: Final = 10.0
_TICK: Final = timedelta(milliseconds=1)


def format_time(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC with milliseconds: ``2025-01-31T12:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """A ``received_at`` value as an aware datetime; ValueError when it is not RFC 3339."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


class NotificationStore:
    """The JSON-lines file of received notifications; safe to use from many threads."""

    def __init__(self, path: Path) -> None:
        """Create ``path`` (0600) if it does not exist; OSError when it cannot be written."""
        self.path = path
        self._lock = threading.Lock()
        self._last: datetime | None = None
        # Opened once here so a bad path fails at start-up, not at the first page.
        os.close(self._open())
        newest = self.recent(None)
        if newest:
            self._last = parse_time(str(newest[-1]["received_at"]))

    def _open(self) -> int:
        # O_NOFOLLOW: a symlink planted at the path must not redirect the writes.
        fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        os.fchmod(fd, 0o600)  # also for a file an older run left with a wider mode
        return fd

    def append(self, notification: dict[str, Any]) -> dict[str, Any]:
        """Stamp ``notification`` with ``received_at``, append it as one line, return it."""
        with self._lock:
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what is written
            # Strictly increasing stamps: `?since=` then never skips one received in the
            # same millisecond as the one before.
            if self._last is not None and now <= self._last:
                now = self._last + _TICK
            stamped = {**notification, "received_at": format_time(now)}
            line = json.dumps(stamped, separators=(",", ":")) + "\n"
            fd = self._open()
            try:
                os.write(fd, line.encode())  # one write: a line is never interleaved
            finally:
                os.close(fd)
            self._last = now
        return stamped

    def recent(self, since: datetime | None) -> list[dict[str, Any]]:
        """Those of the last ``RECENT_LIMIT`` lines received after ``since``, oldest first."""
        # Only the kept lines are parsed: the file grows for as long as the stack lives, and
        # the demo asks twice a second. Lines are in time order: one writer, rising stamps.
        try:
            with self.path.open(encoding="utf-8", errors="replace") as lines:
                tail = deque(lines, maxlen=RECENT_LIMIT)
        except FileNotFoundError:  # removed by hand: the next notification recreates it
            return []
        found = (_parsed(line) for line in tail)
        return [
            n
            for n in found
            if n is not None and (since is None or parse_time(n["received_at"]) > since)
        ]


def _parsed(line: str) -> dict[str, Any] | None:
    # A line cut short by a crash (or edited by hand) is skipped, not fatal.
    try:
        value = json.loads(line)
        if isinstance(value, dict) and isinstance(value.get("received_at"), str):
            parse_time(value["received_at"])
            return value
    except ValueError:
        pass
    return None


class AlertServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that owns the notification store."""

    def __init__(self, address: tuple[str, int], store: NotificationStore) -> None:
        """Listen on ``address`` (port 0: any free port) and keep notifications in ``store``."""
        super().__init__(address, _Handler)
        self.store = store


class _Handler(BaseHTTPRequestHandler):
    server: AlertServer
    timeout = _SOCKET_TIMEOUT_S
    server_version = "ttbt5-alert-webhook"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/-/ready":
            self._reply(HTTPStatus.OK, b"ready\n", "text/plain; charset=utf-8")
        elif parts.path == "/alerts":
            self._list(parse_qs(parts.query).get("since"))
        else:
            self._fail(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        body = self._body()
        if body is None:
            return
        if urlsplit(self.path).path != "/alerts":
            self._fail(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            notification = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            self._fail(HTTPStatus.BAD_REQUEST, "the body is not JSON")
            return
        if not isinstance(notification, dict):
            self._fail(HTTPStatus.BAD_REQUEST, "the body is not a JSON object")
            return
        try:
            self.server.store.append(notification)
        except OSError as exc:  # Alertmanager retries a failed delivery
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot store it: {exc.strerror}")
            return
        self._reply(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")

    def _body(self) -> bytes | None:
        """The request body; None after answering a missing, bad or too large length."""
        length = self.headers.get("Content-Length")
        if length is None:
            self._fail(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return None
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self._fail(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
            return None
        if size > MAX_BODY:
            # Not read: answered and the connection closed, whatever the client still sends.
            self._fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body exceeds {MAX_BODY} bytes")
            return None
        return self.rfile.read(size)

    def _list(self, since: list[str] | None) -> None:
        try:
            after = parse_time(since[-1]) if since else None
        except ValueError:
            self._fail(HTTPStatus.BAD_REQUEST, "since must be a received_at value (RFC 3339)")
            return
        try:
            body = json.dumps({"notifications": self.server.store.recent(after)}).encode()
        except OSError as exc:
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot read them: {exc.strerror}")
            return
        self._reply(HTTPStatus.OK, body, "application/json")

    def _fail(self, status: HTTPStatus, message: str) -> None:
        self._reply(status, f"{message}\n".encode(), "text/plain; charset=utf-8")

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:  # noqa: ARG002
        # Method, path and status only: never the query's values, headers or the body.
        path = urlsplit(self.path).path if hasattr(self, "path") else "-"
        command = getattr(self, "command", None) or "-"
        sys.stderr.write(f"{self.log_date_time_string()} {command} {path} {code}\n")

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        # The status line that follows says what went wrong; the default would repeat it.
        pass


def make_server(host: str, port: int, store: Path) -> AlertServer:
    """A receiver listening on ``host:port`` (not yet serving) that appends to ``store``."""
    return AlertServer((host, port), NotificationStore(store))


def serve(server: AlertServer) -> None:
    """Serve until SIGTERM or SIGINT (installed here, so call from the main thread)."""

    def stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        # shutdown() waits for serve_forever() to return, and that runs in this very
        # thread: asking from another one lets the handler return first.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """Run the receiver; 0 after SIGTERM or SIGINT, 2 when it cannot listen or store."""
    parser = argparse.ArgumentParser(
        prog="python -m ttbt5_otel._cli.alert_webhook",
        description="Keep the notifications Alertmanager posts to /alerts in a file.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099, help="0: any free port")
    parser.add_argument("--store", type=Path, required=True, help="JSON-lines file (0600)")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.host, args.port, args.store)
    except OSError as exc:
        sys.stderr.write(f"alert webhook: cannot start: {exc}\n")
        return 2
    # The port line tells a caller that passed port 0 where to connect.
    sys.stderr.write(
        f"alert webhook: listening on http://{args.host}:{server.server_port}/alerts\n"
    )
    serve(server)
    sys.stderr.write("alert webhook: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
