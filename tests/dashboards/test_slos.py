"""The SLO spec and the rules generated from it: valid, current, lint-clean, strict on input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.dashboards._support import PROMETHEUS_DIR, RUNBOOKS, load_script, run, tool
from tests.paths import REPO
from ttbt5_otel._cli import slo_profile

SPEC = REPO / "dashboards" / "slos.yaml"
SCHEMA = json.loads((REPO / "dashboards" / "slos.schema.json").read_text(encoding="utf-8"))
RENDER = PROMETHEUS_DIR / "render_slos.py"
render_slos = load_script(RENDER, "ttbt5_render_slos")
slo_spec = sys.modules["slo_spec"]
STANDARD = PROMETHEUS_DIR / "rules" / "ttbt5-slos.yml"
DEMO = PROMETHEUS_DIR / "profiles" / "demo" / "ttbt5-slos.yml"


def _rules(path: Path) -> list[dict[str, Any]]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _spec(**service: Any) -> dict[str, Any]:
    return {"version": 1, "services": {"checkout": service}}


def _promtool_case(
    tmp_path: Path, rules: Path, series: list[dict[str, str]], expr: str, sample: dict[str, Any]
) -> None:
    """One promtool case over ``rules``: at 10m, ``expr`` gives exactly ``sample``."""
    case = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [{"expr": expr, "eval_time": "10m", "exp_samples": [sample]}],
            }
        ],
    }
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(case), encoding="utf-8")
    run([tool("promtool", "prometheus"), "test", "rules", str(test_file)])


def test_committed_rules_equal_the_generator_output() -> None:
    result = subprocess.run(
        [sys.executable, str(RENDER), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_profiles_pass_promtool_lint() -> None:
    run([tool("promtool", "prometheus"), "check", "rules", "--lint=all", "--lint-fatal",
         str(STANDARD), str(DEMO)])  # fmt: skip


def test_the_shipped_spec_follows_its_schema() -> None:
    jsonschema.validate(yaml.safe_load(SPEC.read_text(encoding="utf-8")), SCHEMA)
    slos = slo_spec.load(SPEC)
    assert {(s.service, s.name, s.sli) for s in slos} >= {
        ("orders-demo", "availability", "availability"),
        ("orders-demo", "latency", "latency"),
    }


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (_spec(slos=[{"name": "a", "sli": "availability", "objective": 0.999}]),
         "services.checkout.slos[0].objective"),
        (_spec(slos=[{"name": "a", "sli": "availability", "objective": 100}]),
         "services.checkout.slos[0].objective"),
        (_spec(slos=[{"name": "a", "sli": "latency", "objective": 99}]),
         "services.checkout.slos[0].threshold"),
        (_spec(slos=[{"name": "a", "sli": "availability", "objective": 99, "threshold": "1s"}]),
         "services.checkout.slos[0].threshold"),
        (_spec(slos=[{"name": "a", "sli": "uptime", "objective": 99}]),
         "services.checkout.slos[0].sli"),
        (_spec(window="7d", slos=[{"name": "a", "sli": "availability", "objective": 99}]),
         "services.checkout.window"),
        (_spec(source="logs", slos=[{"name": "a", "sli": "availability", "objective": 99}]),
         "services.checkout.source"),
        (_spec(slos=[{"name": "A b", "sli": "availability", "objective": 99}]),
         "services.checkout.slos[0].name"),
        (_spec(slos=[{"name": "a", "sli": "availability", "objective": 99, "routes": ["x"]}]),
         "services.checkout.slos[0].routes[0]"),
        (_spec(slos=[{"name": "a", "sli": "availability", "objective": 99, "target": 1}]),
         "services.checkout.slos[0]"),
        (_spec(slos=[]), "services.checkout.slos"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_refused_by_the_schema_and_by_the_generator_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    with pytest.raises(slo_spec.SpecError, match="^" + re.escape(field) + ": "):
        slo_spec.parse(document)


def test_a_latency_threshold_must_be_a_bucket_bound_of_its_source() -> None:
    slo = {"name": "a", "sli": "latency", "objective": 99, "threshold": "300ms"}
    with pytest.raises(slo_spec.SpecError, match=r"300ms is not a bucket bound .* 250ms, 500ms"):
        slo_spec.parse(_spec(slos=[slo]))
    slo["threshold"] = "750ms"  # a bound of the HTTP histogram only
    with pytest.raises(slo_spec.SpecError, match="span_metrics histogram"):
        slo_spec.parse(_spec(slos=[slo]))
    [parsed] = slo_spec.parse(_spec(source="http_server", slos=[slo]))
    assert parsed.threshold == 0.75


def test_two_slos_of_one_name_and_a_wrong_version_are_refused() -> None:
    twice = {"name": "a", "sli": "availability", "objective": 99}
    with pytest.raises(slo_spec.SpecError, match="two SLOs are named 'a'"):
        slo_spec.parse(_spec(slos=[twice, twice]))
    with pytest.raises(slo_spec.SpecError, match=r"^version: 2 is not supported"):
        slo_spec.parse({"version": 2, "services": {}})


def test_the_generator_exits_2_with_the_field_on_a_bad_spec(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_text(yaml.safe_dump(_spec(slos=[{"name": "a", "sli": "x", "objective": 99}])))
    result = subprocess.run(
        [sys.executable, str(RENDER), "--spec", str(spec), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "services.checkout.slos[0].sli: 'x' is not one of availability, latency" in (
        result.stderr
    )


def test_the_demo_profile_divides_every_window_and_for_by_the_same_factor() -> None:
    standard, demo = _rules(STANDARD), _rules(DEMO)
    assert [r.get("record") or r["alert"] for r in standard] == [
        r.get("record") or r["alert"] for r in demo
    ]
    factor = render_slos.DEMO_FACTOR
    seconds = render_slos.render_rules.parse_duration
    for real, fast in zip(standard, demo, strict=True):
        if "alert" in real:
            for key in ("long_window", "short_window"):
                assert seconds(real["labels"][key]) == factor * seconds(fast["labels"][key])
            assert seconds(real["for"]) == factor * seconds(fast["for"])
            assert fast["labels"]["slo_profile"] == "demo"
            assert fast["annotations"]["summary"].startswith("[demo profile, windows /10]")
        assert "slo_profile" not in real["labels"]
    loaded = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    assert {group["interval"] for group in loaded["groups"]} == {"1s"}
    assert "DEMO PROFILE" in DEMO.read_text(encoding="utf-8")
    # The stack divides its scrape interval by the same factor when it loads this profile.
    assert factor == slo_profile.DEMO_FACTOR


def test_page_and_ticket_alerts_follow_the_workbook() -> None:
    alerts = [r for r in _rules(STANDARD) if r.get("alert") == "Ttbt5ErrorBudgetBurn"]
    pairs = {
        (a["labels"]["slo"], a["labels"]["response"], a["labels"]["severity"],
         a["labels"]["burn_rate"], a["labels"]["long_window"], a["labels"]["short_window"])
        for a in alerts
    }  # fmt: skip
    for slo in ("availability", "latency"):
        assert {p[1:] for p in pairs if p[0] == slo} == {
            ("page", "critical", "14.4", "1h", "5m"),
            ("page", "critical", "6", "6h", "30m"),
            ("ticket", "warning", "3", "1d", "2h"),
            ("ticket", "warning", "1", "3d", "6h"),
        }
    page = next(a for a in alerts if a["labels"]["burn_rate"] == "14.4")
    assert "> 0.0144" in page["expr"]
    assert page["annotations"]["runbook_url"].endswith("#error-budget-burn")
    assert "## Error budget burn" in RUNBOOKS.read_text(encoding="utf-8")
    slow = next(
        a for a in alerts if a["labels"]["slo"] == "latency" and a["labels"]["burn_rate"] == "1"
    )
    assert "minDuration=250ms" in slow["annotations"]["traces_api_url"]


def test_http_server_source_counts_5xx_and_filters_routes(tmp_path: Path) -> None:
    """A service measured by its HTTP server histogram, one SLO per route, checked by promtool."""
    spec = tmp_path / "slos.yaml"
    spec.write_text(
        yaml.safe_dump(
            _spec(
                source="http_server",
                environment="production",
                slos=[{"name": "pay", "sli": "availability", "objective": 99, "routes": ["/pay"]}],
            )
        )
    )
    rules = tmp_path / "slos.yml"
    slos = slo_spec.load(spec)
    rules.write_text(render_slos.render(slos, render_slos.STANDARD), encoding="utf-8")
    run([tool("promtool", "prometheus"), "check", "rules", "--lint=all", "--lint-fatal",
         str(rules)])  # fmt: skip
    series = (
        'http_server_request_duration_seconds_count{{service_name="checkout", '
        'deployment_environment_name="{env}", http_route="{route}", '
        'http_response_status_code="{code}"}}'
    )
    _promtool_case(
        tmp_path,
        rules,
        [
            # /pay: 10 % answer 500, 404s are fine; /search and staging do not count.
            {"series": series.format(env="production", route="/pay", code="200"),
             "values": "0+80x20"},
            {"series": series.format(env="production", route="/pay", code="404"),
             "values": "0+10x20"},
            {"series": series.format(env="production", route="/pay", code="500"),
             "values": "0+10x20"},
            {"series": series.format(env="production", route="/search", code="500"),
             "values": "0+500x20"},
            {"series": series.format(env="staging", route="/pay", code="500"),
             "values": "0+500x20"},
        ],
        "round(slo:sli_error:ratio_rate5m * 1000)",
        {
            "labels": '{service_name="checkout", deployment_environment_name="production", '
            'slo="pay", sli="availability", slo_window="30d"}',
            "value": 100,
        },
    )  # fmt: skip


@pytest.mark.parametrize("name", ["ttbt5-slos-test.yml", "ttbt5-slos-3d-test.yml"])
def test_the_burn_rate_maths_passes_promtool(name: str) -> None:
    """The promtool cases of the SLO rules (three simulated days take half a minute)."""
    run([tool("promtool", "prometheus"), "test", "rules", str(PROMETHEUS_DIR / "tests" / name)],
        timeout=280)  # fmt: skip


def test_slo_rule_tests_exist_for_both_slis() -> None:
    texts = [
        (PROMETHEUS_DIR / "tests" / name).read_text(encoding="utf-8")
        for name in ("ttbt5-slos-test.yml", "ttbt5-slos-3d-test.yml")
    ]
    for text in texts:
        assert "../rules/ttbt5-slos.yml" in text
    joined = "\n".join(texts)
    for needle in ('slo="availability"', 'slo="latency"', "never fires", "ticket alert only"):
        assert needle in joined


def test_a_whole_second_threshold_matches_both_spellings_of_its_bucket(tmp_path: Path) -> None:
    """le="1" (Prometheus 2, text) and le="1.0" (Prometheus 3, protobuf) are the same bucket;
    a bucket that matches nothing counts every request as slow rather than none."""
    slo = {"name": "fast", "sli": "latency", "objective": 99, "threshold": "1s"}
    rules = tmp_path / "slos.yml"
    rules.write_text(
        render_slos.render(slo_spec.parse(_spec(slos=[slo])), render_slos.STANDARD),
        encoding="utf-8",
    )
    assert 'le=~"1|1\\\\.0"' in rules.read_text(encoding="utf-8")
    series = (
        'traces_span_metrics_duration_seconds_{kind}{{service_name="checkout", '
        'deployment_environment_name="production", span_kind="SPAN_KIND_SERVER"{le}}}'
    )
    expected = (
        '{service_name="checkout", deployment_environment_name="production", slo="fast", '
        'sli="latency", slo_window="30d"}'
    )
    for le, slow in (('le="1.0"', 10), ('le="2.5"', 100)):
        _promtool_case(
            tmp_path,
            rules,
            [
                {"series": series.format(kind="count", le=""), "values": "0+100x20"},
                {"series": series.format(kind="bucket", le=f", {le}"), "values": "0+90x20"},
            ],
            "round(slo:sli_error:ratio_rate5m * 100)",
            {"labels": expected, "value": slow},
        )


def test_burns_a_low_objective_cannot_reach_are_left_out() -> None:
    slo = {"name": "a", "sli": "availability", "objective": 90}
    loaded = yaml.safe_load(
        render_slos.render(slo_spec.parse(_spec(slos=[slo])), render_slos.STANDARD)
    )
    burns = [r["labels"]["burn_rate"] for g in loaded["groups"] for r in g["rules"] if "alert" in r]
    assert burns == ["6", "3", "1"]  # 14.4 x 10 % is more than every request


def test_rules_read_only_the_series_of_their_own_slo_and_profile() -> None:
    for path, profile in ((STANDARD, ""), (DEMO, "demo")):
        for rule in _rules(path):
            if "slo:" in rule["expr"] and "vector(" not in rule["expr"]:
                assert f'slo_profile="{profile}"' in rule["expr"], rule
                assert 'slo_window="30d"' in rule["expr"], rule
