"""Local stack without Docker: collector, Prometheus, Alertmanager and optionally Redis.

Everything listens on 127.0.0.1 with the ports the repository's configs pin (Prometheus
scrapes the collector on 8888/8889 and alerts to 9093). Each started process is recorded in
``<state dir>/stack.json`` with its pid and start time; ``down`` and ``status`` act on those
records only, so nothing that this module did not start is ever signalled.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from ttbt5_otel._cli.processes import (
    ProcessId,
    ensure_ports_free,
    is_running,
    log_tail,
    probe,
    spawn_detached,
    stop,
)
from ttbt5_otel._exceptions import StackError

# The configs ship inside the package (in a source checkout these are links to the
# repository's own files), so `stack up` works from an installed wheel as well.
STACK_FILES: Final = Path(__file__).resolve().parent / "stack_files"
# Where `bash collector/build.sh` puts the collector in a source checkout.
SOURCE_BUILD: Final = Path(__file__).resolve().parents[2] / "collector" / "_build" / "ttbt5-otelcol"
COLLECTOR_HINT: Final = (
    "build it from a source checkout with `bash collector/build.sh`, or point "
    "TTBT5_COLLECTOR_BIN at a ttbt5-otelcol binary"
)
STATE_FILE: Final = "stack.json"
HOST: Final = "127.0.0.1"
INSTALL_HINT: Final = "apt-get install prometheus prometheus-alertmanager redis-server"
_COLLECTOR_PORTS: Final = {
    "OTLP_GRPC": 4317,
    "OTLP_HTTP": 4318,
    "PROMETHEUS": 8889,
    "TELEMETRY": 8888,
    "HEALTH": 13133,
}


@dataclass(frozen=True, slots=True)
class Component:
    """How to start one part of the stack and how to tell that it is ready."""

    name: str
    argv: tuple[str, ...]
    ports: tuple[int, ...]
    ready: str
    """Readiness probe: an http:// URL answering 200, or redis://host:port answering PING."""
    urls: Mapping[str, str]
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Record:
    """A started component as stored in ``stack.json``."""

    pid: int
    start_time: float
    argv: list[str]
    log: str
    ready: str
    urls: dict[str, str]

    @property
    def process(self) -> ProcessId:
        """The recorded process identity."""
        return ProcessId(self.pid, self.start_time)


@dataclass(frozen=True, slots=True)
class Status:
    """What ``status`` found for one recorded component."""

    name: str
    record: Record
    running: bool
    ready: bool


def default_state_dir() -> Path:
    """``TTBT5_STACK_DIR``, else ``.ttbt5-stack`` in the current directory."""
    return Path(os.environ.get("TTBT5_STACK_DIR") or ".ttbt5-stack").absolute()


def _binary(env_var: str, candidates: tuple[str, ...], hint: str) -> str:
    configured = os.environ.get(env_var)
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):  # noqa: PTH113
            return str(Path(configured).absolute())
        raise StackError(f"{env_var}={configured} is not an executable file; {hint}")
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise StackError(f"{' or '.join(candidates)} not found on PATH: {hint} (or set {env_var})")


def _collector_binary() -> str:
    """``TTBT5_COLLECTOR_BIN``, else a source checkout's build, else ``ttbt5-otelcol`` on PATH."""
    if os.environ.get("TTBT5_COLLECTOR_BIN") or not SOURCE_BUILD.is_file():
        return _binary("TTBT5_COLLECTOR_BIN", ("ttbt5-otelcol",), COLLECTOR_HINT)
    return str(SOURCE_BUILD)


def _config(relative: str) -> str:
    path = STACK_FILES / relative
    if not path.is_file():
        raise StackError(f"{path} is missing: this installation of ttbt5-otel is incomplete")
    return str(path)


def components(state_dir: Path, *, with_redis: bool) -> list[Component]:
    """The components to run, in start order; raises ``StackError`` for missing binaries."""
    apt = f"install it with `{INSTALL_HINT}`"
    # The collector reads its addresses from these variables; they are pinned because the
    # Prometheus config scrapes exactly these ports.
    collector_env = {**os.environ, "TTBT5_COLLECTOR_HOST": HOST}
    for key, port in _COLLECTOR_PORTS.items():
        collector_env[f"TTBT5_COLLECTOR_{key}_PORT"] = str(port)
    base = f"http://{HOST}"
    found = [
        Component(
            "collector",
            (_collector_binary(), "--config", _config("otel-collector.yaml")),
            tuple(_COLLECTOR_PORTS.values()),
            f"{base}:13133/",
            {
                "OTLP gRPC": f"{base}:4317",
                "OTLP HTTP": f"{base}:4318",
                "metrics for Prometheus": f"{base}:8889/metrics",
                "own metrics": f"{base}:8888/metrics",
                "health": f"{base}:13133/",
            },
            collector_env,
        ),
        Component(
            "prometheus",
            (
                _binary("TTBT5_PROMETHEUS_BIN", ("prometheus",), apt),
                # Rule file paths in the config resolve against the config file's directory.
                f"--config.file={_config('prometheus/prometheus.yml')}",
                f"--storage.tsdb.path={state_dir / 'prometheus'}",
                f"--web.listen-address={HOST}:9090",
                "--web.enable-lifecycle",
            ),
            (9090,),
            f"{base}:9090/-/ready",
            {"web UI": f"{base}:9090/", "query API": f"{base}:9090/api/v1/query"},
            dict(os.environ),
        ),
        Component(
            "alertmanager",
            (
                _binary("TTBT5_ALERTMANAGER_BIN", ("prometheus-alertmanager", "alertmanager"), apt),
                f"--config.file={_config('alertmanager/alertmanager.yml')}",
                f"--storage.path={state_dir / 'alertmanager'}",
                f"--web.listen-address={HOST}:9093",
                # An empty address disables clustering (and its port 9094).
                "--cluster.listen-address=",
            ),
            (9093,),
            f"{base}:9093/-/ready",
            {"web UI": f"{base}:9093/"},
            dict(os.environ),
        ),
    ]
    if with_redis:
        redis_dir = state_dir / "redis"
        found.append(
            Component(
                "redis",
                # Cache data only: nothing is persisted, so no dump appears anywhere.
                (
                    _binary("TTBT5_REDIS_BIN", ("redis-server",), apt),
                    *("--bind", HOST, "--port", "6379", "--save", "", "--appendonly", "no"),
                    *("--dir", str(redis_dir)),
                ),
                (6379,),
                f"redis://{HOST}:6379",
                {"redis": f"redis://{HOST}:6379/0"},
                dict(os.environ),
            )
        )
    return found


def load(state_dir: Path) -> dict[str, Record]:
    """The recorded components (empty when nothing is recorded)."""
    path = state_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: Record(**fields) for name, fields in raw["components"].items()}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(f"{path} is not a stack record ({exc}); remove it by hand") from None


def _save(state_dir: Path, records: Mapping[str, Record]) -> None:
    path = state_dir / STATE_FILE
    if not records:
        path.unlink(missing_ok=True)
        return
    body = {"components": {name: asdict(record) for name, record in records.items()}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _wait_ready(component: Component, record: Record, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe(component.ready):
        if not is_running(record.process):
            problem = "exited during startup"
        elif time.monotonic() > deadline:
            problem = f"not ready after {timeout:.0f}s ({component.ready})"
        else:
            time.sleep(0.2)
            continue
        tail = log_tail(Path(record.log)) or "(empty)"
        raise StackError(f"{component.name} {problem}; last lines of {record.log}:\n{tail}")


def up(
    state_dir: Path,
    *,
    with_redis: bool = False,
    timeout: float = 30.0,
    report: Callable[[str], None] = print,
) -> dict[str, Record]:
    """Start every component that is not already running and wait until each is ready.

    Components recorded and still running are left alone, so running ``up`` again after
    one part died restarts only that part. On failure, the processes started by this call
    are stopped again and ``StackError`` quotes the failing component's log.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    wanted = components(state_dir, with_redis=with_redis)
    records = {n: r for n, r in load(state_dir).items() if is_running(r.process)}
    started: list[str] = []
    try:
        for component in wanted:
            if component.name in records:
                report(f"{component.name}: already running (pid {records[component.name].pid})")
                continue
            ensure_ports_free(component.name, component.ports, HOST)
            log = state_dir / f"{component.name}.log"
            # Data directory of the component (Redis refuses to start without it).
            (state_dir / component.name).mkdir(exist_ok=True)
            # Logs are appended across restarts; the marker tells this run's lines apart.
            with log.open("a", encoding="utf-8") as marker:
                marker.write(
                    f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {component.name}\n"
                )
            proc = spawn_detached(component.argv, component.env, log)
            records[component.name] = Record(
                proc.pid,
                proc.start_time,
                list(component.argv),
                str(log),
                component.ready,
                dict(component.urls),
            )
            started.append(component.name)
            _save(state_dir, records)
            _wait_ready(component, records[component.name], timeout)
            report(f"{component.name}: ready (pid {proc.pid}, log {log})")
    except BaseException:
        stop([records[name].process for name in started], timeout=10.0)
        for name in started:
            del records[name]
        _save(state_dir, records)
        raise
    for name, record in records.items():
        for label, url in record.urls.items():
            report(f"  {name:<13} {label:<23} {url}")
    return records


def status(state_dir: Path) -> list[Status]:
    """Running (same pid and start time) and readiness of each recorded component."""
    found = []
    for name, record in load(state_dir).items():
        running = is_running(record.process)
        found.append(Status(name, record, running, running and probe(record.ready)))
    return found


def down(state_dir: Path, *, timeout: float = 15.0) -> dict[str, bool]:
    """Stop the recorded processes (SIGTERM, SIGKILL after ``timeout``); forget the record.

    Returns, per recorded component, whether it was still running and has been stopped.
    """
    records = load(state_dir)
    # Signalled in reverse start order, so Prometheus stops scraping first.
    ordered = list(reversed(records.items()))
    stopped = set(stop([record.process for _, record in ordered], timeout))
    _save(state_dir, {})
    return {name: record.process in stopped for name, record in ordered}
