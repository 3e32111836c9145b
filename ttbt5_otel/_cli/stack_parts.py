"""The parts of the local stack: how each is found, started and checked.

Each builder returns a ``Component`` for one process: collectors (agents), gateway
collectors, Prometheus, Alertmanager (alone or clustered), and the two stores, Jaeger v2
(traces) and VictoriaLogs (logs). The stores are built from their Go modules by
``collector/stores/build.sh`` into ``collector/_build/`` of a source checkout, or found
through ``TTBT5_JAEGER_BIN`` / ``TTBT5_VICTORIALOGS_BIN`` or on the PATH. So is the alert
webhook receiver (``alert_webhook``), which runs on this very interpreter.

Their ports are pinned like the others': the collector config exports to exactly these
(``TTBT5_TRACES_BACKEND_ENDPOINT``, ``TTBT5_LOGS_BACKEND_ENDPOINT``), and alert links and
``ttbt5-otel traces`` query the query ports.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ttbt5_otel._exceptions import StackError

HOST: Final = "127.0.0.1"
# The configs ship inside the package (in a source checkout these are links to the
# repository's own files), so `stack up` works from an installed wheel as well.
STACK_FILES: Final = Path(__file__).resolve().parent / "stack_files"
# Where `bash collector/build.sh` and `bash collector/stores/build.sh` put their
# binaries in a source checkout.
BUILD_DIR: Final = Path(__file__).resolve().parents[2] / "collector" / "_build"
COLLECTOR_BUILD: Final = BUILD_DIR / "ttbt5-otelcol"
COLLECTOR_HINT: Final = (
    "build it from a source checkout with `bash collector/build.sh`, or point "
    "TTBT5_COLLECTOR_BIN at a ttbt5-otelcol binary"
)
INSTALL_HINT: Final = "apt-get install prometheus prometheus-alertmanager redis-server"
STORES_HINT: Final = (
    "build it from a source checkout with `bash collector/stores/build.sh`, or point "
    "{variable} at a built binary"
)

COLLECTOR_PORTS: Final = {
    "OTLP_GRPC": 4317,
    "OTLP_HTTP": 4318,
    "PROMETHEUS": 8889,
    "TELEMETRY": 8888,
    "HEALTH": 13133,
}
"""The single collector's ports (the first agent's in the HA topology): the shipped
Prometheus config scrapes 8888/8889 and applications send to 4317/4318 by default."""
SPAN_METRICS_FLUSH_ENV: Final = "TTBT5_COLLECTOR_SPAN_METRICS_FLUSH_INTERVAL"
PROMETHEUS_PORT: Final = 9090
PROMETHEUS_URL: Final = f"http://{HOST}:{PROMETHEUS_PORT}"
ALERTMANAGER_PORT: Final = 9093
JAEGER_PORTS: Final = {
    "OTLP_GRPC": 14317,
    "OTLP_HTTP": 14318,
    "QUERY": 16686,
    "QUERY_GRPC": 16685,
    "HEALTH": 14133,
    "METRICS": 14269,
}
JAEGER_OTLP_GRPC_PORT: Final = JAEGER_PORTS["OTLP_GRPC"]
VICTORIALOGS_PORT: Final = 9428
# Logs older than this are removed; a local stack is for recent evidence.
VICTORIALOGS_RETENTION: Final = "7d"
# Where dashboards/alertmanager/alertmanager.yml posts every notification.
ALERT_WEBHOOK_PORT: Final = 9099
ALERTS_FILE: Final = "alerts.jsonl"


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
    prepare: Callable[[], None] | None = None
    """Writes the files the component needs before it starts (Redis: its private config)."""


def find_binary(env_var: str, candidates: tuple[str, ...], hint: str) -> str:
    """``env_var`` when set (it must name an executable), else the first candidate on PATH."""
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


def _built_or_found(env_var: str, built: str, candidates: tuple[str, ...]) -> str:
    """``env_var``, else the source checkout's build, else a candidate on PATH."""
    path = BUILD_DIR / built
    if os.environ.get(env_var) or not path.is_file():
        return find_binary(env_var, candidates, STORES_HINT.format(variable=env_var))
    return str(path)


def config_file(relative: str) -> str:
    """The path of a shipped config file; ``StackError`` when the installation lacks it."""
    path = STACK_FILES / relative
    if not path.is_file():
        raise StackError(f"{path} is missing: this installation of ttbt5-otel is incomplete")
    return str(path)


def trace_store(base_env: Mapping[str, str]) -> Component:
    """Jaeger v2 with in-memory storage, OTLP in, query API on 16686."""
    # Jaeger traces its own query API to the default OTLP endpoint, which is the stack's
    # collector: the store's own requests would show up as a service beside the apps.
    env = {**base_env, "TTBT5_JAEGER_HOST": HOST, "OTEL_TRACES_SAMPLER": "always_off"}
    for key, port in JAEGER_PORTS.items():
        env[f"TTBT5_JAEGER_{key}_PORT"] = str(port)
    base = f"http://{HOST}"
    return Component(
        "jaeger",
        (
            _built_or_found("TTBT5_JAEGER_BIN", "ttbt5-jaeger", ("ttbt5-jaeger", "jaeger")),
            "--config",
            config_file("jaeger.yaml"),
        ),
        tuple(JAEGER_PORTS.values()),
        f"{base}:{JAEGER_PORTS['HEALTH']}/status",
        {
            "query API": f"{base}:{JAEGER_PORTS['QUERY']}/api/traces",
            "OTLP gRPC in": f"{base}:{JAEGER_OTLP_GRPC_PORT}",
        },
        env,
    )


def log_store(state_dir: Path, base_env: Mapping[str, str]) -> Component:
    """VictoriaLogs: OTLP logs in, LogsQL and its web UI on 9428, data under ``state_dir``."""
    base = f"http://{HOST}:{VICTORIALOGS_PORT}"
    return Component(
        "victorialogs",
        (
            _built_or_found(
                "TTBT5_VICTORIALOGS_BIN",
                "ttbt5-victoria-logs",
                ("ttbt5-victoria-logs", "victoria-logs"),
            ),
            f"-httpListenAddr={HOST}:{VICTORIALOGS_PORT}",
            f"-storageDataPath={state_dir / 'victorialogs'}",
            f"-retentionPeriod={VICTORIALOGS_RETENTION}",
        ),
        (VICTORIALOGS_PORT,),
        f"{base}/health",
        {
            "web UI": f"{base}/select/vmui/",
            "LogsQL API": f"{base}/select/logsql/query",
        },
        dict(base_env),
    )


def alert_webhook(state_dir: Path, base_env: Mapping[str, str]) -> Component:
    """The receiver of Alertmanager's notifications, kept in ``alerts.jsonl`` (0600)."""
    base = f"http://{HOST}:{ALERT_WEBHOOK_PORT}"
    return Component(
        "alert-webhook",
        (
            sys.executable,
            "-m",
            "ttbt5_otel._cli.alert_webhook",
            "--host",
            HOST,
            "--port",
            str(ALERT_WEBHOOK_PORT),
            "--store",
            str(state_dir / ALERTS_FILE),
        ),
        (ALERT_WEBHOOK_PORT,),
        f"{base}/-/ready",
        {"notifications": f"{base}/alerts"},
        dict(base_env),
    )


def collector_binary() -> str:
    """``TTBT5_COLLECTOR_BIN``, else a source checkout's build, else ``ttbt5-otelcol`` on PATH."""
    if os.environ.get("TTBT5_COLLECTOR_BIN") or not COLLECTOR_BUILD.is_file():
        return find_binary("TTBT5_COLLECTOR_BIN", ("ttbt5-otelcol",), COLLECTOR_HINT)
    return str(COLLECTOR_BUILD)


def _store_endpoints() -> dict[str, str]:
    """Where a collector that exports to the stores sends (agent or gateway alike)."""
    return {
        "TTBT5_TRACES_BACKEND_ENDPOINT": f"{HOST}:{JAEGER_OTLP_GRPC_PORT}",
        "TTBT5_TRACES_BACKEND_INSECURE": "true",
        "TTBT5_LOGS_BACKEND_ENDPOINT": f"http://{HOST}:{VICTORIALOGS_PORT}/insert/opentelemetry",
    }


def collector(
    name: str,
    binary: str,
    state_dir: Path,
    ports: Mapping[str, int],
    base_env: Mapping[str, str],
    overlays: tuple[str, ...] = (),
    extra_env: Mapping[str, str] | None = None,
) -> Component:
    """A collector running ``otel-collector.yaml`` (plus ``overlays``) on ``ports``.

    ``ports`` maps each ``COLLECTOR_PORTS`` key to this instance's port; its persistent
    queue lives in ``<state_dir>/<name>/queue``.
    """
    env = {**base_env, "TTBT5_COLLECTOR_HOST": HOST, **_store_endpoints()}
    for key, port in ports.items():
        env[f"TTBT5_COLLECTOR_{key}_PORT"] = str(port)
    env["TTBT5_COLLECTOR_QUEUE_DIR"] = str(state_dir / name / "queue")
    # Span metrics every 2s instead of 15s: a local stack is watched as it happens, and the
    # demo profile's 30s windows need many points.
    env.setdefault(SPAN_METRICS_FLUSH_ENV, "2s")
    env.update(extra_env or {})
    base = f"http://{HOST}"
    return Component(
        name,
        (binary, "--config", config_file("otel-collector.yaml"), *overlays),
        tuple(ports.values()),
        f"{base}:{ports['HEALTH']}/",
        {
            "OTLP gRPC": f"{base}:{ports['OTLP_GRPC']}",
            "OTLP HTTP": f"{base}:{ports['OTLP_HTTP']}",
            "metrics for Prometheus": f"{base}:{ports['PROMETHEUS']}/metrics",
            "own metrics": f"{base}:{ports['TELEMETRY']}/metrics",
            "health": f"{base}:{ports['HEALTH']}/",
        },
        env,
    )


def gateway(
    name: str,
    binary: str,
    state_dir: Path,
    ports: Mapping[str, int],
    base_env: Mapping[str, str],
) -> Component:
    """A gateway collector (``gateway.yaml``): ``ports`` has OTLP_GRPC, HEALTH, TELEMETRY."""
    env = {**base_env, "TTBT5_GATEWAY_HOST": HOST, **_store_endpoints()}
    for key, port in ports.items():
        env[f"TTBT5_GATEWAY_{key}_PORT"] = str(port)
    env["TTBT5_GATEWAY_QUEUE_DIR"] = str(state_dir / name / "queue")
    base = f"http://{HOST}"
    return Component(
        name,
        (binary, "--config", config_file("gateway.yaml")),
        tuple(ports.values()),
        f"{base}:{ports['HEALTH']}/",
        {
            "OTLP gRPC (from agents)": f"{base}:{ports['OTLP_GRPC']}",
            "own metrics": f"{base}:{ports['TELEMETRY']}/metrics",
            "health": f"{base}:{ports['HEALTH']}/",
        },
        env,
    )


def prometheus(
    name: str,
    config: Path,
    port: int,
    state_dir: Path,
    base_env: Mapping[str, str],
    *,
    lifecycle: bool = False,
    prepare: Callable[[], None] | None = None,
    extra_flags: tuple[str, ...] = (),
) -> Component:
    """A Prometheus reading ``config`` (written by ``prepare``), data in ``<state_dir>/<name>``.

    ``lifecycle`` adds ``--web.enable-lifecycle``: Prometheus then accepts ``POST
    /-/reload`` and ``/-/quit`` from anyone who can reach it, web pages included.
    """
    binary = find_binary(
        "TTBT5_PROMETHEUS_BIN", ("prometheus",), f"install it with `{INSTALL_HINT}`"
    )
    base = f"http://{HOST}:{port}"
    return Component(
        name,
        (
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={state_dir / name}",
            f"--web.listen-address={HOST}:{port}",
            # Keeps the trace ids that the collector's OpenMetrics page attaches to
            # histogram buckets, for /api/v1/query_exemplars and Grafana.
            "--enable-feature=exemplar-storage",
            *extra_flags,
            *(("--web.enable-lifecycle",) if lifecycle else ()),
        ),
        (port,),
        f"{base}/-/ready",
        {"web UI": f"{base}/", "query API": f"{base}/api/v1/query"},
        dict(base_env),
        prepare,
    )


def alertmanager(
    name: str,
    config: Path,
    port: int,
    state_dir: Path,
    base_env: Mapping[str, str],
    *,
    prepare: Callable[[], None] | None = None,
    cluster_port: int | None = None,
    peers: tuple[int, ...] = (),
) -> Component:
    """An Alertmanager reading ``config`` (written by ``prepare``); alone unless ``cluster_port``.

    Clustered, it gossips on ``cluster_port`` with the Alertmanagers on ``peers``: they
    share silences and the log of sent notifications, so a page reaches its receiver once
    whichever of them received the alert.
    """
    binary = find_binary(
        "TTBT5_ALERTMANAGER_BIN",
        ("prometheus-alertmanager", "alertmanager"),
        f"install it with `{INSTALL_HINT}`",
    )
    if cluster_port is None:
        # An empty address disables clustering (and its port 9094).
        cluster: tuple[str, ...] = ("--cluster.listen-address=",)
    else:
        cluster = (
            f"--cluster.listen-address={HOST}:{cluster_port}",
            f"--cluster.advertise-address={HOST}:{cluster_port}",
            *(f"--cluster.peer={HOST}:{peer}" for peer in peers),
            # Each member waits its position times this before sending what the
            # members ahead of it should have sent; loopback gossip takes milliseconds,
            # the default 15s would delay every page whose first member is down.
            "--cluster.peer-timeout=3s",
        )
    base = f"http://{HOST}:{port}"
    return Component(
        name,
        (
            binary,
            f"--config.file={config}",
            f"--storage.path={state_dir / name}",
            f"--web.listen-address={HOST}:{port}",
            *cluster,
        ),
        (port,) if cluster_port is None else (port, cluster_port),
        f"{base}/-/ready",
        {"web UI": f"{base}/"},
        dict(base_env),
        prepare,
    )


def thanos_binary() -> str:
    """``TTBT5_THANOS_BIN``, else a source checkout's build, else ``thanos`` on PATH."""
    path = BUILD_DIR / "ttbt5-thanos"
    if os.environ.get("TTBT5_THANOS_BIN") or not path.is_file():
        return find_binary(
            "TTBT5_THANOS_BIN",
            ("ttbt5-thanos", "thanos"),
            "build it from a source checkout with `bash collector/thanos/build.sh`, or point "
            "TTBT5_THANOS_BIN at a thanos binary",
        )
    return str(path)


def thanos_sidecar(
    name: str,
    binary: str,
    prometheus_port: int,
    tsdb: Path,
    ports: Mapping[str, int],
    base_env: Mapping[str, str],
) -> Component:
    """A Thanos sidecar serving the Prometheus on ``prometheus_port`` over the Store API.

    ``ports`` has GRPC (the Store API the query reads) and HTTP (readiness, metrics). No
    object storage: the sidecar serves what the Prometheus holds, which is all a local
    stack keeps.
    """
    base = f"http://{HOST}:{ports['HTTP']}"
    return Component(
        name,
        (
            binary,
            "sidecar",
            f"--prometheus.url=http://{HOST}:{prometheus_port}",
            f"--tsdb.path={tsdb}",
            f"--grpc-address={HOST}:{ports['GRPC']}",
            f"--http-address={HOST}:{ports['HTTP']}",
        ),
        (ports["GRPC"], ports["HTTP"]),
        f"{base}/-/ready",
        {"Store API (gRPC)": f"{HOST}:{ports['GRPC']}", "metrics": f"{base}/metrics"},
        dict(base_env),
    )


def thanos_query(
    name: str,
    binary: str,
    stores: tuple[int, ...],
    ports: Mapping[str, int],
    replica_label: str,
    base_env: Mapping[str, str],
) -> Component:
    """A Thanos query over the sidecars' gRPC ``stores``, merging replicas by ``replica_label``.

    It answers the Prometheus HTTP API (queries, series, labels, rules, alerts) with one
    series where the replicas have one each, filling one replica's gaps from the other.
    """
    base = f"http://{HOST}:{ports['HTTP']}"
    return Component(
        name,
        (
            binary,
            "query",
            f"--http-address={HOST}:{ports['HTTP']}",
            f"--grpc-address={HOST}:{ports['GRPC']}",
            *(f"--endpoint={HOST}:{port}" for port in stores),
            f"--query.replica-label={replica_label}",
        ),
        (ports["GRPC"], ports["HTTP"]),
        f"{base}/-/ready",
        {"query API (deduplicated)": f"{base}/api/v1/query", "web UI": f"{base}/"},
        dict(base_env),
    )


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, as a file only its owner can read (0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover temporary file keeps its old mode otherwise
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    tmp.replace(path)
