"""Grafana's provisioned datasources link metrics, traces and logs to each other.

Prometheus exemplars open their trace in Jaeger, a Jaeger span opens the log records of
its trace in VictoriaLogs, and a VictoriaLogs record's trace_id opens the trace in Jaeger.
The links name datasources by uid, so each must point at a uid that is provisioned with
the right type. Values are read as Grafana reads them: Grafana expands environment
variables in provisioning files, so a link variable such as ``${__trace.traceId}`` has to
be written ``$${__trace.traceId}``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards._support import GRAFANA_DIR, load_script

generate = load_script(GRAFANA_DIR / "generate.py", "ttbt5_grafana_generate")

DATASOURCES_DIR = GRAFANA_DIR / "provisioning" / "datasources"

# Go's os.ExpandEnv, which Grafana runs on every string of a provisioning file between
# the "$$" escapes (pkg/services/provisioning/values): ${NAME}, $NAME and $ plus one
# special character are replaced by the variable's value (no variable is set here).
_ENV_REFERENCE = re.compile(r"\$(?:\{[^}]*\}|[A-Za-z0-9_]+|[*#$@!?-])")


def grafana_value(raw: str) -> str:
    """A provisioned string as Grafana uses it, with no environment variable set."""
    return "$".join(_ENV_REFERENCE.sub("", part) for part in raw.split("$$"))


def _interpolated(value: Any) -> Any:
    if isinstance(value, str):
        return grafana_value(value)
    if isinstance(value, list):
        return [_interpolated(item) for item in value]
    if isinstance(value, dict):
        return {key: _interpolated(item) for key, item in value.items()}
    return value


def _raw_datasources() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, datasource)
        for path in sorted(DATASOURCES_DIR.glob("*.yml"))
        for datasource in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    ]


def provisioned() -> dict[str, dict[str, Any]]:
    """uid -> datasource, as Grafana provisions them."""
    return {datasource["uid"]: _interpolated(datasource) for _, datasource in _raw_datasources()}


def _of_type(uid: str, kind: str) -> dict[str, Any]:
    datasources = provisioned()
    assert uid in datasources, f"no datasource with uid {uid!r} is provisioned"
    assert datasources[uid]["type"] == kind, (uid, datasources[uid]["type"])
    return datasources[uid]


def _single(kind: str) -> dict[str, Any]:
    [datasource] = [ds for ds in provisioned().values() if ds["type"] == kind]
    return datasource


# --- the set


def test_the_three_datasources_with_fixed_uids() -> None:
    raw = _raw_datasources()
    uids = [datasource["uid"] for _, datasource in raw]
    assert len(uids) == len(set(uids)), uids
    assert {uid: ds["type"] for uid, ds in provisioned().items()} == {
        generate.DATASOURCE["uid"]: "prometheus",
        "jaeger": "jaeger",
        "victorialogs": "victoriametrics-logs-datasource",
    }
    for path, datasource in raw:
        where = (path.name, datasource["uid"])
        assert datasource["access"] == "proxy", where
        assert datasource["editable"] is False, where
    assert [ds["uid"] for ds in provisioned().values() if ds.get("isDefault")] == [
        generate.DATASOURCE["uid"]
    ]


def test_link_variables_survive_grafana_environment_expansion() -> None:
    """A Grafana variable left as ${...} would be expanded to nothing at provisioning."""
    for path in sorted(DATASOURCES_DIR.glob("*.yml")):
        raw = path.read_text(encoding="utf-8")
        settings = "\n".join(line for line in raw.splitlines() if not line.lstrip().startswith("#"))
        unescaped = re.findall(r"(?<!\$)\$\{[^}]*\}", settings)
        assert not unescaped, (path.name, unescaped)


def test_grafana_value_emulation() -> None:
    assert grafana_value("$${__value.raw}") == "${__value.raw}"
    assert grafana_value("${__value.raw}") == ""
    assert grafana_value("a $HOME b") == "a  b"
    assert grafana_value("cost $$5") == "cost $5"


# --- metrics -> traces


def test_prometheus_exemplars_open_the_trace_in_jaeger() -> None:
    prometheus = _of_type(generate.DATASOURCE["uid"], "prometheus")
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    # The exemplar label of the collector's Prometheus exporter is trace_id.
    [destination] = [d for d in destinations if d["name"] == "trace_id"]
    _of_type(destination["datasourceUid"], "jaeger")
    assert "url" not in destination, "an internal link needs no URL"


# --- traces -> logs


def test_jaeger_spans_open_the_logs_of_their_trace_in_victorialogs() -> None:
    jaeger = _single("jaeger")
    to_logs = jaeger["jsonData"]["tracesToLogsV2"]
    _of_type(to_logs["datasourceUid"], "victoriametrics-logs-datasource")
    # A custom LogsQL query: the built-in tag/ID filters only know other query languages.
    assert to_logs["customQuery"] is True
    assert to_logs["query"] == 'trace_id:="${__trace.traceId}"'
    # Wider than the span, so the records of the trace's other spans are found too.
    assert to_logs["spanStartTimeShift"].startswith("-")
    assert not to_logs["spanEndTimeShift"].startswith("-")
    assert "tracesToLogs" not in jaeger["jsonData"], "the v1 settings would be migrated over v2"


# --- logs -> traces


def test_victorialogs_trace_ids_open_the_trace_in_jaeger() -> None:
    victorialogs = _single("victoriametrics-logs-datasource")
    [field] = [f for f in victorialogs["jsonData"]["derivedFields"] if f["name"] == "trace_id"]
    _of_type(field["datasourceUid"], "jaeger")
    # The value of the log field trace_id (VictoriaLogs' name for an OTLP record's
    # trace id), handed to Jaeger as the trace id to open.
    assert field["matcherType"] == "label"
    assert field["matcherRegex"] == "trace_id"
    assert field["url"] == "${__value.raw}"


@pytest.mark.parametrize(
    ("kind", "host", "port"),
    [("jaeger", "jaeger", 16686), ("victoriametrics-logs-datasource", "victorialogs", 9428)],
)
def test_store_urls(kind: str, host: str, port: int) -> None:
    """The docker-compose.yml service names; tests/unit/test_compose.py checks the ports."""
    assert _single(kind)["url"] == f"http://{host}:{port}"
