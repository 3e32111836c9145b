"""docker-compose.yml mounts files that exist and agrees with the configs on ports and hosts.

No Docker engine runs the file here, so it is checked against the configuration it mounts.
"""

from __future__ import annotations

import re
import socket
import stat
import subprocess
import time
from urllib.parse import urlsplit

import psutil
import pytest
import redis
import yaml

from tests.loopback import free_port
from tests.paths import REPO as ROOT
from tests.redis_support import REDIS_SERVER

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def host_mounts():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                yield name, ROOT / source, target


def published(service: str) -> set[int]:
    return {int(port.split(":")[-1]) for port in SERVICES[service].get("ports", [])}


def collector_default_ports() -> dict[str, int]:
    text = (ROOT / "otel-collector.yaml").read_text()
    found = re.findall(r"TTBT5_COLLECTOR_(\w+)_PORT:-(\d+)", text)
    return {name: int(port) for name, port in found}


def test_every_mounted_file_exists():
    mounts = list(host_mounts())
    assert mounts
    for service, source, target in mounts:
        assert source.exists(), f"{service} mounts {source} ({target}), which does not exist"


def test_images_are_pinned():
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert ":" in image, f"{name}: image {image!r} has no tag"
        assert not image.endswith(":latest"), f"{name}: image {image!r} is not pinned"


def test_collector_image_matches_the_built_distribution():
    manifest = yaml.safe_load((ROOT / "collector" / "manifest.yaml").read_text())
    version = manifest["dist"]["version"]
    assert SERVICES["otel-collector"]["image"].endswith(f":{version}")


def test_collector_config_is_the_mounted_one_and_listens_beyond_loopback():
    collector = SERVICES["otel-collector"]
    [config_arg] = [a for a in collector["command"] if a.startswith("--config=")]
    mounted = {target for _, _, target in host_mounts()}
    assert config_arg.removeprefix("--config=") in mounted
    assert collector["environment"]["TTBT5_COLLECTOR_HOST"] == "0.0.0.0"


def test_collector_ports_match_its_config():
    ports = collector_default_ports()
    assert set(ports.values()) <= published("otel-collector")
    assert ports["OTLP_GRPC"] == 4317
    assert ports["PROMETHEUS"] == 8889


def test_prometheus_targets_are_reachable_in_the_shared_namespace():
    prometheus_config = yaml.safe_load((ROOT / "dashboards/prometheus/prometheus.yml").read_text())
    # The collector's ports, and Prometheus's own: it shares the collector's namespace.
    ports = {*collector_default_ports().values(), 9090}
    for job in prometheus_config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.rsplit(":", 1)
            assert host == "127.0.0.1"
            assert int(port) in ports, f"{job['job_name']} scrapes {target}"
    for name in ("prometheus", "alertmanager"):
        assert SERVICES[name]["network_mode"] == "service:otel-collector"
    [alertmanagers] = prometheus_config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert {9090, 9093} <= published("otel-collector")


def test_grafana_datasource_host_resolves_to_prometheus():
    datasources = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    url = urlsplit(datasources["datasources"][0]["url"])
    aliases = SERVICES["otel-collector"]["networks"]["default"]["aliases"]
    assert url.hostname in aliases
    assert url.port == 9090
    provider = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/dashboards/ttbt5.yml").read_text()
    )
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert dashboards_path in {target for _, _, target in host_mounts()}


def test_app_points_at_services_of_this_file():
    env = SERVICES["app"]["environment"]
    endpoint = urlsplit(env["TTBT5_OTLP_ENDPOINT"])
    assert endpoint.hostname in SERVICES
    assert endpoint.port == collector_default_ports()["OTLP_GRPC"]
    redis = urlsplit(env["TTBT5_CACHE_REDIS_URL"])
    assert redis.hostname in SERVICES
    assert redis.port in published("redis")
    assert "ttbt5-otel demo" in " ".join(SERVICES["app"]["command"])


def test_prometheus_has_no_lifecycle_api():
    """POST /-/reload and /-/quit would accept requests from any page in a local browser."""
    assert not [arg for arg in SERVICES["prometheus"]["command"] if "lifecycle" in arg]
    assert "docker compose kill -s SIGHUP prometheus" in (ROOT / "docker-compose.yml").read_text()


def test_redis_requires_a_password_that_the_app_gets_in_its_url():
    redis = SERVICES["redis"]
    # Required: compose refuses to start while REDIS_PASSWORD is unset or empty.
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    script = redis["command"][-1]
    assert "requirepass" in script
    assert "--requirepass" not in script, "the password would be on redis-server's command line"
    app_url = urlsplit(SERVICES["app"]["environment"]["TTBT5_CACHE_REDIS_URL"])
    assert app_url.password == "${REDIS_PASSWORD}"


def test_the_example_env_file_documents_the_password_without_giving_one():
    example = ROOT / "compose.env.example"
    settings = [
        line for line in example.read_text().splitlines() if line and not line.startswith("#")
    ]
    # Empty on purpose: copied as it is, compose still refuses to start.
    assert settings == ["REDIS_PASSWORD="]
    assert "compose.env.example" in (ROOT / "docker-compose.yml").read_text()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.mark.integration
def test_the_redis_start_script_sets_the_password(tmp_path):
    """The compose service's shell script, run against the local redis-server."""
    script = SERVICES["redis"]["command"][-1]
    conf = tmp_path / "redis.conf"
    port = free_port()
    local = (
        script.replace("$$", "$")  # compose's escape for a literal $
        .replace("/tmp/redis.conf", str(conf))
        .replace("exec redis-server", f"exec {REDIS_SERVER}")
    ) + f" --port {port} --bind 127.0.0.1 --dir {tmp_path}"
    password = "compose-test-Password_1"
    env = {"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": password}
    server = subprocess.Popen(["sh", "-c", local], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1)
        assert client.ping()
        client.close()
        with socket.create_connection(("127.0.0.1", port), timeout=2) as anonymous:
            anonymous.sendall(b"PING\r\n")
            assert anonymous.recv(256).startswith(b"-NOAUTH")
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert password not in " ".join(psutil.Process(server.pid).cmdline())
    finally:
        server.terminate()
        server.wait(timeout=10)
