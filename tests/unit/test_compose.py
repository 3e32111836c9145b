"""docker-compose.yml mounts files that exist and agrees with the configs on ports and hosts.

No Docker engine runs the file here, so it is checked against the configuration it mounts.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml

from tests.paths import REPO as ROOT

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
