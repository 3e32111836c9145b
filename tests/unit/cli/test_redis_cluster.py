"""The Redis Cluster bootstrap without servers: node configs, the command line, the URL.

Forming a cluster from running nodes is exercised with real redis-server processes by
``tests/integration/test_cache_redis_cluster.py`` (its fixture uses this module).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ttbt5_otel._cache.redis_level import cluster_url_options
from ttbt5_otel._cli.redis_cluster import cluster_url as stack_cluster_url
from ttbt5_otel._cli.redis_cluster import (
    config_text,
    form_cluster,
    node_command,
    node_specs,
    write_configs,
)
from ttbt5_otel._exceptions import StackError

PASSWORD = 'a "quoted" pass\\word\nwith a newline'


def test_node_specs_place_each_node_in_its_own_directory(tmp_path: Path) -> None:
    nodes = node_specs(tmp_path, [(7001, 17001), (7002, 17002)])
    assert [(n.port, n.bus_port, n.directory) for n in nodes] == [
        (7001, 17001, tmp_path / "node-7001"),
        (7002, 17002, tmp_path / "node-7002"),
    ]
    assert nodes[0].config == tmp_path / "node-7001" / "redis.conf"
    assert nodes[0].address == ("127.0.0.1", 7001)
    with pytest.raises(StackError, match="must all differ"):
        node_specs(tmp_path, [(7001, 17001), (17001, 17002)])


def test_config_has_the_cluster_and_loopback_settings(tmp_path: Path) -> None:
    (node,) = node_specs(tmp_path, [(7001, 17001)])
    lines = config_text(node, "pw").splitlines()
    assert lines[0].startswith("#")
    directives = dict(line.split(" ", 1) for line in lines[1:])
    assert directives == {
        "bind": "127.0.0.1",
        "port": "7001",
        "protected-mode": "yes",
        "cluster-enabled": "yes",
        "cluster-port": "17001",
        "cluster-config-file": f'"{node.directory / "nodes.conf"}"',
        "cluster-node-timeout": "1000",
        "cluster-require-full-coverage": "no",
        "requirepass": '"pw"',
        "masterauth": '"pw"',
        "save": '""',
        "appendonly": "no",
        "repl-diskless-sync-delay": "0",
        "dir": f'"{node.directory}"',
        "set-proc-title": "no",
    }


def test_password_is_quoted_the_way_redis_reads_it(tmp_path: Path) -> None:
    """Quotes, backslashes and newlines cannot end the string or start a new directive."""
    (node,) = node_specs(tmp_path, [(7001, 17001)])
    text = config_text(node, PASSWORD)
    quoted = '"a \\"quoted\\" pass\\\\word\\nwith a newline"'
    assert f"requirepass {quoted}\n" in text
    assert f"masterauth {quoted}\n" in text
    assert len(text.splitlines()) == 16


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"requirepass": "x"}, "not allowed"),
        ({"dir": "/tmp"}, "not allowed"),
        ({"Bad Name": "x"}, "not allowed"),
        ({"maxmemory": "1gb\nrequirepass x"}, "spans lines"),
    ],
)
def test_extra_directives_cannot_override_or_inject(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    (node,) = node_specs(tmp_path, [(7001, 17001)])
    with pytest.raises(StackError, match=message):
        config_text(node, "pw", extra=extra)


def test_extra_directives_and_node_timeout(tmp_path: Path) -> None:
    (node,) = node_specs(tmp_path, [(7001, 17001)])
    text = config_text(node, "pw", node_timeout_ms=250, extra={"enable-debug-command": "local"})
    assert "cluster-node-timeout 250\n" in text
    assert text.endswith("enable-debug-command local\n")


def test_a_password_is_required(tmp_path: Path) -> None:
    (node,) = node_specs(tmp_path, [(7001, 17001)])
    with pytest.raises(StackError, match="password is required"):
        config_text(node, "")


def test_configs_are_private_files_in_private_directories(tmp_path: Path) -> None:
    nodes = node_specs(tmp_path / "cluster", [(7001, 17001), (7002, 17002)])
    (tmp_path / "cluster" / "node-7002").mkdir(parents=True, mode=0o755)
    (tmp_path / "cluster" / "node-7002").chmod(0o755)
    write_configs(nodes, PASSWORD)
    for node in nodes:
        assert stat.S_IMODE(node.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(node.config.stat().st_mode) == 0o600
        assert node.config.read_text() == config_text(node, PASSWORD)
    assert not list((tmp_path / "cluster").glob("*/*.tmp"))


def test_the_command_line_holds_no_secret(tmp_path: Path) -> None:
    (node,) = node_specs(tmp_path, [(7001, 17001)])
    assert node_command(node) == ["redis-server", str(node.config)]
    assert node_command(node, "/usr/bin/redis-server")[0] == "/usr/bin/redis-server"


def test_cluster_url_is_what_the_cache_level_reads(tmp_path: Path) -> None:
    nodes = node_specs(tmp_path, [(7001, 17001), (7002, 17002)])
    url = stack_cluster_url(nodes, PASSWORD)
    assert url.startswith("redis+cluster://:")
    assert PASSWORD not in url  # percent-encoded
    assert cluster_url_options(url) == {
        "startup_nodes": [("127.0.0.1", 7001), ("127.0.0.1", 7002)],
        "password": PASSWORD,
    }


@pytest.mark.parametrize(("count", "replicas"), [(0, 1), (5, 1), (4, 2), (3, -1)])
def test_impossible_layouts_are_refused_before_connecting(
    tmp_path: Path, count: int, replicas: int
) -> None:
    nodes = node_specs(tmp_path, [(7000 + n, 17000 + n) for n in range(count)])
    with pytest.raises(StackError, match="cannot be masters"):
        form_cluster(nodes, "pw", replicas=replicas, timeout=1)


def test_unreachable_nodes_fail_with_the_node_named(tmp_path: Path) -> None:
    """Nothing listens on port 1: a clear error naming the node, not a hang."""
    nodes = node_specs(tmp_path, [(1, 2)])
    with pytest.raises(StackError, match=r"127\.0\.0\.1:1: CLUSTER MYID failed") as error:
        form_cluster(nodes, "secret-pw", replicas=0, timeout=1)
    assert "secret-pw" not in str(error.value)
