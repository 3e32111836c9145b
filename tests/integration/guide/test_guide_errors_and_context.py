"""The guide's examples for sections 1 (application context) and 2 (error handling), run as
written, in a separate process exporting to a real OTLP receiver.

The two snippets below are copied verbatim from the guide; only their ``src.patterns``
import prefix is changed to ``ttbt5_otel.patterns``. What the guide leaves undefined is
supplied by ``PRELUDE`` and nothing else:

* section 1: ``di_container``, ``event_bus``, ``DatabaseHook``, ``CacheHook``;
* section 2: ``logger``, and the imports of ``ErrorSeverity``, ``LoggingErrorHandler`` and
  ``RetryErrorHandler`` (the snippet uses them without importing them).

``HARNESS`` then calls the guide's functions (``risky_operation`` inside a span, ``main()``)
and prints what it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver, Received

pytestmark = pytest.mark.integration

PRELUDE = """
import asyncio
import json
import logging

import ttbt5_otel
from ttbt5_otel.patterns.application_context import EventBus
from ttbt5_otel.patterns.dependency_injection import DIContainer
from ttbt5_otel.patterns.error_handling import (
    ErrorSeverity, LoggingErrorHandler, RetryErrorHandler,
)

ttbt5_otel.init()
logging.getLogger("guide").setLevel(logging.INFO)
logger = logging.getLogger("guide.app")
seen = []

di_container = DIContainer()
di_container.register("database_url", "sqlite:///guide.db")
event_bus = EventBus()
event_bus.subscribe("lifecycle.stopping", lambda: seen.append("lifecycle.stopping"))


class DatabaseHook:
    async def on_startup(self, context):
        url = context.get_dependency("database_url")
        logging.getLogger("guide.db").info("database connected to %s", url)
        seen.append("database up")

    async def on_shutdown(self, context):
        logging.getLogger("guide.db").info("database closed")
        seen.append("database down")


class CacheHook:
    async def on_startup(self, context):
        seen.append("cache up")

    async def on_shutdown(self, context):
        seen.append("cache down")
"""

# -- Section 1. Application Context Pattern, "Usage Example", verbatim but the prefix ------
GUIDE_CONTEXT = """
from ttbt5_otel.patterns.application_context import get_application_context, application_lifecycle

@application_lifecycle
async def main():
    context = get_application_context()
    
    # Setup dependencies
    context.set_container(di_container)
    context.set_event_bus(event_bus)
    
    # Add lifecycle hooks
    context.add_lifecycle_hook(DatabaseHook())
    context.add_lifecycle_hook(CacheHook())
    
    # Application will automatically startup and shutdown
    # Your application logic here
"""  # noqa: W293 - the guide's blank lines carry its indentation

# -- Section 2. Enhanced Error Handling & Validation, "Usage Example", likewise ------------
GUIDE_ERRORS = """
from ttbt5_otel.patterns.error_handling import (
    ErrorManager, ApplicationError, Validator, handle_errors
)

# Setup error manager
error_manager = ErrorManager()
error_manager.register_handler(LoggingErrorHandler(logger))
error_manager.register_handler(RetryErrorHandler(max_retries=3))

# Use decorators for automatic error handling
@handle_errors(error_manager)
async def risky_operation(data: str):
    # Validate input
    Validator.validate_length(data, min_length=1, max_length=100)
    
    # Your operation logic
    if "fail" in data:
        raise ApplicationError(
            "Operation failed",
            severity=ErrorSeverity.HIGH,
            recovery_suggestions=["Try again", "Check input data"]
        )
    
    return "Success"
"""  # noqa: W293

HARNESS = """
async def calls():
    results = {}
    for case, data in (("ok", "hello"), ("fail", "please fail"), ("empty", "")):
        with ttbt5_otel.span("guide.call", case=case):
            try:
                results[case] = await risky_operation(data)
            except ApplicationError as exc:
                results[case] = type(exc).__name__
    return results


results = asyncio.run(calls())
asyncio.run(main())
print(json.dumps({"results": results, "seen": seen}))
"""


def _run(receiver: GrpcReceiver, tmp_path: Path) -> dict:
    app = tmp_path / "guide_app.py"
    app.write_text(f"{PRELUDE}\n{GUIDE_CONTEXT}\n{GUIDE_ERRORS}\n{HARNESS}", encoding="utf-8")
    env = clean_env(
        TTBT5_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="guide-app",
        TTBT5_RETRY_BACKOFF="0",
        TTBT5_SCHEDULE_DELAY="0.05",
    )
    proc = subprocess.run(
        [sys.executable, str(app)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _last(points: list[dict], name: str, **attributes: str) -> float:
    """The last exported value of a cumulative sum with these attributes (0 if none)."""
    found = [
        p["value"]
        for p in points
        if p["name"] == name and all(p["attributes"].get(k) == v for k, v in attributes.items())
    ]
    return found[-1] if found else 0


def _assert_context(received: Received, seen: list[str]) -> None:
    assert seen == ["database up", "cache up", "lifecycle.stopping", "cache down", "database down"]
    spans = received.spans()
    # The order is in ``seen``; each hook start and stop is also its own span.
    hooks = [
        (s["name"], s["attributes"]["lifecycle.hook"])
        for s in spans
        if s["name"].startswith("lifecycle.")
    ]
    assert sorted(hooks) == sorted(
        [
            ("lifecycle.startup", "DatabaseHook"),
            ("lifecycle.startup", "CacheHook"),
            ("lifecycle.shutdown", "CacheHook"),
            ("lifecycle.shutdown", "DatabaseHook"),
        ]
    )
    shutdown = next(s for s in spans if s["name"] == "application.shutdown")
    stops = [s for s in spans if s["name"] == "lifecycle.shutdown"]
    assert {s["parent_span_id"] for s in stops} == {shutdown["span_id"]}
    logs = received.log_records()
    connected = [r for r in logs if r["body"] == "database connected to sqlite:///guide.db"]
    assert len(connected) == 1
    startup_db = next(
        s
        for s in spans
        if s["name"] == "lifecycle.startup" and s["attributes"]["lifecycle.hook"] == "DatabaseHook"
    )
    assert connected[0]["span_id"] == startup_db["span_id"]


def _assert_errors(received: Received, results: dict) -> None:
    assert results == {"ok": "Success", "fail": "ApplicationError", "empty": "ValidationError"}
    calls = {s["attributes"]["case"]: s for s in received.spans() if s["name"] == "guide.call"}
    failed = calls["fail"]
    names = [name for name, _ in failed["events"]]
    assert names.count("retry.attempt_failed") == 4, names  # 1 call + 3 retries
    [exception] = [a for name, a in failed["events"] if name == "exception"]
    assert exception["error.type"] == "ApplicationError"
    assert exception["error.severity"] == "high"
    assert exception["error.handled"] is False
    assert failed["status"] == 2  # STATUS_CODE_ERROR
    # Validation errors are not retried: one attempt, reported as final, then the error.
    empty = calls["empty"]["events"]
    assert [n for n, _ in empty] == ["retry.attempt_failed", "exception"]
    assert empty[0][1]["retry.will_retry"] is False
    assert [n for n, _ in calls["ok"]["events"]] == []

    points = received.metric_points()
    high = {"error.type": "ApplicationError", "error.severity": "high", "error.category": "unknown"}
    low = {"error.type": "ValidationError", "error.severity": "low", "error.category": "validation"}
    assert _last(points, "ttbt5.errors", **high) == 1
    assert _last(points, "ttbt5.errors", **low) == 1
    assert _last(points, "ttbt5.retry.calls", **{"retry.outcome": "failed_with_retry"}) == 1
    assert _last(points, "ttbt5.retry.calls", **{"retry.outcome": "success_without_retry"}) == 1

    logs = received.log_records()
    [record] = [r for r in logs if r["body"] == "ApplicationError: Operation failed"]
    assert record["severity"] == "ERROR"
    assert record["span_id"] == failed["span_id"]
    assert list(record["attributes"]["error.recovery_suggestions"]) == [
        "Try again",
        "Check input data",
    ]
    [invalid] = [r for r in logs if r["body"].startswith("ValidationError: value")]
    assert invalid["severity"] == "INFO"  # LOW severity


def test_guide_examples_for_context_and_errors(tmp_path: Path) -> None:
    """Both snippets, as written, deliver their spans, metrics, error events and logs."""
    with GrpcReceiver() as receiver:
        output = _run(receiver, tmp_path)
        received = receiver.received
        _assert_errors(received, output["results"])
        _assert_context(received, output["seen"])
