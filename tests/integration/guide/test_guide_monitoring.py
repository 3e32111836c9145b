"""The guide's section 4 example (Enhanced Logging & Monitoring), run as written, in a separate
process exporting to a real OTLP receiver.

``GUIDE`` is the guide's snippet verbatim; only its ``src.patterns`` import prefix is changed
to ``ttbt5_otel.patterns``. It is written to its own file and run by ``RUNNER``, which:

* compiles it with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaits the result inside an
  ``async def`` run by ``asyncio.run``: the snippet's two top-level ``await`` lines become
  awaits of that coroutine, with no edit to the snippet's text (this is how ``python -m
  asyncio`` runs top-level ``await``);
* supplies what the guide leaves undefined, in the snippet's globals: ``check_db_connection``
  (sync, healthy) and ``check_cache_health`` (async, unhealthy), and ``__name__``;
* then calls the snippet's ``important_operation`` (the guide defines it but never calls it)
  inside a span, and ends without any shutdown call, as the snippet does: the exit flush of
  ``init()`` (called by ``start_monitoring``) delivers everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver, Received

pytestmark = pytest.mark.integration

# -- Section 4. Enhanced Logging & Monitoring, "Usage Example", verbatim but the prefix -----
GUIDE = """
from ttbt5_otel.patterns.logging_monitoring import (
    MonitoringSystem, StructuredLogger, monitor_performance, log_calls
)

# Setup monitoring
monitoring = MonitoringSystem()
monitoring.setup_default_handlers()

# Add health checks
monitoring.add_health_check('database', lambda: check_db_connection())
monitoring.add_health_check('cache', lambda: check_cache_health())

# Start monitoring
await monitoring.start_monitoring(interval_seconds=60)

# Use decorators for automatic monitoring
@monitor_performance()
@log_calls()
async def important_operation():
    # Your operation logic
    pass

# Manual logging with context
logger = StructuredLogger("my_service")
logger.set_context(user_id="123", session_id="abc")
await logger.info("Operation completed", operation="data_processing")
"""

RUNNER = """
import ast
import asyncio
import pathlib

import ttbt5_otel


def check_db_connection():
    return True


async def check_cache_health():
    return False


async def run_guide():
    source = pathlib.Path(__file__).with_name("guide_section_4.py").read_text()
    code = compile(source, "guide_section_4.py", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    snippet = {
        "__name__": "guide_section_4",
        "check_db_connection": check_db_connection,
        "check_cache_health": check_cache_health,
    }
    await eval(code, snippet)
    with ttbt5_otel.span("guide.request"):
        await snippet["important_operation"]()
    print("monitoring", snippet["monitoring"].is_monitoring)


asyncio.run(run_guide())
"""


def run_guide_app(
    receiver: GrpcReceiver, tmp_path: Path, files: dict[str, str], **env: str
) -> subprocess.CompletedProcess[str]:
    """Write ``files`` (the first one is run) and run it exporting to ``receiver``."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / next(iter(files)))],
        env=clean_env(TTBT5_OTLP_ENDPOINT=receiver.endpoint, TTBT5_SCHEDULE_DELAY="0.05", **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _health(received: Received) -> dict[str, float]:
    points = [p for p in received.metric_points() if p["name"] == "ttbt5.health.status"]
    assert points, sorted({p["name"] for p in received.metric_points()})
    assert {p["unit"] for p in points} == {"{status}"}
    return {p["attributes"]["health.check"]: p["value"] for p in points}


def _assert_decorators(received: Received) -> None:
    [request] = [s for s in received.spans() if s["name"] == "guide.request"]
    durations = [
        p
        for p in received.metric_points()
        if p["name"] == "ttbt5.operation.duration"
        and p["attributes"]["code.function"] == "important_operation"
    ]
    assert durations[-1]["count"] == 1
    assert durations[-1]["attributes"]["outcome"] == "success"
    assert durations[-1]["attributes"]["code.namespace"] == "guide_section_4"
    calls = [
        r for r in received.log_records() if r["attributes"].get("logger.name") == "guide_section_4"
    ]
    entry, exit_ = calls
    assert entry["body"] == "calling important_operation"
    assert exit_["body"].startswith("important_operation returned after ")
    assert {r["severity"] for r in calls} == {"INFO"}
    assert exit_["attributes"]["duration_ms"] >= 0
    assert {r["span_id"] for r in calls} == {request["span_id"]}
    assert {r["trace_id"] for r in calls} == {request["trace_id"]}


@pytest.mark.parametrize(
    ("allow", "session_id"),
    [("", "[REDACTED]"), ("session_id", "abc")],
    ids=["session-id-redacted-by-default", "session-id-allowed"],
)
def test_guide_monitoring_example(tmp_path: Path, allow: str, session_id: str) -> None:
    """Log record with its context, health gauge, duration histogram and call logs arrive."""
    with GrpcReceiver() as receiver:
        proc = run_guide_app(
            receiver,
            tmp_path,
            {"run_guide.py": RUNNER, "guide_section_4.py": GUIDE},
            OTEL_SERVICE_NAME="guide-monitoring",
            TTBT5_SCRUB_ALLOW=allow,
        )
        received = receiver.received
        assert proc.stdout.split() == ["monitoring", "True"]

        [record] = [r for r in received.log_records() if r["body"] == "Operation completed"]
        assert record["severity"] == "INFO"
        assert record["attributes"]["user_id"] == "123"
        # A session id is a credential by name; TTBT5_SCRUB_ALLOW=session_id keeps it.
        assert record["attributes"]["session_id"] == session_id
        assert record["attributes"]["operation"] == "data_processing"
        assert record["attributes"]["logger.name"] == "my_service"
        assert record["resource"]["service.name"] == "guide-monitoring"

        assert _health(received) == {"database": 1, "cache": 0}
        _assert_decorators(received)

        # setup_default_handlers: the same record on the console, fields and all.
        [line] = [x for x in proc.stderr.splitlines() if "Operation completed" in x]
        assert "my_service" in line
        assert "operation=data_processing" in line
        assert f"session_id={session_id}" in line
