"""No planted secret leaves an ``init()`` app: every byte the SDK sends is searched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver, HttpReceiver, Received
from tests.secret_corpus import SECRETS

pytestmark = pytest.mark.integration
APP = Path(__file__).parent / "apps" / "leaky_app.py"
RESOURCE_NEEDLES = ("ResDbPassw0rd42", "ResDeployTok3n42", "ResUrlPassw0rd42")


def _run(endpoint: str, **env: str) -> None:
    result = subprocess.run(
        [sys.executable, str(APP)],
        env=clean_env(TTBT5_OTLP_ENDPOINT=endpoint, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"planted": len(SECRETS)}


def _wire(received: Received) -> bytes:
    with received.lock:
        requests = [*received.traces, *received.logs, *received.metrics]
    return b"".join(request.SerializeToString() for request in requests)


def _leaks(wire: bytes) -> list[str]:
    needles = [(form, needle) for form, _, needle in SECRETS]
    needles += [("resource", needle) for needle in RESOURCE_NEEDLES]
    return [form for form, needle in needles if needle.encode() in wire]


def _assert_everything_arrived_scrubbed(received: Received) -> None:
    spans = received.spans()
    names = [s["name"] for s in spans]
    # Three spans per secret plus the connect() and the handled-error scopes: data flows,
    # only the credentials inside it are gone.
    assert sum(name.startswith("GET /reset ") for name in names) == len(SECRETS)
    assert "GET /reset [REDACTED]" in names
    logs = received.log_records()
    assert sum(r["body"].startswith("login failed for ") for r in logs) == len(SECRETS)
    points = [p for p in received.metric_points() if p["name"] == "leaky.requests"]
    assert points, "the planted counter was not exported"
    resource = spans[0]["resource"]
    assert resource["db.password"] == "[REDACTED]"
    assert resource["deploy.source"] == "https://[REDACTED]@git.example.com/app.git"


def test_no_secret_reaches_the_wire_over_grpc():
    with GrpcReceiver() as receiver:
        _run(receiver.endpoint)
        wire = _wire(receiver.received)
        assert _leaks(wire) == []
        _assert_everything_arrived_scrubbed(receiver.received)


def test_no_secret_reaches_the_wire_over_http():
    with HttpReceiver() as receiver:
        _run(receiver.endpoint, TTBT5_OTLP_PROTOCOL="http/protobuf")
        assert _leaks(_wire(receiver.received)) == []


def test_turning_value_scrubbing_off_is_visible_on_the_wire():
    """The control: with value rules off, the same app leaks, so the test above can fail."""
    with GrpcReceiver() as receiver:
        _run(receiver.endpoint, TTBT5_SCRUB_VALUES="false")
        leaked = _leaks(_wire(receiver.received))
        assert len(leaked) > len(SECRETS) // 2
