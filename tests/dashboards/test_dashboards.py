"""The Grafana dashboards: generated, structurally sound, queries that parse as PromQL."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards._support import GRAFANA_DIR, load_script, run, tool

generate = load_script(GRAFANA_DIR / "generate.py", "ttbt5_grafana_generate")
queries = load_script(GRAFANA_DIR / "queries.py", "ttbt5_grafana_queries")

DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
UID = "ttbt5-prometheus"

# Prometheus names of everything the SDK, the collector and Prometheus report that the
# dashboards are meant to show (docs/metrics.md); a regex alternative counts as a use.
SHOWN_METRICS = (
    "traces_span_metrics_calls_total",
    "traces_span_metrics_duration_seconds_bucket",
    "ttbt5_operation_duration_seconds_bucket",
    "ttbt5_operation_duration_seconds_count",
    "ttbt5_errors_total",
    "ttbt5_cache_requests_total",
    "ttbt5_cache_evictions_total",
    "ttbt5_cache_entries",
    "ttbt5_cache_operation_duration_seconds_bucket",
    "ttbt5_cache_coalesced_total",
    "ttbt5_retry_calls_total",
    "ttbt5_retry_attempts(_ratio)?_bucket",
    "ttbt5_circuit_breaker_state(_ratio)?",
    "ttbt5_circuit_breaker_transitions_total",
    "ttbt5_circuit_breaker_calls_total",
    "process_cpu_time_seconds_total",
    "process_memory_usage_bytes",
    "ttbt5_process_memory_limit_bytes",
    "otelcol_receiver_accepted_spans(_total)?",
    "otelcol_receiver_refused_spans(_total)?",
    "otelcol_exporter_send_failed_",
    "otelcol_exporter_queue_size",
    "ALERTS{",
    "(up)",
)


def _models() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, panel)
        for name, model in _models().items()
        for panel in model["panels"]
        if panel["type"] != "row"
    ]


# --- generated


def test_committed_json_equals_the_generator_output() -> None:
    diffs = generate.stale()
    assert not diffs, "run python dashboards/grafana/generate.py\n" + "".join(diffs)
    assert set(_models()) == set(generate.render())


def test_generator_check_option(tmp_path: Path) -> None:
    script = str(GRAFANA_DIR / "generate.py")
    subprocess.run([sys.executable, script, "--output-dir", str(tmp_path)], check=True)
    check = [sys.executable, script, "--check", "--output-dir", str(tmp_path)]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    (tmp_path / "caching.json").write_text("{}\n")
    assert subprocess.run(check, capture_output=True, check=False).returncode == 1


# --- structure


def test_the_four_dashboards() -> None:
    titles = {model["uid"]: model["title"] for model in _models().values()}
    assert titles == {
        "ttbt5-service-overview": "ttbt5 / Service overview",
        "ttbt5-caching": "ttbt5 / Caching",
        "ttbt5-resilience": "ttbt5 / Resilience",
        "ttbt5-runtime-pipeline": "ttbt5 / Runtime & pipeline",
    }


@pytest.mark.parametrize("name", sorted(generate.render()))
def test_template_variables(name: str) -> None:
    model = _models()[name]
    variables = {variable["name"]: variable for variable in model["templating"]["list"]}
    assert {"service", "instance"} <= set(variables)
    for variable in variables.values():
        assert variable["datasource"]["uid"] == UID
        assert variable["query"]["query"].startswith("label_values(")
    assert variables["service"]["query"]["query"] == "label_values(service_name)"
    assert "$service" in variables["instance"]["query"]["query"]
    assert variables["instance"]["includeAll"]
    assert variables["instance"]["allValue"] == ".*"


def test_every_panel_has_unit_datasource_and_targets() -> None:
    for name, panel in _panels():
        where = f"{name}: {panel['title']}"
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        assert panel["datasource"] == {"type": "prometheus", "uid": UID}, where
        assert panel["targets"], where
        assert panel["description"], where
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == UID, where
            assert target["expr"].strip(), where


def test_every_query_is_filtered_by_the_template_variables() -> None:
    for name, panel in _panels():
        for target in panel["targets"]:
            expr = target["expr"]
            if expr.startswith("ALERTS"):
                assert "$service" in expr
            elif "otelcol_" in expr:
                assert 'instance=~"$collector"' in expr, (name, expr)
            elif expr != "max by (job, instance) (up)":
                # Every selector of the query, not just the first one.
                selectors = expr.count("{") - expr.count("{{")
                assert expr.count('service_name="$service"') == selectors, (name, expr)
                assert expr.count('instance=~"$instance"') == selectors, (name, expr)


def test_layout_ids_and_grid() -> None:
    for name, model in _models().items():
        ids = [panel["id"] for panel in model["panels"]]
        assert len(ids) == len(set(ids)), name
        boxes = []
        for panel in model["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0, name
            assert grid["x"] + grid["w"] <= generate.GRID_WIDTH, name
            boxes.append((grid["x"], grid["y"], grid["x"] + grid["w"], grid["y"] + grid["h"]))
        for a, b in combinations(boxes, 2):
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (name, a, b)


def test_dashboards_show_every_documented_metric() -> None:
    templates = " ".join(query.template for query in queries.all_queries("x"))
    missing = [name for name in SHOWN_METRICS if name not in templates]
    assert not missing


# --- exemplars

# Every histogram of docs/metrics.md whose buckets a dashboard panel reads.
LATENCY_HISTOGRAMS = (
    "traces_span_metrics_duration_seconds_bucket",
    "ttbt5_operation_duration_seconds_bucket",
    "http_server_request_duration_seconds_bucket",
    "http_client_request_duration_seconds_bucket",
    "ttbt5_cache_operation_duration_seconds_bucket",
)


def test_histogram_queries_show_exemplars() -> None:
    """Every range query over _bucket series shows exemplars, and only those do."""
    with_exemplars = []
    for name, panel in _panels():
        for target in panel["targets"]:
            where = (name, panel["title"], target["refId"])
            over_buckets = "_bucket" in target["expr"]
            if over_buckets and not target.get("instant", False):
                assert target.get("exemplar") is True, where
                # Exemplars come from the Prometheus datasource, which links them to Jaeger.
                assert target["datasource"] == panel["datasource"] == generate.DATASOURCE, where
                assert panel["type"] == "timeseries", where
                with_exemplars.append(target["expr"])
            else:
                assert "exemplar" not in target, where
    for metric in LATENCY_HISTOGRAMS:
        assert any(metric in expr for expr in with_exemplars), metric


def test_every_latency_panel_shows_exemplars() -> None:
    for name, panel in _panels():
        exprs = [target["expr"] for target in panel["targets"]]
        if any(metric in expr for metric in LATENCY_HISTOGRAMS for expr in exprs):
            assert panel["fieldConfig"]["defaults"]["unit"] == "s", (name, panel["title"])
            assert all(target.get("exemplar") for target in panel["targets"]), (
                name,
                panel["title"],
            )


def test_queries_report_which_show_exemplars() -> None:
    found = queries.all_queries("checkout")
    assert {query.exemplar for query in found} == {True, False}
    for query in found:
        assert query.exemplar == ("_bucket" in query.template and not query.instant), query


# --- queries


def test_all_queries_fills_every_variable() -> None:
    found = queries.all_queries("checkout", "i-1|i-2", collector="127.0.0.1:8888")
    targets = sum(len(panel["targets"]) for _, panel in _panels())
    assert len(found) == targets
    for query in found:
        assert "$" not in query.expr, query
        assert query.dashboard.startswith("ttbt5-")
    assert any('service_name="checkout", instance=~"i-1|i-2"' in q.expr for q in found)
    assert any('instance=~"127.0.0.1:8888"' in q.expr for q in found)
    assert any(q.instant for q in found)


def test_unknown_variable_is_an_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        queries.substitute("up{job=~'$nope'}", queries.variables("x"))
    assert queries.substitute("rate(x[${__range}])", queries.variables("x")) == "rate(x[1h])"


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{number}:check", "expr": query.expr}
                    for number, query in enumerate(queries.all_queries("checkout"))
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    run([tool("promtool", "prometheus"), "check", "rules", str(path)])


def test_queries_command_prints_json_lines() -> None:
    result = run([sys.executable, str(GRAFANA_DIR / "queries.py"), "--service", "checkout"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines
    assert lines == [vars(query) for query in queries.all_queries("checkout")]


# --- provisioning


def test_datasource_provisioning_matches_the_dashboards() -> None:
    path = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
    (datasource,) = yaml.safe_load(path.read_text())["datasources"]
    assert datasource["uid"] == UID == generate.DATASOURCE["uid"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


def test_dashboard_provider_loads_files() -> None:
    path = GRAFANA_DIR / "provisioning" / "dashboards" / "ttbt5.yml"
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/ttbt5"


# --- docs


def test_every_dashboard_and_panel_is_described_in_the_docs() -> None:
    text = (GRAFANA_DIR.parents[1] / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for model in _models().values():
        assert f"### {model['title']}" in text, model["title"]
    for name, panel in _panels():
        assert f"**{panel['title']}**" in text, (name, panel["title"])
