"""The gateway tier's configs: the gateway itself and the agent overlay that feeds it.

Both must pass the built distribution's own ``validate``; the agent must keep computing the
span metrics (gateways compute none) and route by trace id; the gateway's sampling policies
must stay those of the single collector's tail-sampling overlay.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO

CONFIG = REPO / "otel-collector.yaml"
GATEWAY = REPO / "collector" / "gateway.yaml"
AGENT_OVERLAY = REPO / "collector" / "agent-to-gateways.yaml"
TAIL_SAMPLING = REPO / "collector" / "tail-sampling.yaml"
_CONFIG_VARIABLE = re.compile(r"^TTBT5_")


def _binary() -> Path:
    configured = os.environ.get("TTBT5_COLLECTOR_BIN")
    path = Path(configured) if configured else REPO / "collector" / "_build" / "ttbt5-otelcol"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"collector binary not found at {path}: run `bash collector/build.sh`")
    return path


def _validate(*configs: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [str(_binary()), "validate"]
    for config in configs:
        argv += ["--config", str(config)]
    clean = {k: v for k, v in os.environ.items() if not _CONFIG_VARIABLE.match(k)}
    return subprocess.run(
        argv, capture_output=True, text=True, env={**clean, **env}, timeout=60, check=False
    )


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def test_gateway_config_validates() -> None:
    """gateway.yaml uses only components of the built distribution."""
    result = _validate(GATEWAY)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "endpoints", [None, "[127.0.0.1:24317, 127.0.0.1:24327]", "[gw-0.example:4317]"]
)
def test_agent_overlay_validates_with_a_list_of_gateways(endpoints: str | None) -> None:
    """The overlay reads its gateways as a YAML list from one variable."""
    env = {} if endpoints is None else {"TTBT5_GATEWAY_ENDPOINTS": endpoints}
    result = _validate(CONFIG, AGENT_OVERLAY, **env)
    assert result.returncode == 0, result.stderr


def test_an_empty_gateway_list_is_refused() -> None:
    """No gateway at all fails at startup instead of dropping every trace."""
    result = _validate(CONFIG, AGENT_OVERLAY, TTBT5_GATEWAY_ENDPOINTS="[]")
    assert result.returncode != 0
    assert "no endpoints specified for the static resolver" in result.stderr


def test_agent_keeps_span_metrics_and_routes_by_trace_id() -> None:
    """Span metrics stay at the agent (before any hop); traces and logs go by trace id."""
    overlay = _load(AGENT_OVERLAY)
    pipelines = overlay["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["span_metrics", "load_balancing/traces"]
    assert pipelines["logs"]["exporters"] == ["load_balancing/logs"]
    assert "metrics" not in pipelines  # the agent's Prometheus endpoint stays as it is
    for name in ("load_balancing/traces", "load_balancing/logs"):
        exporter = overlay["exporters"][name]
        assert exporter["routing_key"] == "traceID"
        otlp = exporter["protocol"]["otlp"]
        assert otlp["sending_queue"]["enabled"] is True
        assert otlp["retry_on_failure"]["enabled"] is True


def test_gateway_computes_no_metrics_and_samples_before_the_store() -> None:
    """Gateways only sample and store: a gateway's death cannot move a request rate."""
    gateway = _load(GATEWAY)
    pipelines = gateway["service"]["pipelines"]
    assert set(pipelines) == {"traces", "logs"}
    assert "connectors" not in gateway
    assert pipelines["traces"]["processors"][0] == "memory_limiter"
    assert "tail_sampling" in pipelines["traces"]["processors"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/traces"]
    for exporter in gateway["exporters"].values():
        assert exporter["sending_queue"]["storage"] == "file_storage/queue"


def test_gateway_sampling_policies_match_the_single_collector() -> None:
    """One sampling policy, whichever tier samples (the decision wait may differ)."""
    gateway = _load(GATEWAY)["processors"]["tail_sampling"]
    single = _load(TAIL_SAMPLING)["processors"]["tail_sampling"]
    for key in ("policies", "num_traces", "expected_new_traces_per_sec", "decision_cache"):
        assert gateway[key] == single[key], key
