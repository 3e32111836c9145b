"""An app configured only by the guide's ``.env`` (or ``config/base.json``) exports as told.

The app runs in its own process, inside ``application_lifecycle``, against a real OTLP/gRPC
receiver: the resource carries the guide's APP_NAME / APP_VERSION / APP_ENVIRONMENT and
LOG_FILE receives the same records as the log export, with their trace ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver, Received
from tests.unit.app.guide_blocks import guide_environ, write_base_json

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import asyncio, json, logging
    import ttbt5_otel

    @ttbt5_otel.application_lifecycle
    async def main():
        settings = ttbt5_otel.get_application_context().settings
        with ttbt5_otel.span("guide.request"):
            logging.getLogger("guide.app").info("request served")
        print(json.dumps({"ttl": settings.cache.default_ttl,
                          "max_memory_mb": settings.cache.max_memory_mb,
                          "interval": settings.monitoring.interval,
                          "attempts": settings.retry.attempts}))

    asyncio.run(main())
    """
)


def _run(cwd: Path, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", APP],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _assert_exported(received: Received, log_file: Path) -> None:
    assert received.wait_for(lambda r: r.spans() and r.log_records())
    span = next(s for s in received.spans() if s["name"] == "guide.request")
    resource = span["resource"]
    assert resource["service.name"] == "TTBT5"
    assert resource["service.version"] == "2.0.0"
    assert resource["deployment.environment.name"] == "development"
    exported = [r for r in received.log_records() if r["body"] == "request served"]
    assert len(exported) == 1
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    served = [line for line in lines if line["message"] == "request served"]
    assert len(served) == 1
    assert served[0]["trace_id"] == span["trace_id"]


def test_the_guide_env_block_configures_an_app(tmp_path: Path) -> None:
    with GrpcReceiver() as receiver:
        settings = _run(tmp_path, guide_environ(TTBT5_OTLP_ENDPOINT=receiver.endpoint))
        _assert_exported(receiver.received, tmp_path / "logs" / "application.log")
    assert settings == {"ttl": 3600.0, "max_memory_mb": 100.0, "interval": 60.0, "attempts": 3}


def test_the_guide_base_json_configures_an_app(tmp_path: Path) -> None:
    config = write_base_json(tmp_path)
    env = {"TTBT5_CONFIG_FILE": str(config), "APP_ENVIRONMENT": "development"}
    with GrpcReceiver() as receiver:
        settings = _run(tmp_path, {**env, "TTBT5_OTLP_ENDPOINT": receiver.endpoint})
        # handlers: ["console", "file"] without a path writes the guide's logs/application.log
        _assert_exported(receiver.received, tmp_path / "logs" / "application.log")
    assert settings["ttl"] == 3600.0
    assert settings["max_memory_mb"] == 100.0
