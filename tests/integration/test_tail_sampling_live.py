"""Tail sampling in the collector keeps RED true: 20,000 traces through the real pipeline.

A real collector (the bundled ``otel-collector.yaml``) keeps 10 % of the ordinary traces for
a real Jaeger, and every failed or slow one. The span metrics are computed before that
sampling, so they must count every trace sent; Jaeger must hold every error trace, every
slow trace and 10 % ± 1.5 % of the rest.

The traces are single SERVER spans written straight as OTLP protobuf (the SDK would spend
minutes creating 20,000 traces on two cores; what is tested here is the collector), with
random trace ids, as the SDK makes them.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.dashboards._support import collector_environment
from tests.loopback import free_port, stop_processes, wait_until
from tests.paths import REPO
from tests.stores import Jaeger, answers_200

pytestmark = pytest.mark.integration

COLLECTOR = Path(os.environ.get("TTBT5_COLLECTOR_BIN", REPO / "collector/_build/ttbt5-otelcol"))
SERVICE = "sampling-check"
TRACES = 20_000
ERRORS = 1_000
SLOW = 500
PERCENT = 10
BATCH = 500
SLOW_SECONDS = 1.5  # over the 1 s default threshold


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _span(rng: random.Random, case: str, now_ns: int) -> Span:
    duration_ns = int(SLOW_SECONDS * 1e9) if case == "slow" else 2_000_000
    return Span(
        trace_id=rng.randbytes(16),
        span_id=rng.randbytes(8),
        name="GET /orders",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now_ns - duration_ns,
        end_time_unix_nano=now_ns,
        attributes=[_attribute("case", case), _attribute("http.request.method", "GET")],
        status=Status(code=Status.STATUS_CODE_ERROR if case == "error" else Status.STATUS_CODE_OK),
    )


def _cases() -> list[str]:
    cases = ["error"] * ERRORS + ["slow"] * SLOW + ["ordinary"] * (TRACES - ERRORS - SLOW)
    random.Random(5).shuffle(cases)
    return cases


def _send(url: str, cases: list[str]) -> None:
    rng = random.Random()  # trace ids as random as the SDK's: the policy hashes them
    resource = Resource(attributes=[_attribute("service.name", SERVICE)])
    for start in range(0, len(cases), BATCH):
        now_ns = time.time_ns()
        spans = [_span(rng, case, now_ns) for case in cases[start : start + BATCH]]
        body = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
        ).SerializeToString()
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 200


def _stored(jaeger: Jaeger, case: str) -> int:
    """Traces of ``case`` that Jaeger holds."""
    query = urllib.parse.urlencode(
        {"service": SERVICE, "tags": json.dumps({"case": case}), "limit": TRACES}
    )
    with urllib.request.urlopen(f"{jaeger.url}/api/traces?{query}", timeout=60) as reply:
        return len(json.load(reply)["data"])


def _span_metric_calls(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as reply:
        page = reply.read().decode()
    pattern = re.compile(r"^traces_span_metrics_calls_total\{(.*)\} (\S+)$")
    return sum(
        float(match.group(2))
        for match in map(pattern.match, page.splitlines())
        if match and f'service_name="{SERVICE}"' in match.group(1)
    )


def test_tail_sampling_keeps_errors_and_slow_traces_and_a_tenth_of_the_rest(
    tmp_path: Path, jaeger: Jaeger
) -> None:
    """Span metrics count all 20,000 traces; Jaeger keeps 100 % errors, 100 % slow, 10 % rest."""
    ports = {k: free_port() for k in ("grpc", "http", "prom_exporter", "telemetry", "health")}
    env = collector_environment(
        ports,
        TTBT5_COLLECTOR_HOST="127.0.0.1",
        TTBT5_COLLECTOR_QUEUE_DIR=str(tmp_path / "queue"),
        TTBT5_TRACES_BACKEND_ENDPOINT=jaeger.otlp_grpc,
        TTBT5_TRACE_SAMPLING_PERCENT=str(PERCENT),
        TTBT5_TRACE_SAMPLING_DECISION_WAIT="2s",
    )
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        collector = subprocess.Popen(
            [
                str(COLLECTOR),
                f"--config={REPO / 'otel-collector.yaml'}",
                f"--config={REPO / 'collector' / 'tail-sampling.yaml'}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        health = f"http://127.0.0.1:{ports['health']}/"
        wait_until("the collector", lambda: answers_200(health), 30, log.read_text)
        cases = _cases()
        _send(f"http://127.0.0.1:{ports['http']}/v1/traces", cases)

        metrics = f"http://127.0.0.1:{ports['prom_exporter']}/metrics"
        counted = wait_until(
            "span metrics of every trace",
            lambda: (calls := _span_metric_calls(metrics)) >= TRACES and calls,
            60,
            lambda: f"calls {_span_metric_calls(metrics)}\n{log.read_text()[-3000:]}",
        )
        # Every trace is one request: the rate the dashboards show is the true one (the
        # target allows 2 %; nothing here may be lost, so the count must be exact).
        assert abs(counted - TRACES) <= 0.02 * TRACES
        assert counted == TRACES

        ordinary = TRACES - ERRORS - SLOW

        def settled() -> tuple[int, int, int] | None:
            found = (_stored(jaeger, "error"), _stored(jaeger, "slow"), _stored(jaeger, "ordinary"))
            return found if found[0] >= ERRORS and found[1] >= SLOW else None

        errors, slow, kept = wait_until(
            "every error and slow trace in Jaeger",
            settled,
            90,
            lambda: f"{[_stored(jaeger, c) for c in ('error', 'slow', 'ordinary')]}",
            interval=2.0,
        )
        time.sleep(3)  # the last batches of ordinary traces, decided in the same round
        kept = _stored(jaeger, "ordinary")
        assert (errors, slow) == (ERRORS, SLOW)
        share = 100 * kept / ordinary
        print(f"span metrics {counted:.0f}/{TRACES}; stored: errors {errors}/{ERRORS}, "
              f"slow {slow}/{SLOW}, ordinary {kept}/{ordinary} ({share:.2f} %)")  # fmt: skip
        assert PERCENT - 1.5 <= share <= PERCENT + 1.5, f"{kept} of {ordinary} kept: {share:.2f} %"
    finally:
        stop_processes([collector])
