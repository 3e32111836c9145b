"""The Grafana dashboards: generated, structurally sound, queries that parse as PromQL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards._support import (
    DEMO_SLO_RULES,
    GRAFANA_DIR,
    PROMETHEUS_DIR,
    load_script,
    run,
    tool,
)

generate = load_script(GRAFANA_DIR / "generate.py", "ttbt5_grafana_generate")
queries = load_script(GRAFANA_DIR / "queries.py", "ttbt5_grafana_queries")
render_slos = load_script(PROMETHEUS_DIR / "render_slos.py", "ttbt5_render_slos")

DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
UID = "ttbt5-prometheus"
ERROR_BUDGET = "error-budget.json"
# Dashboards of application and collector series, filtered by $service and $instance; the
# error-budget dashboard reads the SLO series instead (service_name and slo, no instance).
APP_DASHBOARDS = sorted(set(generate.render()) - {ERROR_BUDGET})
SLO_RULES = PROMETHEUS_DIR / "rules" / "ttbt5-slos.yml"

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


def test_the_five_dashboards() -> None:
    titles = {model["uid"]: model["title"] for model in _models().values()}
    assert titles == {
        "ttbt5-service-overview": "ttbt5 / Service overview",
        "ttbt5-caching": "ttbt5 / Caching",
        "ttbt5-resilience": "ttbt5 / Resilience",
        "ttbt5-runtime-pipeline": "ttbt5 / Runtime & pipeline",
        "ttbt5-error-budget": "ttbt5 / Error budget",
    }
    assert _models()[ERROR_BUDGET]["uid"] == generate.ERROR_BUDGET_UID


@pytest.mark.parametrize("name", APP_DASHBOARDS)
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


def test_error_budget_variables() -> None:
    """One service among those with SLOs; its SLOs, several or all, one row repeated each."""
    model = _models()[ERROR_BUDGET]
    variables = {variable["name"]: variable for variable in model["templating"]["list"]}
    assert list(variables) == ["service", "slo"]
    for variable in variables.values():
        assert variable["datasource"]["uid"] == UID
    service, slo = variables["service"], variables["slo"]
    assert service["query"]["query"] == "label_values(slo:sli_total:rate5m, service_name)"
    assert not service["multi"]
    assert (
        slo["query"]["query"] == 'label_values(slo:objective:ratio{service_name=~"$service"}, slo)'
    )
    assert slo["multi"]
    assert slo["includeAll"]
    assert slo["allValue"] == ".*"
    # The one row repeats per SLO, and holds every panel.
    first, *rest = model["panels"]
    assert first["type"] == "row"
    assert first["repeat"] == "slo"
    assert "$slo" in first["title"]
    assert rest
    assert all(panel["type"] != "row" for panel in rest)


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
            selectors = expr.count("{") - expr.count("{{")
            if name == ERROR_BUDGET:
                # Every selector, ALERTS included: one service, the SLOs of the row.
                assert selectors, (name, expr)
                assert expr.count('service_name="$service"') == selectors, (name, expr)
                assert expr.count('slo=~"$slo"') == selectors, (name, expr)
            elif expr.startswith("ALERTS"):
                assert "$service" in expr
            elif "otelcol_" in expr:
                assert 'instance=~"$collector"' in expr, (name, expr)
            elif expr != "max by (job, instance) (up)":
                # Every selector of the query, not just the first one.
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
    by_slo = queries.all_queries("checkout", slo="latency")
    assert any('service_name="checkout", slo=~"latency"' in q.expr for q in by_slo)
    assert all('slo=~".*"' in q.expr for q in found if q.dashboard == "ttbt5-error-budget")


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


# --- error budget


def _rule_file(path: Path) -> tuple[set[str], list[dict[str, Any]]]:
    """Record names and alerting rules of a rule file."""
    rules = [
        rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]
    return {rule["record"] for rule in rules if "record" in rule}, [
        rule for rule in rules if "alert" in rule
    ]


def _error_budget_templates() -> list[str]:
    return [
        target["expr"]
        for panel in _models()[ERROR_BUDGET]["panels"]
        for target in panel.get("targets", [])
    ]


def test_error_budget_reads_the_slo_recording_rules() -> None:
    """Every SLO series a query names is recorded by rules/ttbt5-slos.yml (and, under the
    same names, by the demo profile), and the dashboard shows every one of them."""
    records, alerts = _rule_file(SLO_RULES)
    demo_records, _ = _rule_file(DEMO_SLO_RULES)
    assert records == demo_records
    used = {
        name
        for expr in _error_budget_templates()
        for name in re.findall(r"\bslo:[a-z0-9_]+:[a-z0-9_]+\b", expr)
    }
    assert used, "no SLO series in the error-budget dashboard"
    assert used <= records, sorted(used - records)
    assert used == records, f"SLO series not shown: {sorted(records - used)}"
    # The only other series is the state of the SLO alerts.
    others = [expr for expr in _error_budget_templates() if "slo:" not in expr]
    alerts_query = (
        'ALERTS{alertname="Ttbt5ErrorBudgetBurn", alertstate="firing", '
        'service_name="$service", slo=~"$slo"}'
    )
    assert others == [alerts_query]
    assert {alert["alert"] for alert in alerts} == {"Ttbt5ErrorBudgetBurn"}


def _panel(name: str, title: str) -> dict[str, Any]:
    (found,) = [panel for panel in _models()[name]["panels"] if panel["title"] == title]
    return found


def test_error_budget_burn_rates_match_the_alerts() -> None:
    """One burn-rate line per window of the alerts, threshold lines at their burn rates."""
    _, alerts = _rule_file(SLO_RULES)
    windows = {alert["labels"][key] for alert in alerts for key in ("long_window", "short_window")}
    rates = {float(alert["labels"]["burn_rate"]) for alert in alerts}
    assert rates == {1, 3, 6, 14.4}
    burn = _panel(ERROR_BUDGET, "Burn rate by window")
    shown = {
        re.search(r"slo:sli_error:ratio_rate(\w+)\{", target["expr"]).group(1): target["expr"]
        for target in burn["targets"]
    }
    assert set(shown) == windows == set(generate.SLO_WINDOWS)
    for window, expr in shown.items():
        assert expr == (
            f'slo:sli_error:ratio_rate{window}{{service_name="$service", slo=~"$slo"}} '
            "/ on (service_name, slo) group_left "
            'slo:error_budget:ratio{service_name="$service", slo=~"$slo"}'
        )
    steps = burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0]["value"] is None
    assert {step["value"] for step in steps[1:]} == rates
    assert burn["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_error_budget_panels() -> None:
    model = _models()[ERROR_BUDGET]
    budget = _panel(ERROR_BUDGET, "Error budget remaining")
    assert budget["type"] == "stat"
    defaults = budget["fieldConfig"]["defaults"]
    assert defaults["unit"] == "percentunit"
    assert defaults["thresholds"]["steps"] == [
        {"color": "red", "value": None},
        {"color": "orange", "value": 0},
        {"color": "green", "value": 0.25},
    ]
    sli = _panel(ERROR_BUDGET, "SLI over time")
    assert [target["expr"].split("{")[0] for target in sli["targets"]] == [
        "1 - slo:sli_error:ratio_rate5m",
        "1 - slo:sli_error:ratio_rate1h",
        "slo:objective:ratio",
    ]
    requests = _panel(ERROR_BUDGET, "Requests and bad requests")
    assert requests["fieldConfig"]["defaults"]["unit"] == "reqps"
    alerts = _panel(ERROR_BUDGET, "Burn-rate alerts firing")
    assert alerts["type"] == "table"
    assert all(target.get("instant") for target in alerts["targets"])
    # Every panel says what it shows and how to read it.
    for panel in model["panels"][1:]:
        assert len(panel["description"]) > 80, panel["title"]


def test_service_overview_links_to_the_error_budget() -> None:
    """With the service and the time range, at the address the burn-rate alerts link to."""
    links = _models()["service-overview.json"]["links"]
    (link,) = [link for link in links if link.get("url", "").startswith("/d/ttbt5-error-budget/")]
    assert link["type"] == "link"
    assert link["url"] == "/d/ttbt5-error-budget/ttbt5-error-budget"
    assert link["includeVars"] is True
    assert link["keepTime"] is True
    assert render_slos.DASHBOARD_UID == render_slos.DASHBOARD_SLUG == generate.ERROR_BUDGET_UID
    # The alerts' dashboard_url: this dashboard, with values for its own variables.
    _, alerts = _rule_file(SLO_RULES)
    names = {variable["name"] for variable in _models()[ERROR_BUDGET]["templating"]["list"]}
    for alert in alerts:
        url = alert["annotations"]["dashboard_url"]
        assert "/d/ttbt5-error-budget/ttbt5-error-budget?" in url, url
        assert set(re.findall(r"var-(\w+)=", url)) == names, url


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
