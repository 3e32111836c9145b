"""Fault injection on the HA topology (``stack up --topology ha``), loopback only, bounded.

One stack for the module, with the demo SLO profile (1 s scrapes) and a 1 s sampling
decision wait. Each test kills real processes of it with SIGKILL and restarts them with
``stack up`` (as a supervisor would), so the tests can run in any order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.dashboards._support import GRAFANA_DIR, load_script
from tests.integration.test_stack_e2e import REPO, alive, kill_leftovers, recorded, wait_for
from tests.loopback import clean_env
from ttbt5_otel import HierarchicalCache
from ttbt5_otel._cli import stack_ha
from ttbt5_otel._cli.alert_view import fetch_notifications
from ttbt5_otel._cli.alert_webhook import parse_time
from ttbt5_otel._cli.slo_profile import loaded_profile
from ttbt5_otel._cli.stack import redis_url

pytestmark = pytest.mark.integration

JAEGER = "http://127.0.0.1:16686"
WEBHOOK = "http://127.0.0.1:9099"
PROMETHEUS_B = f"http://127.0.0.1:{stack_ha.PROMETHEUS_REPLICAS['b']}"
DECISION_WAIT_S = 1.0
DEMO = 'service_name="orders-demo"'
SCRAPE_INTERVAL_S = 1.0  # the demo SLO profile's
LOAD_RATE = 100.0
LOAD_SECONDS = 24.0


def _env() -> dict[str, str]:
    return clean_env(
        TTBT5_COLLECTOR_SPAN_METRICS_FLUSH_INTERVAL="1s",
        TTBT5_TRACE_SAMPLING_DECISION_WAIT=f"{DECISION_WAIT_S:.0f}s",
    )


def stack(state: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "stack", *args, "--state-dir", str(state)],
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def restore(state: Path) -> None:
    """Start again whatever a test killed (``up`` restarts only the missing parts)."""
    result = stack(state, "up", "--timeout", "90", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("ha") / "stack"
    try:
        # Inside the try: a start that times out must still be stopped.
        started = stack(
            state, "up", "--topology", "ha", "--slo-profile", "demo", "--timeout", "90", timeout=600
        )
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield state
    finally:
        procs = recorded(state)
        down = stack(state, "down")
        leftovers = [name for name, proc in procs.items() if alive(proc)]
        kill_leftovers(procs)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not leftovers, f"`stack down` left these running: {leftovers}\n{down.stdout}"


def _get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    body = _get_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _stored_trace_ids(service: str) -> set[str]:
    query = urllib.parse.urlencode({"service": service, "limit": 100000, "lookback": "1h"})
    return {trace["traceID"] for trace in _get_json(f"{JAEGER}/api/traces?{query}", 30)["data"]}


def _start_load(endpoint: str, service: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.integration.ha_load", endpoint, service),
            *(str(LOAD_RATE), str(LOAD_SECONDS), str(out)),
        ],
        env=clean_env(TTBT5_SCHEDULE_DELAY="0.2", TTBT5_METRIC_EXPORT_INTERVAL="1"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_status_lists_every_part_of_the_ha_topology_running_and_ready(ha: Path) -> None:
    status = stack(ha, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    names = set(recorded(ha))
    # 2 agents, 2 gateways, 2 Prometheus with their sidecars, the query, 3 Alertmanagers,
    # 6 Redis nodes, the two stores and the webhook: 21.
    assert len(names) == 21, names
    for name in names:
        [line] = [line for line in status.stdout.splitlines() if line.split()[:1] == [name]]
        assert line.split()[1:3] == ["running", "ready"], line


def test_killing_a_gateway_loses_no_span_sent_after_the_kill(ha: Path, tmp_path: Path) -> None:
    """SIGKILL one gateway under load from two apps, restart it 5 s later.

    Spans sent after the kill wait in the agents' queues and all reach the trace store;
    only what the dead gateway held for its sampling decision at that moment is lost. The
    span metrics, computed at the agents, count every span.
    """
    services = {"ha-load-1": "http://127.0.0.1:4317", "ha-load-2": "http://127.0.0.1:4327"}
    outs = {service: tmp_path / f"{service}.jsonl" for service in services}
    loads = [_start_load(endpoint, s, outs[s]) for s, endpoint in services.items()]
    try:
        time.sleep(8)
        gateway = recorded(ha)["gateway-1"]
        killed_at = time.time()
        os.kill(gateway.pid, signal.SIGKILL)
        time.sleep(5)
        restore(ha)
        back_at = time.time()
        for load in loads:
            output, _ = load.communicate(timeout=LOAD_SECONDS + 60)
            assert load.returncode == 0, output
    finally:
        for load in loads:
            if load.poll() is None:
                load.kill()
                load.wait()
        restore(ha)

    truth = {
        s: [tuple(json.loads(line)) for line in outs[s].read_text().splitlines()] for s in outs
    }

    def settled() -> dict[str, set[str]] | None:
        found = {service: _stored_trace_ids(service) for service in truth}
        if all(len(found[s]) >= len(truth[s]) - LOAD_RATE * 10 for s in truth):
            time.sleep(3)  # one more round of queue retries and batches
            again = {service: _stored_trace_ids(service) for service in truth}
            return again if again == found else None
        return None

    stored = wait_for("the trace store to settle", settled, timeout=90)
    missing = [(tid, at) for s in truth for tid, at in truth[s] if tid not in stored[s]]
    sent = sum(len(spans) for spans in truth.values())
    after_kill = [at - killed_at for _, at in missing if at > killed_at]
    before = sorted(killed_at - at for _, at in missing if at <= killed_at)
    print(
        f"sent {sent} spans; gateway-1 down for {back_at - killed_at:.1f}s; lost {len(missing)} "
        f"({len(missing) / sent:.2%}), all sent in the {before[-1] if before else 0:.2f}s "
        "before the kill" + (f"; {len(after_kill)} sent after it" if after_kill else "")
    )
    assert not after_kill, f"spans sent after the kill were lost: {after_kill[:10]}"
    # What the dead gateway held: spans waiting for the sampling decision, plus the SDK's
    # and the agent's batching ahead of it.
    assert all(seconds < DECISION_WAIT_S + 4 for seconds in before), before[-5:]

    def counted() -> dict[str, float] | None:
        expr = 'sum by (service_name) (traces_span_metrics_calls_total{service_name=~"ha-load-.*"})'
        found = {
            s["metric"]["service_name"]: float(s["value"][1]) for s in _query(PROMETHEUS_B, expr)
        }
        # Counted at the agents, before the gateways: exact, whatever a gateway lost.
        exact = all(found.get(s) == len(truth[s]) for s in truth)
        return found if exact else None

    found = wait_for("span metrics of every span sent", counted, timeout=30)
    print(f"span metrics: {found}; sent { ({s: len(v) for s, v in truth.items()}) }")


def _page_deliveries(since: datetime) -> list[dict[str, Any]]:
    """Notifications received since ``since`` holding a firing burn-rate page."""
    found = []
    for notification in fetch_notifications(WEBHOOK):
        received = parse_time(notification["received_at"])
        pages = [
            alert
            for alert in notification["alerts"]
            if alert["labels"].get("alertname") == "Ttbt5ErrorBudgetBurn"
            and alert["labels"].get("response") == "page"
            and alert["status"] == "firing"
        ]
        if received >= since and pages:
            found.append(notification)
    return found


def test_page_is_delivered_once_with_a_prometheus_and_an_alertmanager_killed(ha: Path) -> None:
    """The demo incident with Prometheus replica a and the first Alertmanager SIGKILLed.

    Replica b still evaluates the rules and alerts the two live Alertmanagers; they share
    the log of sent notifications, so the webhook gets each notification once.
    """
    since = datetime.now(UTC)
    demo = subprocess.Popen(
        [sys.executable, "-m", "ttbt5_otel", "demo", "--incident", "--state-dir", str(ha)],
        env=clean_env(TTBT5_STACK_DIR=str(ha)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            "the demo profile on both replicas",
            lambda: all(
                loaded_profile(f"http://127.0.0.1:{port}") == "demo"
                for port in stack_ha.PROMETHEUS_REPLICAS.values()
            ),
            timeout=60,
        )
        # Killed during the demo's normal traffic, once it has checked the stack and before
        # the outage starts to burn.
        assert demo.stdout is not None
        head = []
        for line in demo.stdout:
            head.append(line)
            if line.startswith("incident: normal traffic"):
                break
        procs = recorded(ha)
        killed_at = time.time()
        for name in ("prometheus", "alertmanager"):
            os.kill(procs[name].pid, signal.SIGKILL)
        rest, _ = demo.communicate(timeout=200)
        output = "".join(head) + rest
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        restore(ha)
    # Replica a is back with a hole in its data: the merged series must not show it.
    time.sleep(10)
    gap, samples = _largest_gap_through_the_query_layer(killed_at)
    assert demo.returncode == 0, output[-4000:]
    deliveries = _page_deliveries(since)
    assert deliveries, output[-3000:]
    contents = [
        (
            n["groupKey"],
            n["status"],
            tuple(sorted(a["fingerprint"] for a in n["alerts"] if a["status"] == "firing")),
        )
        for n in deliveries
    ]
    print(f"{len(deliveries)} page notifications: {contents}")
    assert len(contents) == len(set(contents)), f"a notification was delivered twice: {contents}"
    # The query layer's series ran on through the kill and the restart of replica a.
    print(f"query layer: {samples} samples across the kill and restart, largest gap {gap:.3f}s")
    assert samples > 20
    assert gap <= SCRAPE_INTERVAL_S + 0.25, gap


def _largest_gap_through_the_query_layer(killed_at: float) -> tuple[float, int]:
    """Largest gap between the deduplicated raw samples of one agent's ``up`` since 20 s
    before the kill, and how many samples that is."""
    now = time.time()
    window = int(now - killed_at) + 20
    expr = f'up{{job="otel-collector",instance="127.0.0.1:8889"}}[{window}s]'
    query = urllib.parse.urlencode({"query": expr, "time": f"{now:.3f}", "dedup": "true"})
    body = _get_json(f"{stack_ha.THANOS_QUERY_URL}/api/v1/query?{query}")
    [series] = body["data"]["result"]
    assert "replica" not in series["metric"]
    stamps = [float(t) for t, _ in series["values"]]
    return max(b - a for a, b in itertools.pairwise(stamps)), len(stamps)


def test_dashboards_and_slo_series_read_the_same_through_the_query_layer(ha: Path) -> None:
    """Every dashboard query answers through Thanos with the series one replica has:
    the pair is merged, not doubled, and the replica label never shows."""
    demo = subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "demo", "--seconds", "10", "--rate", "40"],
        env=clean_env(TTBT5_METRIC_EXPORT_INTERVAL="1", TTBT5_SCHEDULE_DELAY="0.2"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    wait_for(
        "the demo's series through the query layer",
        lambda: _query(stack_ha.THANOS_QUERY_URL, f"ttbt5_retry_calls_total{{{DEMO}}}"),
        timeout=30,
    )
    queries = load_script(GRAFANA_DIR / "queries.py", "ttbt5_dashboard_queries")
    compared = 0
    for query in queries.all_queries("orders-demo", rate_interval="1m", time_range="5m"):
        direct = _query(PROMETHEUS_B, query.expr)
        merged = _query(stack_ha.THANOS_QUERY_URL, query.expr)
        assert all("replica" not in s["metric"] for s in merged), query.expr
        assert len(merged) == len(direct), (query.panel, query.expr, merged, direct)
        compared += bool(direct)
    recorded_slo = _query(stack_ha.THANOS_QUERY_URL, "slo:sli_error:ratio_rate5m")
    assert recorded_slo, "no SLO recording through the query layer"
    assert len(recorded_slo) == len(_query(PROMETHEUS_B, "slo:sli_error:ratio_rate5m"))
    print(f"{compared} dashboard queries with data, identical series counts through Thanos")
    assert compared >= 10


async def test_the_cache_rides_out_a_redis_master_killed_under_load(ha: Path) -> None:
    """The stack's Redis Cluster behind a two-level cache: SIGKILL the master of the first
    slots under load; no caller sees an exception, a replica takes over, ``stack up``
    brings the node back as a member, and the cache hits Redis again."""
    url = redis_url(ha)
    assert url is not None
    assert url.startswith("redis+cluster://")
    # No memory level: every read goes to the cluster.
    cache = HierarchicalCache.from_levels(name="ha-test", l2=url)
    errors: list[BaseException] = []
    outcomes = {"hit": 0, "loaded": 0}

    async def caller(worker: int, until: float) -> None:
        while time.monotonic() < until:
            key = f"k{worker}-{int(time.monotonic() * 10) % 50}"
            try:
                found = await cache.get(key)
                if found is None:
                    outcomes["loaded"] += 1
                    await cache.set(key, f"value-{key}")
                else:
                    outcomes["hit"] += 1
                    assert found == f"value-{key}"
            except BaseException as exc:  # every failure reaching a caller counts
                errors.append(exc)
            await asyncio.sleep(0.005)

    try:
        until = time.monotonic() + 8
        tasks = [asyncio.create_task(caller(i, until)) for i in range(8)]
        await asyncio.sleep(2)
        master = recorded(ha)["redis-7001"]
        os.kill(master.pid, signal.SIGKILL)
        await asyncio.gather(*tasks)
    finally:
        await cache.close()
        restore(ha)  # the node restarts, rejoins from nodes.conf, and the cluster is healthy
    assert not errors, errors[:3]
    roles = _cluster_roles(ha)
    print(f"calls: {outcomes}; after the failover and `stack up`: {roles}")
    assert roles["127.0.0.1:7001"] == "slave"
    assert list(roles.values()).count("master") == 3
    # A fresh client reads what it writes from the healed cluster.
    again = HierarchicalCache.from_levels(name="ha-test-after", l2=url)
    try:
        await again.set("after", "ok")
        assert await again.get("after") == "ok"
        [(level, _)] = again.remote
        assert level.counts.hits >= 1
    finally:
        await again.close()


def _cluster_roles(state: Path) -> dict[str, str]:
    """``host:port`` -> master or slave, as a surviving node's ``CLUSTER NODES`` says."""
    password = (state / "redis.password").read_text().strip()
    client = redis.Redis(host="127.0.0.1", port=7002, password=password)
    try:
        text = client.execute_command("CLUSTER", "NODES")
    finally:
        client.close()
    if isinstance(text, bytes):
        text = text.decode()
    roles = {}
    for line in str(text).splitlines():
        fields = line.split()
        address = fields[1].split("@")[0]
        roles[address] = "master" if "master" in fields[2] else "slave"
    return roles
