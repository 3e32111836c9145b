"""The highly available topology of the local stack (``stack up --topology ha``).

Every tier runs more than once, on 127.0.0.1, each instance on its own ports:

* two agents (``otel-collector.yaml`` + ``agent-to-gateways.yaml``): applications send to
  either; each computes the span metrics of what it receives and forwards traces and logs
  to the gateways, every span of a trace to the same one;
* two gateways (``gateway.yaml``): tail sampling on whole traces, then the stores;
* two Prometheus replicas, identical but for ``external_labels: {replica: a|b}``, both
  scraping every agent and gateway and evaluating every rule, both alerting to all three
  Alertmanagers with the replica label dropped, so their alerts are the same alerts;
* three Alertmanagers clustered over gossip: they share silences and the log of sent
  notifications, so a page is delivered once, whichever of them is down;
* a Thanos sidecar per Prometheus and a Thanos query that merges the pair and removes the
  duplicates (``--query.replica-label=replica``): one Prometheus can die without a gap;
* a Redis Cluster of three masters with a replica each, for the shared cache level;
* one Jaeger, one VictoriaLogs and the alert webhook, as in the single stack.

The first agent, the first Prometheus and the first Alertmanager keep the single stack's
names and ports (4317/4318, 9090, 9093), so applications, ``demo``, ``alerts`` and
``traces`` work unchanged against either topology.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import yaml

from ttbt5_otel._cli import redis_cluster
from ttbt5_otel._cli import slo_profile as slo_profiles
from ttbt5_otel._cli.stack_parts import (
    ALERTMANAGER_PORT,
    COLLECTOR_PORTS,
    HOST,
    INSTALL_HINT,
    PROMETHEUS_PORT,
    Component,
    alert_webhook,
    alertmanager,
    collector,
    collector_binary,
    config_file,
    find_binary,
    gateway,
    log_store,
    prometheus,
    thanos_binary,
    thanos_query,
    thanos_sidecar,
    trace_store,
)

TOPOLOGIES: Final = ("single", "ha")
TOPOLOGY_FILE: Final = "topology"
REPLICA_LABEL: Final = "replica"

AGENT_PORTS: Final = (
    dict(COLLECTOR_PORTS),
    {"OTLP_GRPC": 4327, "OTLP_HTTP": 4328, "PROMETHEUS": 8899, "TELEMETRY": 8898, "HEALTH": 13143},
)
GATEWAY_PORTS: Final = (
    {"OTLP_GRPC": 24317, "HEALTH": 24318, "TELEMETRY": 24319},
    {"OTLP_GRPC": 24327, "HEALTH": 24328, "TELEMETRY": 24329},
)
PROMETHEUS_REPLICAS: Final = {"a": PROMETHEUS_PORT, "b": 9091}
THANOS_SIDECAR_PORTS: Final = {
    "a": {"GRPC": 10911, "HTTP": 10912},
    "b": {"GRPC": 10921, "HTTP": 10922},
}
THANOS_QUERY_PORTS: Final = {"GRPC": 10901, "HTTP": 10902}
THANOS_QUERY_URL: Final = f"http://{HOST}:{THANOS_QUERY_PORTS['HTTP']}"
# Client and cluster-bus port of each Redis Cluster node: the first three are the masters.
REDIS_CLUSTER_PORTS: Final = tuple((7001 + i, 17001 + i) for i in range(6))
REDIS_CLUSTER_REPLICAS: Final = 1
REDIS_CLUSTER_DIR: Final = "redis-cluster"
# Web port and gossip port of each Alertmanager.
ALERTMANAGERS: Final = ((ALERTMANAGER_PORT, 9094), (9193, 9194), (9293, 9294))


def agent_names() -> tuple[str, ...]:
    """Record names of the agents; the first keeps the single stack's ``collector``."""
    return tuple("collector" if i == 0 else f"collector-{i + 1}" for i in range(len(AGENT_PORTS)))


def prometheus_name(replica: str) -> str:
    """Record name of a Prometheus replica; replica a keeps the single stack's name."""
    return "prometheus" if replica == "a" else f"prometheus-{replica}"


def prometheus_config(state_dir: Path, replica: str) -> Path:
    """Where the configuration of a Prometheus replica is written."""
    if replica == "a":
        return state_dir / slo_profiles.CONFIG_FILE
    return state_dir / f"prometheus-{replica}.yml"


def alertmanager_name(index: int) -> str:
    """Record name of the ``index``-th Alertmanager (0-based)."""
    return "alertmanager" if index == 0 else f"alertmanager-{index + 1}"


def _targets(ports: list[int]) -> list[dict[str, list[str]]]:
    return [{"targets": [f"{HOST}:{port}" for port in ports]}]


def replica_config(single: dict[str, Any], replica: str) -> dict[str, Any]:
    """The single stack's Prometheus config turned into that of one HA replica.

    Same rules and jobs; every agent and gateway scraped; alerts sent to every
    Alertmanager without the replica label, so both replicas send identical alerts.
    """
    config = dict(single)
    config["global"] = {**single["global"], "external_labels": {REPLICA_LABEL: replica}}
    config["alerting"] = {
        "alert_relabel_configs": [{"action": "labeldrop", "regex": REPLICA_LABEL}],
        "alertmanagers": [{"static_configs": _targets([web for web, _ in ALERTMANAGERS])}],
    }
    per_job = {
        "otel-collector": [ports["PROMETHEUS"] for ports in AGENT_PORTS],
        "otel-collector-self": [ports["TELEMETRY"] for ports in (*AGENT_PORTS, *GATEWAY_PORTS)],
        "prometheus": list(PROMETHEUS_REPLICAS.values()),
    }
    jobs = []
    for job in single["scrape_configs"]:
        ports = per_job.get(job["job_name"])
        jobs.append(job if ports is None else {**job, "static_configs": _targets(ports)})
    config["scrape_configs"] = jobs
    return config


def write_configs(state_dir: Path, profile: str) -> None:
    """Write every replica's Prometheus config and the shared Alertmanager config."""
    written = slo_profiles.write_config(state_dir, profile)
    single = yaml.safe_load(written.read_text(encoding="utf-8"))
    for replica in PROMETHEUS_REPLICAS:
        slo_profiles.write_yaml(
            prometheus_config(state_dir, replica),
            f"{written} for the HA replica {replica}",
            profile,
            replica_config(single, replica),
        )


def redis_nodes(state_dir: Path) -> list[redis_cluster.NodeSpec]:
    """The Redis Cluster nodes of the HA stack in ``state_dir``."""
    return redis_cluster.node_specs(state_dir / REDIS_CLUSTER_DIR, REDIS_CLUSTER_PORTS)


def _redis_nodes(
    state_dir: Path, password: Callable[[], str], password_file: Path, env: dict[str, str]
) -> list[Component]:
    binary = find_binary("TTBT5_REDIS_BIN", ("redis-server",), f"install it with `{INSTALL_HINT}`")
    nodes = redis_nodes(state_dir)

    def prepare() -> None:
        redis_cluster.write_configs(nodes, password())

    probe = urlencode({"password_file": str(password_file)}, safe="/")
    return [
        Component(
            f"redis-{node.port}",
            tuple(redis_cluster.node_command(node, binary)),
            (node.port, node.bus_port),
            f"redis://{HOST}:{node.port}?{probe}",
            {"node": f"redis://:***@{HOST}:{node.port}"},
            env,
            prepare,
        )
        for node in nodes
    ]


def form_redis_cluster(
    state_dir: Path, password: str, report: Callable[[str], None], timeout: float = 30.0
) -> None:
    """Join the running nodes into one cluster, or wait until the formed one is healthy."""
    shards = redis_cluster.form_cluster(
        redis_nodes(state_dir),
        password,
        replicas=REDIS_CLUSTER_REPLICAS,
        timeout=timeout,
        report=report,
    )
    layout = ", ".join(f"{len(shard.replicas)}" for shard in shards)
    report(f"redis cluster: {len(shards)} masters, replicas per master: {layout}")


def redis_cluster_url(state_dir: Path, password: str) -> str:
    """``redis+cluster://`` URL of the HA stack's cluster; it holds the password."""
    return redis_cluster.cluster_url(redis_nodes(state_dir), password)


def components(
    state_dir: Path,
    *,
    slo_profile: str,
    redis_password: Callable[[], str],
    redis_password_file: Path,
    prometheus_lifecycle: bool = False,
) -> list[Component]:
    """The HA topology's components, in start order (``StackError`` for missing binaries).

    ``redis_password`` returns (creating it at first) the password the Redis nodes
    require, kept in ``redis_password_file``; ``form_redis_cluster`` joins them once up.
    The Redis Cluster is always part of this topology (``--with-redis`` changes nothing).
    """
    binary = collector_binary()
    env = dict(os.environ)

    def prepare() -> None:
        write_configs(state_dir, slo_profile)

    gateways = [
        gateway(f"gateway-{i + 1}", binary, state_dir, ports, env)
        for i, ports in enumerate(GATEWAY_PORTS)
    ]
    endpoints = "[" + ", ".join(f"{HOST}:{p['OTLP_GRPC']}" for p in GATEWAY_PORTS) + "]"
    agents = [
        collector(
            name,
            binary,
            state_dir,
            ports,
            env,
            ("--config", config_file("agent-to-gateways.yaml")),
            {"TTBT5_GATEWAY_ENDPOINTS": endpoints},
        )
        for name, ports in zip(agent_names(), AGENT_PORTS, strict=True)
    ]
    prometheuses = [
        prometheus(
            prometheus_name(replica),
            prometheus_config(state_dir, replica),
            port,
            state_dir,
            env,
            lifecycle=prometheus_lifecycle,
            prepare=prepare,
        )
        for replica, port in PROMETHEUS_REPLICAS.items()
    ]
    thanos = thanos_binary()
    sidecars = [
        thanos_sidecar(
            f"thanos-sidecar-{replica}",
            thanos,
            port,
            state_dir / prometheus_name(replica),
            THANOS_SIDECAR_PORTS[replica],
            env,
        )
        for replica, port in PROMETHEUS_REPLICAS.items()
    ]
    query = thanos_query(
        "thanos-query",
        thanos,
        tuple(ports["GRPC"] for ports in THANOS_SIDECAR_PORTS.values()),
        THANOS_QUERY_PORTS,
        REPLICA_LABEL,
        env,
    )
    gossip = [cluster for _, cluster in ALERTMANAGERS]
    alertmanagers = [
        alertmanager(
            alertmanager_name(i),
            state_dir / slo_profiles.ALERTMANAGER_CONFIG_FILE,
            web,
            state_dir,
            env,
            prepare=prepare,
            cluster_port=cluster,
            peers=tuple(port for port in gossip if port != cluster),
        )
        for i, (web, cluster) in enumerate(ALERTMANAGERS)
    ]
    return [
        trace_store(env),
        log_store(state_dir, env),
        *gateways,
        *agents,
        *prometheuses,
        *sidecars,
        query,
        alert_webhook(state_dir, env),
        *alertmanagers,
        *_redis_nodes(state_dir, redis_password, redis_password_file, env),
    ]
