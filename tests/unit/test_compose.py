"""docker-compose.yml mounts files that exist and agrees with the configs on ports and hosts.

No Docker engine runs the file here, so it is checked against the configuration it mounts.
"""

from __future__ import annotations

import re
import socket
import stat
import subprocess
import time
from collections.abc import Callable
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


def jaeger_default_ports() -> dict[str, int]:
    text = (ROOT / "collector" / "jaeger.yaml").read_text()
    found = re.findall(r"TTBT5_JAEGER_(\w+)_PORT:-(\d+)", text)
    return {name: int(port) for name, port in found}


def collector_settings() -> dict[str, str]:
    """Every ${env:NAME:-default} of otel-collector.yaml: NAME -> default."""
    text = (ROOT / "otel-collector.yaml").read_text()
    return dict(re.findall(r"\$\{env:(\w+):-([^}]*)\}", text))


def collector_setting_defaulting_to(predicate: Callable[[str], bool]) -> str:
    """The one collector setting whose default satisfies ``predicate``."""
    [name] = {name for name, default in collector_settings().items() if predicate(default)}
    return name


def stores_build_versions() -> dict[str, str]:
    """The pinned versions of collector/stores/build.sh (JAEGER_VERSION, ...)."""
    text = (ROOT / "collector" / "stores" / "build.sh").read_text()
    return dict(re.findall(r"^(\w+_VERSION)=(\S+)$", text, re.MULTILINE))


def flag(service: str, name: str) -> str:
    """The value of ``-name=value`` or ``--name=value`` in a service's command."""
    [value] = [
        arg.split("=", 1)[1]
        for arg in SERVICES[service]["command"]
        if arg.lstrip("-").split("=", 1)[0] == name
    ]
    return value


def image_tag(service: str) -> str:
    return SERVICES[service]["image"].rsplit(":", 1)[1]


def named_volume_mounts(service: str) -> dict[str, str]:
    """Named volumes of a service: volume -> target."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith("."):
            mounts[source] = target
    return mounts


# Jaeger v2 images are tagged with the v2 release; collector/stores/build.sh pins the Go
# module version, which is the v1 one (the CHANGELOG of the module names both:
# "v1.76.0 / v2.13.0"). A new pin in build.sh needs its pair here and in the image.
JAEGER_V2_RELEASE = {"v1.76.0": "2.13.0"}


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


def test_prometheus_stores_exemplars():
    """The latency panels show exemplars; Prometheus keeps them only with this flag."""
    assert "--enable-feature=exemplar-storage" in SERVICES["prometheus"]["command"]


def test_store_images_match_the_local_stack_build():
    versions = stores_build_versions()
    assert SERVICES["jaeger"]["image"].startswith("jaegertracing/jaeger:")
    assert image_tag("jaeger") == JAEGER_V2_RELEASE[versions["JAEGER_VERSION"]]
    assert SERVICES["victorialogs"]["image"].startswith("victoriametrics/victoria-logs:")
    # Since VictoriaLogs v1.25.0 its image tags are the release tags (no -victorialogs).
    assert image_tag("victorialogs") == versions["VICTORIALOGS_VERSION"]


def test_jaeger_runs_the_mounted_config_beyond_loopback():
    jaeger = SERVICES["jaeger"]
    [config_arg] = [a for a in jaeger["command"] if a.startswith("--config=")]
    mounts = {target: source for service, source, target in host_mounts() if service == "jaeger"}
    config = mounts[config_arg.removeprefix("--config=")]
    assert config == ROOT / "collector" / "jaeger.yaml"
    assert config.is_file()
    assert jaeger["environment"]["TTBT5_JAEGER_HOST"] == "0.0.0.0"
    text = (ROOT / "collector" / "jaeger.yaml").read_text()
    # Every listener binds the configurable host (so 0.0.0.0 above reaches all of them).
    endpoints = re.findall(r"^\s*(?:endpoint|host): (.*)$", text, re.MULTILINE)
    assert endpoints
    assert all(e.startswith("${env:TTBT5_JAEGER_HOST:-127.0.0.1}") for e in endpoints), endpoints


def test_jaeger_ports_match_its_config():
    ports = jaeger_default_ports()
    assert published("jaeger") <= set(ports.values())
    assert ports["QUERY"] in published("jaeger"), "the query API and UI"
    for port in SERVICES["jaeger"]["ports"]:
        assert port.startswith("127.0.0.1:"), port


def test_collector_sends_traces_to_jaeger():
    grpc_port = jaeger_default_ports()["OTLP_GRPC"]
    name = collector_setting_defaulting_to(lambda default: default == f"127.0.0.1:{grpc_port}")
    endpoint = SERVICES["otel-collector"]["environment"][name]
    assert endpoint == f"jaeger:{grpc_port}"


def test_collector_sends_logs_to_victorialogs():
    port = int(flag("victorialogs", "httpListenAddr").rsplit(":", 1)[1])
    name = collector_setting_defaulting_to(
        lambda default: default == f"http://127.0.0.1:{port}/insert/opentelemetry"
    )
    endpoint = urlsplit(SERVICES["otel-collector"]["environment"][name])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "victorialogs", port)
    # The collector's otlphttp exporter appends /v1/logs: VictoriaLogs' OTLP path.
    assert endpoint.path == "/insert/opentelemetry"
    assert published("victorialogs") == {port}
    for published_port in SERVICES["victorialogs"]["ports"]:
        assert published_port.startswith("127.0.0.1:"), published_port


def test_collector_queue_is_on_a_volume_its_user_owns():
    settings = collector_settings()
    assert "TTBT5_COLLECTOR_QUEUE_DIR" in settings
    queue_dir = SERVICES["otel-collector"]["environment"]["TTBT5_COLLECTOR_QUEUE_DIR"]
    collector_volumes = named_volume_mounts("otel-collector")
    [volume] = [name for name, target in collector_volumes.items() if target == queue_dir]
    assert volume in COMPOSE["volumes"]
    # A new volume is owned by root; the one-shot service hands it to the collector's user
    # before the collector starts.
    owner = SERVICES["collector-queue-owner"]
    assert named_volume_mounts("collector-queue-owner") == {volume: queue_dir}
    assert owner["command"] == ["chown", "10001:10001", queue_dir]
    depends = SERVICES["otel-collector"]["depends_on"]["collector-queue-owner"]
    assert depends == {"condition": "service_completed_successfully"}


def test_victorialogs_keeps_its_data_on_a_volume():
    data = flag("victorialogs", "storageDataPath")
    assert named_volume_mounts("victorialogs") == {"victorialogs-data": data}
    assert "victorialogs-data" in COMPOSE["volumes"]


def test_grafana_datasources_point_at_the_stores():
    directory = ROOT / "dashboards/grafana/provisioning/datasources"
    urls = {
        datasource["type"]: urlsplit(datasource["url"])
        for path in directory.glob("*.yml")
        for datasource in yaml.safe_load(path.read_text())["datasources"]
    }
    assert (urls["jaeger"].hostname, urls["jaeger"].port) == (
        "jaeger",
        jaeger_default_ports()["QUERY"],
    )
    victorialogs = urls["victoriametrics-logs-datasource"]
    assert (victorialogs.hostname, victorialogs.port) == (
        "victorialogs",
        int(flag("victorialogs", "httpListenAddr").rsplit(":", 1)[1]),
    )
    assert {"jaeger", "victorialogs"} <= set(SERVICES["grafana"]["depends_on"])


def test_grafana_installs_the_victorialogs_plugin_and_can_link_traces_to_it():
    grafana = SERVICES["grafana"]
    # Trace to logs with a VictoriaLogs target needs Grafana 12.2 or later.
    version = tuple(int(part) for part in image_tag("grafana").split("."))
    assert version >= (12, 2, 0), version
    plugins = grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    [plugin] = [p for p in plugins if p.startswith("victoriametrics-logs-datasource@")]
    assert re.fullmatch(r"victoriametrics-logs-datasource@\d+\.\d+\.\d+", plugin), plugin
    assert grafana["environment"]["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"] == "false"


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
