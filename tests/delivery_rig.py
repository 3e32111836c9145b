"""A collector with its backend overlays, backends played by real OTLP receivers, and an app
sending a known number of spans and log records: the rig for delivery tests and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.dashboards._support import collector_environment
from tests.loopback import clean_env, free_port
from tests.otlp_receiver import GrpcReceiver, HttpReceiver
from tests.paths import REPO

SENDER = REPO / "tests" / "integration" / "apps" / "steady_sender.py"
BINARY = REPO / "collector" / "_build" / "ttbt5-otelcol"
OVERLAYS = ["otel-collector.yaml"]
BATCH = 512  # the SDK's max_export_batch_size
COUNTED_LOSS = ("dropped_queue_full", "dropped_timeout", "dropped_already_shutdown")


@dataclass
class Collector:
    """One collector distribution process and what it needs to be restarted identically."""

    ports: dict[str, int]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(BINARY)]
        for config in OVERLAYS:
            args += ["--config", str(REPO / config)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while not self._healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(f"collector not healthy after 30 s\n{self.tail()}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"collector exited\n{self.tail()}")
        try:
            url = f"http://127.0.0.1:{self.ports['health']}/"
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def accepted(self, signal_name: str) -> int:
        """``otelcol_receiver_accepted_<signal>`` summed over receivers of this process."""
        url = f"http://127.0.0.1:{self.ports['telemetry']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            page = response.read().decode()
        prefix = f"otelcol_receiver_accepted_{signal_name}"
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in page.splitlines()
                if line.startswith((prefix + "{", prefix + " "))
            )
        )

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def new_collector(work: Path) -> Collector:
    """A collector (not started) with free loopback ports, its backends at two more."""
    ports = {k: free_port() for k in ("grpc", "http", "prom_exporter", "telemetry", "health")}
    backend_ports = {"traces": free_port(), "logs": free_port()}
    env = collector_environment(
        ports,
        TTBT5_TRACES_BACKEND_ENDPOINT=f"127.0.0.1:{backend_ports['traces']}",
        TTBT5_TRACES_BACKEND_INSECURE="true",
        TTBT5_LOGS_BACKEND_ENDPOINT=f"http://127.0.0.1:{backend_ports['logs']}",
        TTBT5_COLLECTOR_QUEUE_DIR=str(work / "queue"),
    )
    found = Collector(ports, env, work / "collector.log")
    found.ports.update({f"backend_{k}": v for k, v in backend_ports.items()})
    return found


def start_sender(
    collector: Collector, rate: int, seconds: float, **settings: str
) -> subprocess.Popen[str]:
    """The steady sender app against ``collector``, with these ``TTBT5_*`` settings."""
    defaults = {
        "TTBT5_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.ports['grpc']}",
        # Short enough that a frozen collector costs a few seconds per export, not ten.
        "TTBT5_OTLP_TIMEOUT": "2",
        "TTBT5_SCHEDULE_DELAY": "0.5",
        "TTBT5_MAX_QUEUE_SIZE": "1024",
        "TTBT5_SHUTDOWN_TIMEOUT": "10",
    }
    env = clean_env(**{**defaults, **settings})
    return subprocess.Popen(
        [sys.executable, str(SENDER), str(rate), str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def books(sender: subprocess.Popen[str]) -> dict[str, Any]:
    """What the sender sent and its delivery ledger, once it has exited."""
    out, _ = sender.communicate(timeout=180)
    if sender.returncode != 0:
        raise RuntimeError(f"sender exited with {sender.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def unique_spans(receiver: GrpcReceiver) -> int:
    """Distinct ``op`` spans a backend holds (a resent request may repeat some)."""
    with receiver.received.lock:
        requests = list(receiver.received.traces)
    return len(
        {
            span.span_id
            for request in requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
            if span.name == "op"
        }
    )


def unique_logs(receiver: HttpReceiver) -> int:
    """Distinct ``op`` log records a backend holds."""
    bodies = {r["body"] for r in receiver.received.log_records()}
    return len({b for b in bodies if isinstance(b, str) and b.startswith("op ")})


def lost_and_counted(ledger: dict[str, int]) -> int:
    """Items the app itself counted as lost, whatever the reason."""
    return ledger["export_failed"] + sum(ledger.get(key, 0) for key in COUNTED_LOSS)
