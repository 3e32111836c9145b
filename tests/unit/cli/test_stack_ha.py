"""The HA topology's plan: what runs, on which ports, with which configuration.

Nothing is started here: ``components()`` only names binaries and writes no file until a
component's ``prepare`` runs. The processes themselves are exercised by
``tests/integration/test_ha_stack.py``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ttbt5_otel._cli import stack_ha
from ttbt5_otel._cli.stack import _choose_topology, current_topology
from ttbt5_otel._cli.stack_parts import STACK_FILES, Component
from ttbt5_otel._exceptions import StackError


@pytest.fixture(autouse=True)
def binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any executable will do: components() only names the binaries, it starts nothing."""
    for name in ("COLLECTOR", "PROMETHEUS", "ALERTMANAGER", "REDIS", "JAEGER", "VICTORIALOGS"):
        monkeypatch.setenv(f"TTBT5_{name}_BIN", sys.executable)
    monkeypatch.setenv("TTBT5_THANOS_BIN", sys.executable)


def _plan(tmp_path: Path) -> dict[str, Component]:
    plan = stack_ha.components(
        tmp_path,
        slo_profile="demo",
        redis_password=lambda: "not-a-real-password",
        redis_password_file=tmp_path / "redis.password",
    )
    return {c.name: c for c in plan}


def test_every_tier_is_replicated(tmp_path: Path) -> None:
    """2 agents, 2 gateways, 2 Prometheus with sidecars, 1 query, 3 Alertmanagers."""
    kinds = Counter(name.split("-")[0] for name in _plan(tmp_path))
    assert kinds["collector"] == 2
    assert kinds["gateway"] == 2
    assert kinds["prometheus"] == 2
    assert kinds["alertmanager"] == 3
    assert kinds["thanos"] == 3  # two sidecars and the query
    assert kinds["redis"] == 6  # three masters, a replica each


def test_redis_nodes_keep_the_password_out_of_their_command_line(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    nodes = [c for name, c in plan.items() if name.startswith("redis-")]
    for node in nodes:
        assert "not-a-real-password" not in " ".join(node.argv)
        assert "not-a-real-password" not in node.ready
        assert node.prepare is not None
    nodes[0].prepare()  # writes every node's config, mode 0600
    for spec in stack_ha.redis_nodes(tmp_path):
        assert spec.config.stat().st_mode & 0o777 == 0o600
        assert "requirepass" in spec.config.read_text()


def test_no_two_components_share_a_port(tmp_path: Path) -> None:
    ports = [port for component in _plan(tmp_path).values() for port in component.ports]
    assert len(ports) == len(set(ports)), Counter(ports).most_common(3)


def test_first_replicas_keep_the_single_stack_addresses(tmp_path: Path) -> None:
    """Apps, `demo`, `alerts` and `traces` talk to the same ports whatever the topology."""
    plan = _plan(tmp_path)
    assert 4317 in plan["collector"].ports
    assert 9090 in plan["prometheus"].ports
    assert 9093 in plan["alertmanager"].ports


def test_agents_forward_to_every_gateway(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    gateways = yaml.safe_load(plan["collector-2"].env["TTBT5_GATEWAY_ENDPOINTS"])
    assert gateways == [f"127.0.0.1:{p['OTLP_GRPC']}" for p in stack_ha.GATEWAY_PORTS]
    for name in stack_ha.agent_names():
        argv = plan[name].argv
        assert argv[-2:] == ("--config", str(STACK_FILES / "agent-to-gateways.yaml"))
        # Each agent has its own queue directory (its forwarding queues are in memory: the
        # load_balancing exporter cannot use a persistent one).
        assert plan[name].env["TTBT5_COLLECTOR_QUEUE_DIR"] == str(tmp_path / name / "queue")


def test_alertmanagers_gossip_with_each_other_only(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    for index, (_, gossip) in enumerate(stack_ha.ALERTMANAGERS):
        argv = plan[stack_ha.alertmanager_name(index)].argv
        peers = {a.rsplit(":", 1)[1] for a in argv if a.startswith("--cluster.peer=")}
        assert peers == {str(p) for _, p in stack_ha.ALERTMANAGERS if p != gossip}
        assert f"--cluster.listen-address=127.0.0.1:{gossip}" in argv


def test_query_deduplicates_the_replicas(tmp_path: Path) -> None:
    argv = _plan(tmp_path)["thanos-query"].argv
    assert f"--query.replica-label={stack_ha.REPLICA_LABEL}" in argv
    endpoints = [a for a in argv if a.startswith("--endpoint=")]
    assert len(endpoints) == len(stack_ha.PROMETHEUS_REPLICAS)


def test_replica_configs_differ_only_in_the_replica_label(tmp_path: Path) -> None:
    stack_ha.write_configs(tmp_path, "demo")
    configs = {
        replica: yaml.safe_load(stack_ha.prometheus_config(tmp_path, replica).read_text())
        for replica in stack_ha.PROMETHEUS_REPLICAS
    }
    assert configs["a"]["global"]["external_labels"] == {"replica": "a"}
    assert configs["b"]["global"]["external_labels"] == {"replica": "b"}
    configs["b"]["global"]["external_labels"] = configs["a"]["global"]["external_labels"]
    assert configs["a"] == configs["b"]


def test_replicas_alert_every_alertmanager_without_their_label(tmp_path: Path) -> None:
    """Identical alerts from both replicas: Alertmanager merges them into one."""
    stack_ha.write_configs(tmp_path, "standard")
    config = yaml.safe_load(stack_ha.prometheus_config(tmp_path, "b").read_text())
    alerting = config["alerting"]
    assert alerting["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    [targets] = alerting["alertmanagers"][0]["static_configs"]
    assert targets["targets"] == [f"127.0.0.1:{web}" for web, _ in stack_ha.ALERTMANAGERS]


def test_replicas_scrape_every_agent_and_gateway(tmp_path: Path) -> None:
    stack_ha.write_configs(tmp_path, "standard")
    config = yaml.safe_load(stack_ha.prometheus_config(tmp_path, "a").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [agents] = jobs["otel-collector"]["static_configs"]
    assert agents["targets"] == ["127.0.0.1:8889", "127.0.0.1:8899"]
    [own] = jobs["otel-collector-self"]["static_configs"]
    assert len(own["targets"]) == 4  # two agents, two gateways
    # Everything else of the shipped job is kept (limits, honor_labels).
    shipped = yaml.safe_load((STACK_FILES / "prometheus" / "prometheus.yml").read_text())
    [original] = [j for j in shipped["scrape_configs"] if j["job_name"] == "otel-collector"]
    assert {k: v for k, v in jobs["otel-collector"].items() if k != "static_configs"} == {
        k: v for k, v in original.items() if k != "static_configs"
    }


def test_topology_is_remembered_and_never_switched_while_running(tmp_path: Path) -> None:
    assert current_topology(tmp_path) == "single"
    assert _choose_topology(tmp_path, "ha", running=False) == "ha"
    (tmp_path / stack_ha.TOPOLOGY_FILE).write_text("ha\n")
    assert _choose_topology(tmp_path, None, running=True) == "ha"
    with pytest.raises(StackError, match="runs the ha topology; `ttbt5-otel stack down`"):
        _choose_topology(tmp_path, "single", running=True)
    with pytest.raises(StackError, match="--topology='mesh'"):
        _choose_topology(tmp_path, "mesh", running=False)
