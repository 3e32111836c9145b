"""examples/enhanced_integration_demo.py runs in seconds and exports all three signals."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver
from tests.paths import REPO

pytestmark = pytest.mark.integration
DEMO = REPO / "examples" / "enhanced_integration_demo.py"


def test_the_demo_exports_spans_metrics_and_logs(tmp_path) -> None:
    with GrpcReceiver() as receiver:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(DEMO)],
            cwd=tmp_path,
            env=clean_env(TTBT5_OTLP_ENDPOINT=receiver.endpoint, APP_NAME="TTBT5"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert "demo finished" in result.stdout
        received = receiver.received
        assert received.wait_for(lambda r: r.spans() and r.metric_points() and r.log_records())
    assert elapsed < 20, elapsed

    spans = received.spans()
    names = {s["name"] for s in spans}
    assert {"lifecycle.startup", "important_operation", "risky_operation"} <= names
    assert {"check_inventory", "application.shutdown"} <= names
    assert {s["resource"]["service.name"] for s in spans} == {"TTBT5"}  # the guide's APP_NAME
    handled = [
        attributes
        for s in spans
        for name, attributes in s["events"]
        if name == "exception" and attributes.get("error.handled") is True
    ]
    assert len(handled) == 3  # one ApplicationError per request, answered by the fallback

    points = received.metric_points()
    by_name = {p["name"] for p in points}
    assert {"ttbt5.cache.requests", "ttbt5.errors", "ttbt5.retry.calls"} <= by_name
    assert "ttbt5.operation.duration" in by_name
    hits = [
        p
        for p in points
        if p["name"] == "ttbt5.cache.requests" and p["attributes"]["cache.result"] == "hit"
    ]
    assert hits[-1]["value"] == 2  # three requests, one prompt: loaded once

    completed = [r for r in received.log_records() if r["body"] == "Operation completed"]
    assert len(completed) == 3
    assert all(r["trace_id"] for r in completed)
