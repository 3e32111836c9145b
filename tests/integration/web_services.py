"""The example web services under real servers: gunicorn + Flask, uvicorn + FastAPI.

Shared by the OTLP wire test and the live-stack test. Each server runs the unmodified
example app from ``examples/web`` with four workers; only environment variables differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback import clean_env, free_port, serve, stop_processes, wait_until
from tests.paths import REPO

WEB = REPO / "examples" / "web"
BIN = Path(sys.executable).parent
WORKERS = 4


@dataclass
class Supplier:
    """A loopback service the inventory calls through requests; remembers each traceparent."""

    traceparents: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def supplier() -> Iterator[Supplier]:
    """Run the supplier service until the block ends."""
    seen = Supplier()
    lock = threading.Lock()

    def restock(request: BaseHTTPRequestHandler) -> None:
        with lock:
            seen.traceparents.append(request.headers.get("traceparent", ""))
        body = b'{"ok": true}'
        request.send_response(200)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    server = serve(restock, "GET")
    seen.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class Services:
    """Both services, started; ``get`` calls the storefront."""

    storefront: str
    inventory: str
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.storefront + path, timeout=30) as reply:
                json.load(reply)
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for log in self.logs)


@contextmanager
def web_services(
    tmp_path: Path, endpoint: str, supplier_url: str, redis_url: str, **extra: str
) -> Iterator[Services]:
    """Start inventory (gunicorn) and storefront (uvicorn), each with four workers."""
    inventory_port, storefront_port = free_port(), free_port()
    common = {
        "TTBT5_OTLP_ENDPOINT": endpoint,
        "TTBT5_SCHEDULE_DELAY": "0.5",
        "TTBT5_METRIC_EXPORT_INTERVAL": "1",
        **extra,
    }
    inventory_env = clean_env(
        OTEL_SERVICE_NAME="inventory",
        SUPPLIER_URL=supplier_url,
        REDIS_URL=redis_url,
        INVENTORY_DB=f"sqlite:///{tmp_path / 'inventory.db'}",
        **common,
    )
    storefront_env = clean_env(
        OTEL_SERVICE_NAME="storefront",
        INVENTORY_URL=f"http://127.0.0.1:{inventory_port}",
        **common,
    )
    logs = [tmp_path / "inventory.log", tmp_path / "storefront.log"]
    gunicorn = [str(BIN / "gunicorn"), "--chdir", str(WEB), "-w", str(WORKERS)]
    gunicorn += ["-b", f"127.0.0.1:{inventory_port}", "--graceful-timeout", "10"]
    uvicorn = [str(BIN / "uvicorn"), "--app-dir", str(WEB), "--workers", str(WORKERS)]
    uvicorn += ["--host", "127.0.0.1", "--port", str(storefront_port)]
    uvicorn += ["--timeout-graceful-shutdown", "10"]
    commands = [
        ([*gunicorn, "inventory_flask:app"], inventory_env),
        ([*uvicorn, "storefront_fastapi:app"], storefront_env),
    ]
    processes = []
    try:
        for (command, env), log in zip(commands, logs, strict=True):
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        services = Services(
            f"http://127.0.0.1:{storefront_port}",
            f"http://127.0.0.1:{inventory_port}",
            processes,
            logs,
        )
        # Probes hit a path without a route, so they stay out of the routes' figures.
        for url in (services.inventory + "/ready", services.storefront + "/ready"):
            wait_until(f"{url} answers", lambda url=url: _ready(url), 60, services.output)
        yield services
    finally:
        stop_processes(processes)
