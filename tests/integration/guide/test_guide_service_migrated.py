"""examples/guide_service_migrated.py: guide code with only its import prefix changed, exporting."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver
from tests.paths import REPO

pytestmark = pytest.mark.integration
SERVICE = REPO / "examples" / "guide_service_migrated.py"


def test_it_imports_only_the_guide_names_under_the_new_prefix() -> None:
    modules = re.findall(r"^from ([\w.]+) import", SERVICE.read_text(), re.MULTILINE)
    assert [m for m in modules if m != "asyncio"]
    assert all(m.startswith("ttbt5_otel.patterns.") for m in modules), modules


def test_the_migrated_service_exports_spans_metrics_and_logs(tmp_path) -> None:
    with GrpcReceiver() as receiver:
        result = subprocess.run(
            [sys.executable, str(SERVICE)],
            cwd=tmp_path,
            env=clean_env(TTBT5_OTLP_ENDPOINT=receiver.endpoint, APP_NAME="TTBT5"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "orders processed: ['Success', 'Success', 'Success']" in result.stdout
        received = receiver.received
        assert received.wait_for(lambda r: r.spans() and r.metric_points() and r.log_records())

    spans = received.spans()
    hooks = [s for s in spans if s["name"] == "lifecycle.startup"]
    assert [s["attributes"]["lifecycle.hook"] for s in hooks] == ["DatabaseHook"]
    assert {s["resource"]["service.name"] for s in spans} == {"TTBT5"}
    points = received.metric_points()
    errors = [p for p in points if p["name"] == "ttbt5.errors"]
    assert errors[-1]["value"] == 1  # the one call that fails after its retries
    assert errors[-1]["attributes"]["error.severity"] == "high"
    assert any(p["name"] == "ttbt5.cache.requests" for p in points)
    assert any(p["name"] == "ttbt5.health.status" for p in points)
    completed = [r for r in received.log_records() if r["body"] == "Operation completed"]
    assert len(completed) == 3
    assert {r["attributes"]["service"] for r in completed} == {"orders"}  # set_context
