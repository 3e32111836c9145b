"""Every option of the table changes what ``init()`` sets up, not only what it parses.

Each case runs ``init()`` in a fresh process (providers are process-global) with one option
changed and compares the set-up with a run on the defaults: exactly the facts the option
governs must differ, with the values written here. A new option without a case fails
``test_every_option_has_a_case``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import clean_env
from ttbt5_otel._sdk.config import telemetry_options

PROBE = Path(__file__).with_name("init_probe.py")
_GRPC = "ttbt5_otel._sdk.otlp.grpc.FastGrpcSpanExporter"
_HTTP = "ttbt5_otel._sdk.otlp.http.FastHttpSpanExporter"

# option: (value given to init, {fact path: value expected after init})
# An option that acts only together with another is run with it, and so is the baseline.
# The spool's directory is private to this run; the module fixture removes it.
SPOOL = str(Path(tempfile.gettempdir()) / f"ttbt5-options-spool-{os.getpid()}")
LOG_FILE = str(Path(SPOOL) / "logs" / "application.log")
COMPANIONS: dict[str, dict[str, Any]] = {
    "certificate_file": {"protocol": "http/protobuf"},
    "spool_max_mb": {"spool_dir": SPOOL},
    "log_file_max_mb": {"log_file": LOG_FILE},
    "log_file_backups": {"log_file": LOG_FILE},
}
CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "service_name": ("orders", {"resource.service.name": "orders"}),
    "service_version": ("1.2.3", {"resource.service.version": "1.2.3"}),
    "service_namespace": ("shop", {"resource.service.namespace": "shop"}),
    "environment": ("staging", {"resource.deployment.environment.name": "staging"}),
    "resource_attributes": ({"team": "payments"}, {"resource.team": "payments"}),
    "exporter": (
        "console",
        {"span_exporter.class": "ttbt5_otel._sdk.exporters.ConsoleSpanExporter"},
    ),
    "endpoint": ("http://127.0.0.1:14317", {"span_exporter._endpoint": "127.0.0.1:14317"}),
    "protocol": ("http/protobuf", {"span_exporter.class": _HTTP}),
    "headers": ({"x-tenant": "t1"}, {"span_exporter._headers": "(('x-tenant', 't1'),)"}),
    "timeout": (3.5, {"span_exporter._timeout": 3.5}),
    "insecure": (False, {"span_exporter._insecure": False}),
    "certificate_file": ("/etc/hosts", {"span_exporter.verify": "/etc/hosts"}),
    "sample_ratio": (0.25, {"sampler": "ParentBased{root:TraceIdRatioBased{0.25},"}),
    "metric_export_interval": (2.5, {"metric_interval_ms": [2500.0]}),
    "max_queue_size": (
        4096,
        {"processors.0._max_queue_size": 4096, "log_processors.0._max_queue_size": 4096},
    ),
    "max_export_batch_size": (
        64,
        {"processors.0._max_export_batch_size": 64, "log_processors.0._max_export_batch_size": 64},
    ),
    "schedule_delay": (
        0.25,
        {"processors.0._schedule_delay": 0.25, "log_processors.0._schedule_delay": 0.25},
    ),
    "instrument": (["requests"], {"instrumented": ["requests"]}),
    "instrument_asyncio": (False, {"asyncio": False}),
    "runtime_metrics": (False, {"runtime_metrics": []}),
    "logging_bridge": (False, {"bridge_levels": []}),
    "log_level": ("WARNING", {"bridge_levels": [30]}),
    "log_file": (LOG_FILE, {"log_file.path": LOG_FILE}),
    "log_file_max_mb": (0.5, {"log_file.max_bytes": 524288}),
    "log_file_backups": (2, {"log_file.backups": 2}),
    "shutdown_timeout": (1.5, {"flush_budget_ms": 1500}),
    "spool_dir": (SPOOL, {"span_exporter.spool_dir": SPOOL}),
    "spool_max_mb": (1.5, {"span_exporter.spool_max_bytes": 1572864}),
    "scrub_patterns": (["cvv"], {"secret_custom_name": True}),
    "scrub_allow": (["tokens_used"], {"secret_tokens_used": False}),
    "scrub_values": (False, {"url_password_scrubbed": False}),
    # The probe turns this name into a callback that keeps every match.
    "scrub_callback": ("keep_everything", {"url_password_scrubbed": False}),
    "metric_cardinality_limit": (17, {"cardinality_limit": 17}),
}


def _run(options: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(options)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    facts: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return facts


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for index, inner in enumerate(value):
            out.update(_flatten(inner, f"{prefix}{index}."))
        return out
    return {prefix[:-1]: value}


@pytest.fixture(scope="module")
def baselines() -> Iterator[dict[str, dict[str, Any]]]:
    runs = {"": _flatten(_run({}))}
    for option, companions in COMPANIONS.items():
        runs[option] = _flatten(_run(companions))
    yield runs
    shutil.rmtree(SPOOL, ignore_errors=True)


def test_every_option_has_a_case() -> None:
    assert sorted(CASES) == sorted(row.name for row in telemetry_options())


@pytest.mark.parametrize("option", sorted(CASES))
def test_option_takes_effect(option: str, baselines: dict[str, dict[str, Any]]) -> None:
    value, expected = CASES[option]
    defaults = baselines.get(option, baselines[""])
    facts = _flatten(_run({**COMPANIONS.get(option, {}), option: value}))
    for path, wanted in expected.items():
        got = facts.get(path, "None")
        if isinstance(wanted, str) and wanted.endswith(","):
            assert str(got).startswith(wanted), (path, got)
        else:
            assert got == wanted, (path, got)
        assert defaults.get(path, "None") != got, f"{path} is {got!r} without {option} too"


def test_init_rate_limits_the_sdk_exporter_warnings(baselines: dict[str, dict[str, Any]]) -> None:
    """During an outage the SDK warns on every failed export; init() installs the limiter."""
    assert baselines[""]["sdk_warning_filters"] == [
        "opentelemetry.exporter.otlp.proto.grpc.exporter",
        "opentelemetry.sdk._shared_internal",
    ]
