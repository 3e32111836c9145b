"""The example web services, unmodified, through the real collector into Prometheus.

A burst of failing requests must fire ``Ttbt5HighErrorRatio`` for both services, and the
request counts Prometheus holds per route and status must be exactly what was sent: only
entry spans count, so the client and internal spans under each request neither inflate the
request rate nor dilute the error ratio.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboards._support import (
    DEMO_SLO_RULES,
    GRAFANA_DIR,
    collector_environment,
    fast_prometheus_config,
    firing_alerts,
    load_script,
)
from tests.integration.test_live_alerts import COLLECTOR, ready, start
from tests.integration.web_services import supplier, web_services
from tests.loopback import free_port, stop_processes, wait_until
from tests.paths import REPO
from tests.redis_support import RedisServer

pytestmark = pytest.mark.integration
# Panels of the service overview an app without these features leaves empty.
CONDITIONAL_PANELS = {
    "Operation latency p50 / p95 / p99",
    "Operation p95 by function",
    "Operations by outcome",
    "Error events by type, severity and category",
}
ROUTES = {"storefront": "/products/{sku}", "inventory": "/stock/<sku>"}
GOOD_PER_ROUND, BAD_PER_ROUND = 4, 1


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as reply:
        return list(json.load(reply)["data"]["result"])


def _calls_by_status(prometheus: str, service: str) -> dict[str, float]:
    expr = (
        "sum by (status_code) (traces_span_metrics_calls_total{"
        f'service_name="{service}", span_kind="SPAN_KIND_SERVER", '
        f'http_route="{ROUTES[service]}"}})'
    )
    return {r["metric"]["status_code"]: float(r["value"][1]) for r in _query(prometheus, expr)}


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not COLLECTOR.exists():
        pytest.fail(f"collector binary {COLLECTOR} missing: run `bash collector/build.sh`")
    work = tmp_path_factory.mktemp("web-stack")
    names = ("grpc", "http", "prom_exporter", "telemetry", "health", "prometheus")
    ports = {name: free_port() for name in names}
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    # The SLO rules of the demo profile: their windows fit a test of a minute.
    fast_prometheus_config(work, ports, slo_rules=DEMO_SLO_RULES)
    processes = []
    logs: list[Path] = []
    redis = RedisServer(free_port(), work)
    redis.start()
    try:
        collector, log = start(
            "collector",
            [str(COLLECTOR), f"--config={REPO / 'otel-collector.yaml'}"],
            work,
            collector_environment(ports),
        )
        processes.append(collector)
        logs.append(log)
        server, log = start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            work,
        )
        processes.append(server)
        logs.append(log)
        wait_until("the collector", lambda: ready(f"http://127.0.0.1:{ports['health']}/"), 30)
        wait_until("Prometheus", lambda: ready(f"{prometheus}/-/ready"), 30)
        endpoint = f"http://127.0.0.1:{ports['grpc']}"
        redis_url = f"redis://127.0.0.1:{redis.port}/0"
        with (
            supplier() as outside,
            web_services(work, endpoint, outside.url, redis_url) as services,
        ):
            sent = {"good": 0, "bad": 0}

            def send_round_until_both_fire() -> bool:
                # One of the good requests needs the supplier (through requests).
                for sku in ["pear"] + ["apple"] * (GOOD_PER_ROUND - 1):
                    assert services.get(f"/products/{sku}") == 200
                    sent["good"] += 1
                for _ in range(BAD_PER_ROUND):
                    assert services.get("/products/broken") == 502
                    sent["bad"] += 1
                fired = firing_alerts(prometheus).get("Ttbt5HighErrorRatio", [])
                return {a["service_name"] for a in fired} >= set(ROUTES)

            def diagnostics() -> str:
                return services.output() + "".join(p.read_text()[-2000:] for p in logs)

            wait_until("the error alert for both services", send_round_until_both_fire, 90,
                       diagnostics, interval=0.0)  # fmt: skip
            # More of the same mix: rate() cannot count what a counter held at its first
            # sample, and over a burst of a few rounds that loss skews the SLI; over a
            # hundred rounds it is noise.
            more_until = time.monotonic() + 6
            while time.monotonic() < more_until:
                send_round_until_both_fire()
            alerts = firing_alerts(prometheus)["Ttbt5HighErrorRatio"]
        logs += [work / "inventory.log", work / "storefront.log"]
        yield {"prometheus": prometheus, "sent": sent, "alerts": alerts, "logs": logs}
    finally:
        stop_processes(processes)
        redis.stop()


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_prometheus_counts_exactly_the_requests_sent(burst: dict[str, Any], service: str) -> None:
    sent = burst["sent"]
    expected = {"STATUS_CODE_UNSET": sent["good"], "STATUS_CODE_ERROR": sent["bad"]}
    # Workers flushed at shutdown; the collector's next span-metrics flush carries the rest.
    wait_until(
        f"{service} counts",
        lambda: _calls_by_status(burst["prometheus"], service) == expected,
        30,
        lambda: str(_calls_by_status(burst["prometheus"], service)),
    )


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_error_alert_fires_with_the_true_server_error_ratio(
    burst: dict[str, Any], service: str
) -> None:
    fired = [a for a in burst["alerts"] if a["service_name"] == service]
    assert fired, burst["alerts"]
    true_ratio = BAD_PER_ROUND / (GOOD_PER_ROUND + BAD_PER_ROUND)
    totals = _calls_by_status(burst["prometheus"], service)
    assert totals["STATUS_CODE_ERROR"] / sum(totals.values()) == pytest.approx(true_ratio)
    # Entry spans only: over every span of the service the same failures look rarer.
    everything = _query(
        burst["prometheus"],
        f'sum(traces_span_metrics_calls_total{{service_name="{service}", '
        'status_code="STATUS_CODE_ERROR"}) / '
        f'sum(traces_span_metrics_calls_total{{service_name="{service}"}})',
    )
    assert float(everything[0]["value"][1]) < true_ratio


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_the_availability_slo_sees_the_true_server_error_ratio(
    burst: dict[str, Any], service: str
) -> None:
    """dashboards/slos.yaml: the storefront by its HTTP histogram (5xx), the inventory by its
    entry spans, both on their product route. Their SLI is the share of requests that failed."""
    true_ratio = BAD_PER_ROUND / (GOOD_PER_ROUND + BAD_PER_ROUND)
    expr = f'slo:sli_error:ratio_rate1h{{service_name="{service}", slo="availability"}}'
    found = wait_until(f"the SLI of {service}", lambda: _query(burst["prometheus"], expr), 30)
    [series] = found
    assert float(series["value"][1]) == pytest.approx(true_ratio, rel=0.15)
    # 1 - 99.5 %: the burst burns the budget at dozens of times its rate.
    burn = float(series["value"][1]) / 0.005
    assert burn > 14.4


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_routes_and_http_metrics_reach_the_dashboard_queries(
    burst: dict[str, Any], service: str
) -> None:
    per_route = _query(
        burst["prometheus"], f'instance_route:ttbt5_requests:rate5m{{service_name="{service}"}}'
    )
    # The readiness probes of the test hit a path without a route: the empty route.
    assert {r["metric"].get("http_route") for r in per_route} <= {ROUTES[service], None}
    assert ROUTES[service] in {r["metric"].get("http_route") for r in per_route}
    expr = (
        "sum(http_server_request_duration_seconds_count{"
        f'service_name="{service}", http_route="{ROUTES[service]}"}})'
    )

    def counted() -> float | None:
        found = _query(burst["prometheus"], expr)
        return float(found[0]["value"][1]) if found else None

    # Each worker's last requests leave with the flush at its exit; Prometheus may not have
    # scraped that yet.
    wait_until(
        f"{service}'s HTTP request count",
        lambda: counted() == sum(burst["sent"].values()),
        30,
        lambda: f"counted {counted()}\n" + "".join(p.read_text()[-3000:] for p in burst["logs"]),
    )


def test_service_dashboard_panels_show_both_services(burst: dict[str, Any]) -> None:
    """Every panel of the service overview returns data for each web service."""
    queries = load_script(GRAFANA_DIR / "queries.py", "ttbt5_web_dashboard_queries")

    def empty_panels(service: str) -> list[str]:
        return [
            query.panel
            for query in queries.all_queries(service, rate_interval="1m", time_range="5m")
            if query.dashboard == "ttbt5-service-overview"
            and query.panel not in CONDITIONAL_PANELS
            and not _query(burst["prometheus"], query.expr)
        ]

    for service in ROUTES:
        # Metrics flushed as the services stopped need two scrapes before rate() sees them.
        wait_until(
            f"every panel of {service} to show data",
            lambda service=service: not empty_panels(service),
            30,
            lambda service=service: str(empty_panels(service)),
        )
