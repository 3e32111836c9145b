"""The TTBT5 guide's variables and config/base.json load into the native settings.

The guide's names are aliases in the one option table: read after the package's own
``TTBT5_*`` and ``OTEL_*`` names, which win when both are set, and before the config file.
"""

import json
import logging

import pytest

from tests.unit.app.guide_blocks import guide_environ, write_base_json
from ttbt5_otel import ConfigError, load_settings
from ttbt5_otel._app.settings import option_table
from ttbt5_otel._sdk.config import resolve_config

RETENTION = "metrics_retention_hours"
GUIDE_VARIABLES = {
    "APP_NAME": "service_name",
    "APP_VERSION": "service_version",
    "APP_ENVIRONMENT": "environment",
    "LOG_LEVEL": "log_level",
    "LOG_FORMAT": "logging.format",
    "LOG_FILE": "log_file",
    "CACHE_BACKEND": "cache.backend",
    "CACHE_TTL_DEFAULT": "cache.default_ttl",
    "CACHE_MAX_SIZE_MB": "cache.max_memory_mb",
    "MONITORING_ENABLED": "runtime_metrics",
    "MONITORING_INTERVAL": "monitoring.interval",
    "HEALTH_CHECK_TIMEOUT": "monitoring.health_check_timeout",
    "ERROR_RETRY_MAX_ATTEMPTS": "retry.attempts",
    "ERROR_RETRY_BACKOFF_FACTOR": "retry.backoff_factor",
}


def test_each_guide_variable_is_declared_once_as_an_alias():
    """Every guide name belongs to exactly one option, and only as an alias."""
    owners = {alias: row.key for row in option_table() for alias in row.spec.aliases}
    assert owners == GUIDE_VARIABLES
    for row in option_table():
        assert not set(row.spec.env) & set(GUIDE_VARIABLES), row.key


def test_the_guide_env_block_loads_verbatim():
    settings = load_settings(environ=guide_environ())
    telemetry = settings.telemetry
    assert (telemetry.service_name, telemetry.service_version) == ("TTBT5", "2.0.0")
    assert telemetry.environment == "development"
    assert telemetry.log_level == "INFO"
    assert telemetry.log_file == "logs/application.log"
    assert telemetry.runtime_metrics is True
    assert settings.logging.format == "json"
    assert settings.cache.backend == "memory"
    assert settings.cache.default_ttl == 3600.0
    assert settings.cache.max_memory_mb == 100.0
    assert settings.monitoring.interval == 60.0
    assert settings.monitoring.health_check_timeout == 30.0
    assert settings.retry.attempts == 3
    assert settings.retry.backoff_factor == 2.0
    assert settings.sources == {key: name for name, key in GUIDE_VARIABLES.items()}


def test_init_reads_the_guide_variables_too():
    """init() resolves telemetry alone, from the same table: APP_NAME reaches service.name."""
    config = resolve_config({}, guide_environ())
    assert (config.service_name, config.service_version, config.environment) == (
        "TTBT5",
        "2.0.0",
        "development",
    )
    assert config.log_file == "logs/application.log"


def test_the_guide_base_json_loads_verbatim(tmp_path, caplog):
    path = write_base_json(tmp_path)
    with caplog.at_level(logging.WARNING, "ttbt5_otel"):
        settings = load_settings(path, {})
    telemetry = settings.telemetry
    assert (telemetry.service_name, telemetry.service_version) == ("TTBT5", "2.0.0")
    assert telemetry.log_level == "INFO"
    assert telemetry.log_file == "logs/application.log"  # handlers: ["console", "file"]
    assert telemetry.runtime_metrics is True
    assert settings.logging.format == "json"  # "structured"
    assert (settings.cache.default_ttl, settings.cache.max_memory_mb) == (3600.0, 100.0)
    assert settings.cache.strategy == "lru"
    assert settings.monitoring.interval == 60.0
    assert settings.sources["service_name"] == f"{path}: application.name"
    assert settings.sources["cache.max_memory_mb"] == f"{path}: caching.max_memory_mb"
    assert settings.sources["monitoring.interval"] == f"{path}: monitoring.interval_seconds"
    # Retention belongs to the metrics store: said, never pretended.
    (note,) = settings.notes
    assert "metrics_retention_hours = 24" in note
    assert "--storage.tsdb.retention.time=24h" in note


def test_native_names_win_over_the_guide_names(tmp_path):
    env = guide_environ(
        TTBT5_SERVICE_NAME="orders",
        TTBT5_CACHE_MAX_MEMORY_MB="8",
        TTBT5_RETRY_ATTEMPTS="5",
        TTBT5_CONFIG_FILE=str(write_base_json(tmp_path)),
    )
    settings = load_settings(environ=env)
    assert settings.telemetry.service_name == "orders"
    assert settings.sources["service_name"] == "TTBT5_SERVICE_NAME"
    assert settings.cache.max_memory_mb == 8.0
    assert settings.retry.attempts == 5
    # The guide's variable still beats the file, as any variable does.
    assert settings.monitoring.health_check_timeout == 30.0
    assert settings.sources["monitoring.health_check_timeout"] == "HEALTH_CHECK_TIMEOUT"


def test_standard_otel_variables_win_over_the_guide_names():
    env = guide_environ(
        OTEL_SERVICE_NAME="from-otel",
        OTEL_RESOURCE_ATTRIBUTES="service.version=9.9,deployment.environment.name=prod",
    )
    config = resolve_config({}, env)
    assert config.service_name == "from-otel"
    assert config.service_version == "9.9"
    assert config.environment == "prod"


def test_a_native_key_beats_its_guide_key_in_one_file(tmp_path):
    path = tmp_path / "both.json"
    path.write_text(
        json.dumps(
            {
                "telemetry": {"service_name": "native"},
                "application": {"name": "guide"},
                "cache": {"default_ttl": 5},
                "caching": {"default_ttl": 3600},
            }
        )
    )
    settings = load_settings(path, {})
    assert settings.telemetry.service_name == "native"
    assert settings.cache.default_ttl == 5.0
    assert settings.sources["cache.default_ttl"] == str(path)


@pytest.mark.parametrize(
    ("content", "option"),
    [
        ('{"logging": {"handlers": ["console", "syslog"]}}', "logging.handlers"),
        (
            '{"monitoring": {"metrics_retention_hours": "a day"}}',
            "monitoring.metrics_retention_hours",
        ),
        ('{"application": {"owner": "me"}}', "application.owner"),
        ('{"caching": {"max_memory_mb": "lots"}}', "cache.max_memory_mb"),
    ],
)
def test_bad_guide_values_name_the_key_and_file(tmp_path, content, option):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert info.value.option == option
    assert str(path) in str(info.value)


def test_a_guide_variable_that_does_not_parse_is_named_and_skipped(caplog):
    """LOG_LEVEL and friends are generic names other software sets too: warn, don't stop."""
    with caplog.at_level(logging.WARNING, "ttbt5_otel"):
        settings = load_settings(environ={"CACHE_MAX_SIZE_MB": "lots", "LOG_LEVEL": "trace"})
    assert settings.cache.max_memory_mb is None
    assert settings.telemetry.log_level == "INFO"
    assert "cache.max_memory_mb" in caplog.text
    assert "CACHE_MAX_SIZE_MB" in caplog.text
    assert "LOG_LEVEL" in caplog.text
    with pytest.raises(ConfigError) as info:  # the package's own name still fails loudly
        load_settings(environ={"TTBT5_CACHE_MAX_MEMORY_MB": "lots"})
    assert info.value.source == "TTBT5_CACHE_MAX_MEMORY_MB"


def test_handlers_without_file_write_no_file(tmp_path):
    path = tmp_path / "console.json"
    path.write_text('{"logging": {"handlers": ["console"]}}')
    assert load_settings(path, {}).telemetry.log_file is None


def test_cache_max_size_mb_bounds_the_memory_level_by_bytes():
    """CACHE_MAX_SIZE_MB: the memory level keeps about that many MiB of values, not more."""
    settings = load_settings(environ={"CACHE_MAX_SIZE_MB": "1"})
    memory = settings.cache.build("guide-bytes").l1
    for index in range(40):
        memory.set(f"k{index}", "x" * 100_000)  # 40 values of ~100 KB: ~4 MB offered
    assert 5 <= len(memory) <= 11
    assert memory.counts.size >= 29
    unbounded = load_settings(environ={}).cache.build("guide-entries").l1
    for index in range(40):
        unbounded.set(f"k{index}", "x" * 100_000)
    assert len(unbounded) == 40
