"""The Kubernetes manifests in deploy/kubernetes: schema, wiring and the collector configs.

Every document of every manifest, and every ConfigMap that kustomization.yaml generates
from config/, is validated offline against the OpenAPI-derived JSON schemas of Kubernetes
``KUBERNETES_VERSION`` that the kubernetes-validate package bundles, in their strict form:
a field the API does not know is an error, as the API server's strict field validation
would make it.

Then what a schema cannot see: the agents' DNS resolver names the gateways' headless
Service and its port; Alertmanager's peers are its StatefulSet's pods; both Prometheus
replicas alert to every Alertmanager without their replica label, and the Thanos query
merges them on that label; Services, probes and PodDisruptionBudgets find what they name;
every container is locked down; the copies in config/ equal the repository's files; and
the collector configs, taken out of the ConfigMaps as the pods' arguments name them, pass
the built distribution's own ``validate`` with the environment the pods set.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.paths import REPO

KUBERNETES_VERSION = "1.33.0"
NAMESPACE = "ttbt5-observability"
DEPLOY = REPO / "deploy" / "kubernetes"
REPO_RULES = REPO / "dashboards" / "prometheus" / "rules"
# Files in config/ that are copies: kustomize reads nothing outside deploy/kubernetes.
COPIES = {
    "config/otel-collector.yaml": REPO / "otel-collector.yaml",
    "config/gateway.yaml": REPO / "collector" / "gateway.yaml",
    "config/jaeger.yaml": REPO / "collector" / "jaeger.yaml",
    **{f"config/rules/{rule.name}": rule for rule in sorted(REPO_RULES.glob("*.yml"))},
}
# The one in-cluster name the manifests use without deploying it (config/alertmanager.yml).
PROVIDED_BY_THE_USER = {"ttbt5-alert-webhook"}
WEBHOOK_URL = "http://ttbt5-alert-webhook.ttbt5-observability.svc.cluster.local:9099/alerts"
# client-side `kubectl apply` keeps the whole object in an annotation of at most this size.
ANNOTATION_LIMIT = 262_144
_WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet"}
_CONFIG_VARIABLE = re.compile(r"^TTBT5_")
_IN_CLUSTER_NAME = re.compile(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local")


# --- loading --------------------------------------------------------------------------


def _yaml(text: str) -> Any:
    return yaml.safe_load(text)


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = _yaml((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    return loaded


def _manifest_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every document of every resource kustomization lists."""
    found = []
    for name in _kustomization()["resources"]:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        found += [(name, doc) for doc in yaml.safe_load_all(text) if doc is not None]
    return found


def _generator_files(entry: dict[str, Any]) -> dict[str, str]:
    """ConfigMap key -> path (relative to DEPLOY) of a configMapGenerator entry."""
    files = {}
    for item in entry["files"]:
        key, _, path = item.rpartition("=")
        files[key or Path(path).name] = path
    return files


def _generated_config_maps() -> dict[str, dict[str, str]]:
    """ConfigMap name (without kustomize's hash suffix) -> key -> content."""
    return {
        entry["name"]: {
            key: (DEPLOY / path).read_text(encoding="utf-8")
            for key, path in _generator_files(entry).items()
        }
        for entry in _kustomization()["configMapGenerator"]
    }


def _config_map_document(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": _kustomization()["namespace"]},
        "data": data,
    }


def _all_documents() -> list[dict[str, Any]]:
    generated = [_config_map_document(n, d) for n, d in _generated_config_maps().items()]
    return [doc for _, doc in _manifest_documents()] + generated


def _find(kind: str, name: str) -> dict[str, Any]:
    matches = [
        doc
        for _, doc in _manifest_documents()
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _manifest_documents() if doc["kind"] == kind]


def _workloads() -> list[dict[str, Any]]:
    return [doc for _, doc in _manifest_documents() if doc["kind"] in _WORKLOADS]


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in _pod_spec(workload)["containers"] if c["name"] == name]
    return found


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment (valueFrom entries get a stand-in value)."""
    return {
        var["name"]: var["value"] if "value" in var else f"<{var['name']} from the pod>"
        for var in container.get("env", [])
    }


def _flag(container: dict[str, Any], name: str) -> list[str]:
    """Values of ``--name=value`` arguments, in order."""
    prefix = f"--{name}="
    return [arg[len(prefix) :] for arg in container.get("args", []) if arg.startswith(prefix)]


def _port(container: dict[str, Any], name: str) -> int:
    (found,) = [p["containerPort"] for p in container.get("ports", []) if p["name"] == name]
    return int(found)


def _selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = _pod_labels(workload)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _selected_workloads(selector: dict[str, str]) -> list[dict[str, Any]]:
    return [w for w in _workloads() if _selects(selector, w)]


def _mounted_files(workload: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Path in the container -> content, for every file of a mounted generated ConfigMap."""
    generated = _generated_config_maps()
    volumes = {v["name"]: v for v in _pod_spec(workload).get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        # Volumes of a volumeClaimTemplate are not in the pod spec.
        config_map = volumes.get(mount["name"], {}).get("configMap")
        if config_map is None:
            continue
        for key, text in generated[config_map["name"]].items():
            files[f"{mount['mountPath'].rstrip('/')}/{key}"] = text
    return files


def _quantity_mib(quantity: str) -> float:
    """MiB in a Kubernetes quantity (512Mi) or a Go memory limit (320MiB)."""
    units = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise AssertionError(f"unexpected memory quantity {quantity}")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _doc_id(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# --- schema ---------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    """No manifest in the folder is left out of `kubectl apply -k`, none listed is missing."""
    listed = set(_kustomization()["resources"])
    present = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("doc", _all_documents(), ids=_doc_id)
def test_every_document_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    """Strict schema of the pinned version: unknown fields, wrong types, unknown kinds fail."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{_doc_id(doc)}: {where}: {error.message}", pytrace=False)
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(error.message, pytrace=False)


def test_the_schema_check_refuses_unknown_fields_and_wrong_types() -> None:
    """The check above would catch a typo: strict mode is really in force."""
    gateway = _find("Deployment", "ttbt5-gateway")
    typo = copy.deepcopy(gateway)
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    wrong_type = copy.deepcopy(gateway)
    wrong_type["spec"]["replicas"] = "two"
    for bad in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_every_resource_is_in_the_namespace() -> None:
    """Namespaced objects name the namespace themselves too (`kubectl apply -f file` works)."""
    assert _kustomization()["namespace"] == NAMESPACE
    assert _find("Namespace", NAMESPACE)
    for _, doc in _manifest_documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, _doc_id(doc)


def test_generated_config_maps_fit_client_side_apply() -> None:
    """`kubectl apply` (client side) copies each object into an annotation of 256 KiB."""
    for name, data in _generated_config_maps().items():
        size = len(json.dumps(_config_map_document(name, data)))
        assert size < ANNOTATION_LIMIT * 0.9, f"{name}: {size} bytes, use --server-side"


@pytest.mark.parametrize("copied", sorted(COPIES), ids=str)
def test_config_copies_equal_the_repository_files(copied: str) -> None:
    """config/ holds copies; refresh one with `cp <original> deploy/kubernetes/<copy>`."""
    original = COPIES[copied]
    assert (DEPLOY / copied).is_file(), f"deploy/kubernetes/{copied} is missing"
    assert (DEPLOY / copied).read_bytes() == original.read_bytes(), (
        f"deploy/kubernetes/{copied} differs from {original.relative_to(REPO)}"
    )


def test_the_rules_config_map_holds_every_rule_file() -> None:
    """A rule file added to dashboards/prometheus/rules is not forgotten here."""
    rules = _generated_config_maps()["ttbt5-prometheus-rules"]
    assert set(rules) == {rule.name for rule in REPO_RULES.glob("*.yml")}


def test_every_config_map_a_pod_mounts_is_generated() -> None:
    generated = _generated_config_maps()
    for workload in _workloads():
        for volume in _pod_spec(workload).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated, _doc_id(workload)


# --- wiring ---------------------------------------------------------------------------


def test_services_select_pods_and_name_their_ports() -> None:
    """Every Service selects one workload's pods; its target ports are their named ports."""
    for service in _of_kind("Service"):
        (workload,) = _selected_workloads(service["spec"]["selector"])
        ports = {p["name"]: p for c in _containers(workload) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = ports[port["targetPort"]]
            assert target["protocol"] == port["protocol"], _doc_id(service)


def test_disruption_budgets_select_a_replicated_workload() -> None:
    for budget in _of_kind("PodDisruptionBudget"):
        (workload,) = _selected_workloads(budget["spec"]["selector"]["matchLabels"])
        replicas = workload["spec"]["replicas"]
        assert replicas >= 2, _doc_id(budget)
        assert budget["spec"].get("minAvailable", 1) < replicas
        assert budget["spec"].get("maxUnavailable", 1) < replicas


def test_probes_use_ports_the_container_declares() -> None:
    for workload in _workloads():
        for container in _containers(workload):
            names = {p["name"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                port = container[probe]["httpGet"]["port"]
                assert port in names, f"{_doc_id(workload)} {container['name']} {probe}"


def test_in_cluster_names_are_services_of_the_namespace() -> None:
    """Every <service>.<namespace>.svc.cluster.local in manifests and configs exists."""
    services = {s["metadata"]["name"] for s in _of_kind("Service")} | PROVIDED_BY_THE_USER
    texts = [s for doc in _all_documents() for s in _strings(doc)]
    names = {m.groups() for text in texts for m in _IN_CLUSTER_NAME.finditer(text)}
    assert names
    for service, namespace in names:
        assert namespace == NAMESPACE, service
        assert service in services, f"{service}.{namespace}: no such Service"


def test_agent_overlay_resolves_the_gateways_headless_service() -> None:
    """The agents' load-balancing exporters look up the gateways' headless Service in DNS."""
    gateway = _find("Deployment", "ttbt5-gateway")
    (headless,) = [
        s
        for s in _of_kind("Service")
        if _selects(s["spec"]["selector"], gateway) and s["spec"].get("clusterIP") == "None"
    ]
    (service_port,) = [p for p in headless["spec"]["ports"] if p["name"] == "otlp-grpc"]
    container = _container(gateway, "otel-collector")
    assert _env(container)["TTBT5_GATEWAY_OTLP_GRPC_PORT"] == str(service_port["port"])
    assert _port(container, service_port["targetPort"]) == service_port["port"]

    overlay = _yaml(_generated_config_maps()["ttbt5-agent-config"]["agent-to-gateways.yaml"])
    balancers = {k: v for k, v in overlay["exporters"].items() if k.startswith("load_balancing")}
    assert set(balancers) == {"load_balancing/traces", "load_balancing/logs"}
    hostname = f"{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    for exporter in balancers.values():
        assert list(exporter["resolver"]) == ["dns"], "exactly one resolver, DNS"
        dns = exporter["resolver"]["dns"]
        assert dns["hostname"] == hostname
        assert dns["port"] == str(service_port["port"])


def test_agent_overlay_differs_from_the_repository_overlay_in_the_resolver_only() -> None:
    ours = _yaml(_generated_config_maps()["ttbt5-agent-config"]["agent-to-gateways.yaml"])
    theirs = _yaml((REPO / "collector" / "agent-to-gateways.yaml").read_text(encoding="utf-8"))
    for config in (ours, theirs):
        for exporter in config["exporters"].values():
            del exporter["resolver"]
    assert ours == theirs


def test_agents_run_the_base_config_then_the_kubernetes_overlay() -> None:
    agent = _find("DaemonSet", "ttbt5-agent")
    container = _container(agent, "otel-collector")
    configs = _flag(container, "config")
    assert [Path(c).name for c in configs] == ["otel-collector.yaml", "agent-to-gateways.yaml"]
    assert set(configs) <= set(_mounted_files(agent, container))


def test_applications_reach_the_agent_of_their_own_node() -> None:
    """Node-local Service; never two agents on a node, even during a rollout.

    Two agents would both expose span metrics of the same application instance under the
    same labels (the instance's, by honor_labels), which Prometheus would merge.
    """
    rolling = _find("DaemonSet", "ttbt5-agent")["spec"]["updateStrategy"]["rollingUpdate"]
    assert rolling["maxSurge"] == 0
    service = _find("Service", "ttbt5-agent")
    assert service["spec"]["internalTrafficPolicy"] == "Local"
    assert _selected_workloads(service["spec"]["selector"]) == [_find("DaemonSet", "ttbt5-agent")]
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318}


def test_gateways_are_replicated_behind_a_headless_service() -> None:
    gateway = _find("Deployment", "ttbt5-gateway")
    assert gateway["spec"]["replicas"] >= 2
    headless = _find("Service", "ttbt5-gateway-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert _selects(headless["spec"]["selector"], gateway)
    container = _container(gateway, "otel-collector")
    readiness = container["readinessProbe"]["httpGet"]["port"]
    assert str(_port(container, readiness)) == _env(container)["TTBT5_GATEWAY_HEALTH_PORT"]
    assert _find("PodDisruptionBudget", "ttbt5-gateway")


def test_alertmanager_peers_are_the_statefulset_pods() -> None:
    statefulset = _find("StatefulSet", "ttbt5-alertmanager")
    service = _find("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    container = _container(statefulset, "alertmanager")
    (listen,) = _flag(container, "cluster.listen-address")
    assert listen == "0.0.0.0:9094"
    replicas = statefulset["spec"]["replicas"]
    assert replicas == 3
    pods = [f"{statefulset['metadata']['name']}-{i}" for i in range(replicas)]
    service_name = service["metadata"]["name"]
    assert _flag(container, "cluster.peer") == [f"{pod}.{service_name}:9094" for pod in pods]
    assert _port(container, "cluster-tcp") == _port(container, "cluster-udp") == 9094


def test_alertmanager_config_is_the_repository_routing() -> None:
    """Same routes, timings and inhibitions as dashboards/alertmanager; only the URL moves."""
    ours = _generated_config_maps()["ttbt5-alertmanager-config"]["alertmanager.yml"]
    theirs = (REPO / "dashboards" / "alertmanager" / "alertmanager.yml").read_text()
    assert _yaml(ours) == _yaml(theirs.replace("http://127.0.0.1:9099/alerts", WEBHOOK_URL))


def _prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = _yaml(
        _generated_config_maps()["ttbt5-prometheus-config"]["prometheus.yml"]
    )
    return loaded


def test_prometheus_replicas_differ_in_their_replica_label_only() -> None:
    statefulset = _find("StatefulSet", "ttbt5-prometheus")
    assert statefulset["spec"]["replicas"] == 2
    container = _container(statefulset, "prometheus")
    assert "expand-external-labels" in _flag(container, "enable-feature")
    (pod_name,) = [v for v in container["env"] if v["name"] == "POD_NAME"]
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert _prometheus_config()["global"]["external_labels"] == {"replica": "${POD_NAME}"}


def test_prometheus_alerts_every_alertmanager_without_the_replica_label() -> None:
    config = _prometheus_config()
    (label,) = config["global"]["external_labels"]
    assert {"action": "labeldrop", "regex": label} in config["alerting"]["alert_relabel_configs"]

    statefulset = _find("StatefulSet", "ttbt5-alertmanager")
    service = statefulset["spec"]["serviceName"]
    web = _port(_container(statefulset, "alertmanager"), "web")
    expected = [
        f"{statefulset['metadata']['name']}-{i}.{service}.{NAMESPACE}.svc.cluster.local:{web}"
        for i in range(statefulset["spec"]["replicas"])
    ]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (targets,) = alertmanagers["static_configs"]
    assert targets["targets"] == expected


def test_prometheus_keeps_the_repository_jobs_and_limits() -> None:
    ours = {job["job_name"]: job for job in _prometheus_config()["scrape_configs"]}
    repo = _yaml((REPO / "dashboards" / "prometheus" / "prometheus.yml").read_text())
    theirs = {job["job_name"]: job for job in repo["scrape_configs"]}
    assert set(ours) == set(theirs)
    limits = ("honor_labels", "sample_limit", "label_limit", "label_name_length_limit")
    for name, job in theirs.items():
        for key in (*limits, "label_value_length_limit"):
            assert ours[name].get(key) == job.get(key), f"{name}: {key}"
    assert _prometheus_config()["global"]["scrape_interval"] == repo["global"]["scrape_interval"]


def _kept(job: dict[str, Any], source: str) -> str:
    (keep,) = [
        r
        for r in job["relabel_configs"]
        if r.get("action") == "keep" and r["source_labels"] == [source]
    ]
    regex: str = keep["regex"]
    return regex


def test_prometheus_scrapes_the_agents_by_pod_label() -> None:
    (job,) = [
        j for j in _prometheus_config()["scrape_configs"] if j["job_name"] == "otel-collector"
    ]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}]
    agent = _find("DaemonSet", "ttbt5-agent")
    label = "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    assert _kept(job, label) == _pod_labels(agent)["app.kubernetes.io/name"]
    port = _kept(job, "__meta_kubernetes_pod_container_port_name")
    # The agent's Prometheus exporter port (otel-collector.yaml's default).
    assert _port(_container(agent, "otel-collector"), port) == 8889


def test_prometheus_reads_the_rules_where_they_are_mounted() -> None:
    statefulset = _find("StatefulSet", "ttbt5-prometheus")
    container = _container(statefulset, "prometheus")
    files = _mounted_files(statefulset, container)
    (config_file,) = _flag(container, "config.file")
    assert config_file in files
    (pattern,) = _prometheus_config()["rule_files"]
    rule_dir = pattern.rpartition("/")[0]
    rules = _generated_config_maps()["ttbt5-prometheus-rules"]
    assert {f"{rule_dir}/{name}" for name in rules} <= set(files)


def test_thanos_query_merges_the_prometheus_replicas() -> None:
    """The query finds the sidecars by SRV and deduplicates on the external label."""
    (label,) = _prometheus_config()["global"]["external_labels"]
    query = _container(_find("Deployment", "ttbt5-thanos-query"), "thanos-query")
    assert _flag(query, "query.replica-label") == [label]

    statefulset = _find("StatefulSet", "ttbt5-prometheus")
    service = _find("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    (grpc,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    sidecar = _container(statefulset, "thanos-sidecar")
    assert _port(sidecar, grpc["targetPort"]) == grpc["port"]
    srv = f"dnssrv+_grpc._tcp.{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    assert _flag(query, "endpoint") == [srv]


def test_images_are_pinned_to_the_versions_the_repository_uses() -> None:
    compose = _yaml((REPO / "docker-compose.yml").read_text())["services"]
    manifest = _yaml((REPO / "collector" / "manifest.yaml").read_text())
    thanos = re.search(
        r"^THANOS_VERSION=(\S+)$",
        (REPO / "collector" / "thanos" / "build.sh").read_text(),
        re.MULTILINE,
    )
    assert thanos is not None
    expected = {
        ("ttbt5-agent", "otel-collector"): compose["otel-collector"]["image"],
        ("ttbt5-gateway", "otel-collector"): compose["otel-collector"]["image"],
        ("ttbt5-prometheus", "prometheus"): compose["prometheus"]["image"],
        ("ttbt5-prometheus", "thanos-sidecar"): f"quay.io/thanos/thanos:{thanos.group(1)}",
        ("ttbt5-thanos-query", "thanos-query"): f"quay.io/thanos/thanos:{thanos.group(1)}",
        ("ttbt5-alertmanager", "alertmanager"): compose["alertmanager"]["image"],
        ("ttbt5-jaeger", "jaeger"): compose["jaeger"]["image"],
        ("ttbt5-victorialogs", "victorialogs"): compose["victorialogs"]["image"],
    }
    found = {
        (w["metadata"]["name"], c["name"]): c["image"] for w in _workloads() for c in _containers(w)
    }
    assert found == expected
    assert compose["otel-collector"]["image"].endswith(f":{manifest['dist']['version']}")


def test_every_container_is_locked_down() -> None:
    """Restricted Pod Security: non-root, no escalation, no capabilities, read-only root."""
    for workload in _workloads():
        pod = _pod_spec(workload)
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, _doc_id(workload)
        assert pod_security["runAsUser"] != 0
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "hostNetwork" not in pod
        assert "hostPID" not in pod
        for container in _containers(workload):
            where = f"{_doc_id(workload)} {container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security.get("runAsUser", pod_security["runAsUser"]) != 0, where
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, where
            assert "readinessProbe" in container, where
            assert "livenessProbe" in container, where
            assert all("hostPort" not in port for port in container.get("ports", [])), where
        volumes = pod.get("volumes", [])
        assert all("hostPath" not in volume for volume in volumes), _doc_id(workload)


def test_only_prometheus_holds_an_api_token() -> None:
    """Pods get no service account token, except Prometheus for its pod discovery."""
    for workload in _workloads():
        mounted = _pod_spec(workload).get("automountServiceAccountToken", True)
        assert mounted is (workload["metadata"]["name"] == "ttbt5-prometheus"), _doc_id(workload)
    (binding,) = _of_kind("RoleBinding")
    assert binding["subjects"][0]["name"] == "ttbt5-prometheus"
    (role,) = _of_kind("Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]


def test_no_secrets_in_the_manifests() -> None:
    assert not [doc for doc in _all_documents() if doc["kind"] == "Secret"]
    secretish = re.compile(r"(?i)(password|passwd|secret|token|api_?key|credential)")
    for workload in _workloads():
        for container in _containers(workload):
            for var in container.get("env", []):
                assert not ("value" in var and secretish.search(var["name"])), var["name"]


def test_collector_memory_limits_sit_below_the_container_limits() -> None:
    """The memory limiter refuses data before the kernel kills the container."""
    for name, kind in (("ttbt5-agent", "DaemonSet"), ("ttbt5-gateway", "Deployment")):
        container = _container(_find(kind, name), "otel-collector")
        env = _env(container)
        limit = _quantity_mib(container["resources"]["limits"]["memory"])
        limiter = float(env["TTBT5_COLLECTOR_MEMORY_LIMIT_MIB"])
        spike = float(env["TTBT5_COLLECTOR_MEMORY_SPIKE_MIB"])
        go_limit = _quantity_mib(env["GOMEMLIMIT"])
        assert go_limit <= limiter - spike < limiter < limit, name


# --- the configs, run through their tools ---------------------------------------------


def _binary() -> Path:
    configured = os.environ.get("TTBT5_COLLECTOR_BIN")
    path = Path(configured) if configured else REPO / "collector" / "_build" / "ttbt5-otelcol"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"collector binary not found at {path}: run `bash collector/build.sh`")
    return path


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found on PATH: install the Debian package {package}")
    return found


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=120, check=False, cwd=REPO
    )


def _collector_argv(workload: dict[str, Any], tmp_path: Path) -> list[str]:
    """``validate`` with the pod's --config files, written out of their ConfigMap."""
    container = _container(workload, "otel-collector")
    files = _mounted_files(workload, container)
    argv = [str(_binary()), "validate"]
    for path in _flag(container, "config"):
        local = tmp_path / Path(path).name
        local.write_text(files[path], encoding="utf-8")
        argv += ["--config", str(local)]
    return argv


def _pod_env(workload: dict[str, Any]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not _CONFIG_VARIABLE.match(k)}
    return {**clean, **_env(_container(workload, "otel-collector"))}


@pytest.mark.parametrize(
    ("kind", "name"), [("DaemonSet", "ttbt5-agent"), ("Deployment", "ttbt5-gateway")]
)
def test_collector_configs_pass_the_distributions_validate(
    kind: str, name: str, tmp_path: Path
) -> None:
    """The agent (base config + DNS overlay) and gateway configs, as the pods run them."""
    workload = _find(kind, name)
    result = _run(_collector_argv(workload, tmp_path), _pod_env(workload))
    assert result.returncode == 0, result.stderr


def test_the_dns_overlay_cannot_be_stacked_on_the_static_one(tmp_path: Path) -> None:
    """Why the ConfigMap replaces collector/agent-to-gateways.yaml instead of adding to it."""
    agent = _find("DaemonSet", "ttbt5-agent")
    argv = _collector_argv(agent, tmp_path)
    static = str(REPO / "collector" / "agent-to-gateways.yaml")
    argv[-2:-2] = ["--config", static]
    result = _run(argv, _pod_env(agent))
    assert result.returncode != 0
    assert "only one resolver should be specified" in result.stderr


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    """The config and its rules, with rule_files pointed at a copy of the mounted files.

    Debian's promtool is built without Kubernetes service discovery: each job's
    kubernetes_sd_configs is swapped for a static target, so promtool checks everything
    else (relabelling, alerting, limits, rules); the discovery blocks themselves are
    checked by test_prometheus_scrapes_the_agents_by_pod_label and by shape.
    """
    config = _prometheus_config()
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [
            {"role": "pod", "namespaces": {"names": [NAMESPACE]}}
        ]
        job["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for name, text in _generated_config_maps()["ttbt5-prometheus-rules"].items():
        (rules_dir / name).write_text(text, encoding="utf-8")
    config["rule_files"] = [str(rules_dir / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = _run([_tool("promtool", "prometheus"), "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(list(rules_dir.iterdir()))} rule files found" in result.stdout


def test_amtool_accepts_the_alertmanager_config(tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(
        _generated_config_maps()["ttbt5-alertmanager-config"]["alertmanager.yml"], encoding="utf-8"
    )
    result = _run([_tool("amtool", "prometheus-alertmanager"), "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomize_renders_what_the_schema_accepts() -> None:
    """kubectl's own kustomize builds the folder (no file outside it) into valid objects."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH (the checks above do not need it)")
    result = _run([kubectl, "kustomize", str(DEPLOY)])
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    assert len(rendered) == len(_all_documents())
    for doc in rendered:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    # Workloads name the hashed ConfigMaps kustomize generated.
    config_maps = {d["metadata"]["name"] for d in rendered if d["kind"] == "ConfigMap"}
    for doc in rendered:
        if doc["kind"] in _WORKLOADS:
            for volume in doc["spec"]["template"]["spec"].get("volumes", []):
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps
