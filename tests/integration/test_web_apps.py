"""Two unmodified web apps, one ``init()`` each, under real multi-worker servers.

The storefront (uvicorn + FastAPI, four workers) calls the inventory (gunicorn + Flask,
four workers) through httpx; the inventory reads SQLite through SQLAlchemy, Redis through
redis-py and calls a supplier through requests. What arrives on the OTLP wire must show
every hop, one trace across both services, logs with trace ids, the HTTP metrics, and a
separate identity per worker whose request counts add up to what was sent.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.web_services import WORKERS, supplier, web_services
from tests.loopback import free_port, wait_until
from tests.otlp_receiver import GrpcReceiver
from tests.redis_support import RedisServer

SERVER, CLIENT = 2, 3  # SpanKind values on the wire
REQUESTS = {"/products/apple": 24, "/products/pear": 8, "/products/broken": 8}
ROUTES = {"storefront": "/products/{sku}", "inventory": "/stock/<sku>"}


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("web")
    redis = RedisServer(free_port(), tmp_path)
    redis.start()
    try:
        with GrpcReceiver() as receiver, supplier() as outside:
            with web_services(
                tmp_path,
                receiver.endpoint,
                outside.url,
                f"redis://127.0.0.1:{redis.port}/0",
            ) as services:
                codes = Counter(
                    services.get(path) for path, count in REQUESTS.items() for _ in range(count)
                )
            # The servers stopped gracefully: every worker flushed on its way out.
            total = sum(REQUESTS.values())
            wait_until(
                "server spans of both services",
                lambda: sum(s["attributes"].get("http.route") is not None and s["kind"] == SERVER
                            for s in receiver.received.spans()) >= 2 * total,
                30,
            )  # fmt: skip
            return {
                "received": receiver.received,
                "codes": codes,
                "traceparents": list(outside.traceparents),
                "output": services.output(),
            }
    finally:
        redis.stop()


def _server_spans(wire: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in wire["received"].spans()
        if s["resource"]["service.name"] == service
        and s["kind"] == SERVER
        and s["attributes"].get("http.route") == ROUTES[service]
    ]


def test_requests_were_answered(wire: dict[str, Any]) -> None:
    assert wire["codes"] == Counter({200: 32, 502: 8}), wire["output"]


@pytest.mark.parametrize(
    ("service", "route"), [("storefront", "/products/{sku}"), ("inventory", "/stock/<sku>")]
)
def test_server_spans_carry_the_route_and_stable_http_attributes(
    wire: dict[str, Any], service: str, route: str
) -> None:
    spans = _server_spans(wire, service)
    assert len(spans) == sum(REQUESTS.values())
    assert {s["attributes"]["http.route"] for s in spans} == {route}
    assert {s["attributes"]["http.request.method"] for s in spans} == {"GET"}
    statuses = Counter(s["attributes"]["http.response.status_code"] for s in spans)
    failed = 502 if service == "storefront" else 500
    assert statuses == Counter({200: 32, failed: 8})


def test_client_spans_for_each_library(wire: dict[str, Any]) -> None:
    scopes = Counter(
        (s["resource"]["service.name"], s["scope"].rsplit(".", 1)[-1])
        for s in wire["received"].spans()
        if s["kind"] == CLIENT
    )
    assert scopes[("storefront", "httpx")] == sum(REQUESTS.values())
    assert scopes[("inventory", "requests")] == REQUESTS["/products/pear"]
    assert scopes[("inventory", "sqlalchemy")] >= 1
    assert scopes[("inventory", "redis")] >= REQUESTS["/products/apple"]


def test_one_trace_across_both_services_and_the_supplier(wire: dict[str, Any]) -> None:
    by_id = {s["span_id"]: s for s in wire["received"].spans()}
    for inventory_span in _server_spans(wire, "inventory"):
        caller = by_id[inventory_span["parent_span_id"]]
        assert caller["resource"]["service.name"] == "storefront"
        assert caller["kind"] == CLIENT
        assert caller["trace_id"] == inventory_span["trace_id"]
    storefront_traces = {s["trace_id"] for s in _server_spans(wire, "storefront")}
    assert len(storefront_traces) == sum(REQUESTS.values())
    supplier_traces = {tp.split("-")[1] for tp in wire["traceparents"]}
    assert len(wire["traceparents"]) == REQUESTS["/products/pear"]
    assert supplier_traces <= storefront_traces


def test_logs_carry_the_trace_of_their_request(wire: dict[str, Any]) -> None:
    traces = {s["trace_id"] for s in wire["received"].spans()}
    logs = [r for r in wire["received"].log_records() if r["body"].startswith("stock of")]
    assert len(logs) == REQUESTS["/products/apple"] + REQUESTS["/products/pear"]
    assert {r["trace_id"] for r in logs} <= traces
    errors = [r for r in wire["received"].log_records() if "unreadable" in r["body"]]
    assert len(errors) == REQUESTS["/products/broken"], "each record exported once"


def test_http_duration_metrics(wire: dict[str, Any]) -> None:
    names = {(p["resource"]["service.name"], p["name"]) for p in wire["received"].metric_points()}
    assert ("storefront", "http.server.request.duration") in names
    assert ("inventory", "http.server.request.duration") in names
    assert ("storefront", "http.client.request.duration") in names


@pytest.mark.parametrize("service", ["storefront", "inventory"])
def test_each_worker_has_its_own_identity_and_counts_add_up(
    wire: dict[str, Any], service: str
) -> None:
    spans = _server_spans(wire, service)
    per_instance = Counter(s["resource"]["service.instance.id"] for s in spans)
    pids = {s["resource"]["service.instance.id"]: s["resource"]["process.pid"] for s in spans}
    assert 1 < len(per_instance) <= WORKERS
    assert len(set(pids.values())) == len(per_instance), "one pid per instance"
    assert sum(per_instance.values()) == sum(REQUESTS.values())
    points = [
        p
        for p in wire["received"].metric_points()
        if p["resource"]["service.name"] == service
        and p["name"] == "http.server.request.duration"
        and p["attributes"].get("http.route") == ROUTES[service]
    ]
    # Cumulative histograms: the last point of each instance holds its total.
    last: dict[tuple[str, tuple[tuple[str, Any], ...]], int] = {}
    for point in points:
        instance = point["resource"]["service.instance.id"]
        last[(instance, tuple(sorted(point["attributes"].items())))] = point["count"]
    assert sum(last.values()) == sum(REQUESTS.values())
