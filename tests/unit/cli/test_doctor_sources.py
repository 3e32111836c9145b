"""``ttbt5-otel doctor`` says which source won: variable, guide alias, file or guide section."""

from __future__ import annotations

import pytest

from tests.unit.app.guide_blocks import guide_environ, write_base_json
from ttbt5_otel._cli.doctor import describe_config
from ttbt5_otel._cli.main import main
from ttbt5_otel._sdk.config import resolve_config


def _line(lines: list[str], name: str) -> str:
    return next(line for line in lines if line.split("=")[0].strip() == name)


def test_lines_name_the_winning_source(tmp_path):
    env = guide_environ(
        TTBT5_SERVICE_NAME="orders", TTBT5_CONFIG_FILE=str(write_base_json(tmp_path))
    )
    del env["CACHE_TTL_DEFAULT"], env["MONITORING_INTERVAL"]  # left to the file
    lines = describe_config(resolve_config({}, env), env)
    assert _line(lines, "service_name").endswith("'orders'  (from TTBT5_SERVICE_NAME)")
    assert _line(lines, "service_version").endswith("'2.0.0'  (from APP_VERSION)")
    assert _line(lines, "log_file").endswith("(from LOG_FILE)")
    assert _line(lines, "cache.max_memory_mb").endswith("100.0  (from CACHE_MAX_SIZE_MB)")
    assert _line(lines, "cache.default_ttl").endswith(
        f"3600.0  (from {tmp_path}/config/base.json: caching.default_ttl)"
    )
    assert _line(lines, "monitoring.interval").endswith("monitoring.interval_seconds)")
    assert _line(lines, "retry.backoff").endswith("0.5")  # a default names no source
    (note,) = [line for line in lines if line.startswith("  note: ")]
    assert "metrics_retention_hours = 24" in note


def test_a_bad_section_value_is_shown_not_raised():
    lines = describe_config(resolve_config({}, {}), {"TTBT5_RETRY_ATTEMPTS": "three"})
    assert lines[-1].startswith("  configuration error: retry.attempts")


def test_doctor_prints_guide_sources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in guide_environ(TTBT5_EXPORTER="none").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TTBT5_CONFIG_FILE", raising=False)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "'TTBT5'  (from APP_NAME)" in out
    assert "(from ERROR_RETRY_BACKOFF_FACTOR)" in out
