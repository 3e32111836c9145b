"""Jaeger v2 and VictoriaLogs on free loopback ports, for integration tests.

``running_jaeger`` and ``running_victorialogs`` start one store each with its files under
a directory of the test's, wait until it answers, and always stop it; the ``jaeger`` and
``victorialogs`` fixtures (registered in ``tests/integration/conftest.py``) wrap them.

The binaries are those ``bash collector/stores/build.sh`` builds into ``collector/_build/``
(or ``TTBT5_JAEGER_BIN`` / ``TTBT5_VICTORIALOGS_BIN``). A missing one fails the test rather
than skipping it: building is the setup's job, and a skipped store test would hide a
broken trace view.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import clean_env, free_port, stop_processes, wait_until
from tests.paths import REPO

BUILD_DIR = REPO / "collector" / "_build"
JAEGER_CONFIG = REPO / "collector" / "jaeger.yaml"
BUILD_HINT = "run `bash collector/stores/build.sh`"
STARTUP_TIMEOUT = 60.0
# free_port() releases the port before the store binds it; another process may take it in
# between. A store that exits during startup is started again on fresh ports.
START_ATTEMPTS = 3
JAEGER_PORTS = ("OTLP_GRPC", "OTLP_HTTP", "QUERY", "QUERY_GRPC", "HEALTH", "METRICS")


@dataclass(frozen=True)
class Jaeger:
    """A running Jaeger: its query API and OTLP receivers on 127.0.0.1."""

    url: str
    """Base URL of the query API (``/api/traces``, ``/api/services``)."""
    otlp_grpc: str
    """``127.0.0.1:port`` of the OTLP/gRPC receiver."""
    otlp_http: str
    """``http://127.0.0.1:port`` of the OTLP/HTTP receiver (``/v1/traces`` appended)."""
    health: str
    log: Path


@dataclass(frozen=True)
class VictoriaLogs:
    """A running VictoriaLogs on 127.0.0.1."""

    url: str
    """Base URL: ``/select/logsql/query``, ``/health``."""
    otlp_logs: str
    """The OTLP/HTTP logs endpoint, ``{url}/insert/opentelemetry/v1/logs``."""
    data: Path
    log: Path


def binary(env_var: str, name: str) -> Path:
    """``$env_var`` if set, else ``collector/_build/name``; fails the test if not executable."""
    configured = os.environ.get(env_var)
    path = Path(configured) if configured else BUILD_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} not found at {path}: {BUILD_HINT} (or set {env_var})", pytrace=False)
    return path


def answers_200(url: str) -> bool:
    """Whether ``GET url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError as exc:
        exc.close()  # an unclosed error response is a ResourceWarning, an error here
        return False
    except OSError:
        return False


def get_json(url: str) -> Any:
    """``GET url`` answered 200 with JSON (a store's query API)."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200, url
        return json.load(reply)


def get_lines(url: str) -> list[dict[str, Any]]:
    """``GET url`` answered 200 with one JSON object per line (a LogsQL query)."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200, url
        return [json.loads(line) for line in reply.read().decode().splitlines() if line]


def assert_error_traces_of(service: str, traces: list[dict[str, Any]]) -> None:
    """Each Jaeger trace is the service's alone and has a span with an error status."""
    assert traces, f"no traces of {service}"
    for trace in traces:
        services = {process["serviceName"] for process in trace["processes"].values()}
        assert services == {service}, services
        statuses = {
            tag["value"] for span in trace["spans"] for tag in span["tags"]
            if tag["key"] == "otel.status_code"
        }  # fmt: skip
        assert "ERROR" in statuses, trace["traceID"]


def assert_error_records_of(service: str, records: list[dict[str, Any]]) -> None:
    """Each VictoriaLogs record is the service's and of severity ERROR or above."""
    assert records, f"no log records of {service}"
    for record in records:
        assert record["service.name"] == service, record
        assert int(record["severity_number"]) >= 17, record


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no output)"
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def _started(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, ready: list[str]
) -> Iterator[Path | None]:
    """Run ``argv`` until the block ends; yield its log, or None if it exited while starting."""
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=out)
    try:

        def up() -> bool | None:
            if process.poll() is not None:
                return None
            return all(answers_200(url) for url in ready)

        wait_until(
            f"{name} to answer {', '.join(ready)}",
            lambda: up() is not False,
            STARTUP_TIMEOUT,
            lambda: _tail(log),
        )
        yield log if process.poll() is None else None
    finally:
        stop_processes([process])


@contextmanager
def running_jaeger(workdir: Path) -> Iterator[Jaeger]:
    """Jaeger with ``collector/jaeger.yaml`` on free ports; stopped when the block ends."""
    command = [str(binary("TTBT5_JAEGER_BIN", "ttbt5-jaeger")), "--config", str(JAEGER_CONFIG)]
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        ports = {key: free_port() for key in JAEGER_PORTS}
        # Jaeger traces its own query API to 127.0.0.1:4317, where a stack under test may
        # listen: off, as `stack up` has it.
        env = clean_env(TTBT5_JAEGER_HOST="127.0.0.1", OTEL_TRACES_SAMPLER="always_off")
        env.update({f"TTBT5_JAEGER_{key}_PORT": str(port) for key, port in ports.items()})
        query = f"http://127.0.0.1:{ports['QUERY']}"
        health = f"http://127.0.0.1:{ports['HEALTH']}/status"
        ready = [health, f"{query}/api/services"]
        with _started("jaeger", command, env, workdir, ready) as log:
            if log is None:
                continue
            yield Jaeger(
                url=query,
                otlp_grpc=f"127.0.0.1:{ports['OTLP_GRPC']}",
                otlp_http=f"http://127.0.0.1:{ports['OTLP_HTTP']}",
                health=health,
                log=log,
            )
            return
    pytest.fail(
        f"jaeger exited while starting, {START_ATTEMPTS} times:\n{_tail(workdir / 'jaeger.log')}"
    )


@contextmanager
def running_victorialogs(workdir: Path) -> Iterator[VictoriaLogs]:
    """VictoriaLogs with its data under ``workdir`` on a free port; stopped when the block ends."""
    program = str(binary("TTBT5_VICTORIALOGS_BIN", "ttbt5-victoria-logs"))
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        url = f"http://127.0.0.1:{free_port()}"
        command = [program, f"-httpListenAddr={url.removeprefix('http://')}"]
        command += [f"-storageDataPath={data}"]
        with _started("victorialogs", command, clean_env(), workdir, [f"{url}/health"]) as log:
            if log is None:
                continue
            yield VictoriaLogs(url, f"{url}/insert/opentelemetry/v1/logs", data, log)
            return
    log = workdir / "victorialogs.log"
    pytest.fail(f"victorialogs exited while starting, {START_ATTEMPTS} times:\n{_tail(log)}")


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    """A fresh Jaeger (in-memory traces) on free loopback ports, stopped after the test."""
    with running_jaeger(tmp_path / "jaeger") as store:
        yield store


@pytest.fixture
def victorialogs(tmp_path: Path) -> Iterator[VictoriaLogs]:
    """A fresh VictoriaLogs with its data under tmp_path, stopped after the test."""
    with running_victorialogs(tmp_path / "victorialogs") as store:
        yield store
