"""Option precedence and validation errors that name the option and its source."""

import subprocess
import sys
import typing

import pytest

from ttbt5_otel import ConfigError
from ttbt5_otel._sdk.config import (
    DEFAULT_HTTP_ENDPOINT,
    TelemetryOptions,
    environment_variables,
    resolve_config,
    telemetry_options,
)


def test_defaults_without_environment():
    config = resolve_config({}, {})
    assert config.endpoint == "http://127.0.0.1:4317"
    assert config.protocol == "grpc"
    assert config.sample_ratio == 1.0
    assert config.exporter == "otlp"


def test_explicit_beats_ttbt5_beats_otel():
    env = {"TTBT5_SERVICE_NAME": "from-ttbt5", "OTEL_SERVICE_NAME": "from-otel"}
    assert resolve_config({}, env).service_name == "from-ttbt5"
    assert resolve_config({}, {"OTEL_SERVICE_NAME": "from-otel"}).service_name == "from-otel"
    assert resolve_config({"service_name": "explicit"}, env).service_name == "explicit"


def test_standard_otel_variables_are_honoured():
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%3D,tenant=t1",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=res-name,team=payments,service.version=1.2",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        "OTEL_BSP_SCHEDULE_DELAY": "250",
    }
    config = resolve_config({}, env)
    assert config.endpoint == "https://collector.example:4317"
    assert config.headers == {"api-key": "abc=", "tenant": "t1"}
    assert config.sample_ratio == 0.25
    assert config.service_name == "res-name"
    assert config.service_version == "1.2"
    assert config.resource_attributes == {"team": "payments"}
    assert config.metric_export_interval == 5.0
    assert config.schedule_delay == 0.25


def test_otel_service_name_beats_resource_attribute():
    env = {"OTEL_SERVICE_NAME": "svc", "OTEL_RESOURCE_ATTRIBUTES": "service.name=other"}
    assert resolve_config({}, env).service_name == "svc"


def test_http_protocol_defaults_to_4318():
    config = resolve_config({"protocol": "http/protobuf"}, {})
    assert config.endpoint == DEFAULT_HTTP_ENDPOINT


@pytest.mark.parametrize(
    ("env", "option", "source"),
    [
        ({"TTBT5_SAMPLE_RATIO": "1.5"}, "sample_ratio", "TTBT5_SAMPLE_RATIO"),
        ({"OTEL_TRACES_SAMPLER_ARG": "-0.1"}, "sample_ratio", "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, "protocol", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"TTBT5_OTLP_ENDPOINT": "collector:4317"}, "endpoint", "TTBT5_OTLP_ENDPOINT"),
        ({"TTBT5_OTLP_ENDPOINT": "http://h:99999"}, "endpoint", "TTBT5_OTLP_ENDPOINT"),
        ({"TTBT5_OTLP_TIMEOUT": "-1"}, "timeout", "TTBT5_OTLP_TIMEOUT"),
        ({"TTBT5_OTLP_TIMEOUT": "soon"}, "timeout", "TTBT5_OTLP_TIMEOUT"),
        ({"TTBT5_RUNTIME_METRICS": "maybe"}, "runtime_metrics", "TTBT5_RUNTIME_METRICS"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "headers", "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"TTBT5_LOG_LEVEL": "chatty"}, "log_level", "TTBT5_LOG_LEVEL"),
        ({"TTBT5_MAX_QUEUE_SIZE": "0"}, "max_queue_size", "TTBT5_MAX_QUEUE_SIZE"),
    ],
)
def test_bad_environment_values_name_option_and_variable(env, option, source):
    with pytest.raises(ConfigError) as info:
        resolve_config({}, env)
    assert info.value.option == option
    assert info.value.source == source
    assert option in str(info.value)
    assert source in str(info.value)


def test_bad_explicit_value_says_argument():
    with pytest.raises(
        ConfigError, match=r"sample_ratio: 2\.0 is outside 0\.\.1 \(from argument\)"
    ):
        resolve_config({"sample_ratio": 2.0}, {})


def test_unknown_option_is_rejected_with_known_list():
    with pytest.raises(ConfigError, match="servce_name: unknown option"):
        resolve_config({"servce_name": "x"}, {})


def test_every_option_documents_its_variables():
    variables = environment_variables()
    assert variables["endpoint"] == ("TTBT5_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    assert "OTEL_METRIC_EXPORT_INTERVAL" in variables["metric_export_interval"]


def test_init_options_type_matches_the_table():
    """``TelemetryOptions`` (what mypy checks ``init()`` against) is the table's telemetry rows."""
    hints = typing.get_type_hints(TelemetryOptions)
    assert list(hints) == [row.name for row in telemetry_options()]
    for row in telemetry_options():
        assert hints[row.name] == row.annotation, row.name
    assert TelemetryOptions.__required_keys__ == frozenset()


def test_a_misspelt_init_option_is_a_type_error(tmp_path):
    """mypy rejects ``init(servce_name=...)``; at run time it is a ConfigError."""
    script = tmp_path / "typo.py"
    script.write_text("import ttbt5_otel\n\nttbt5_otel.init(servce_name='x')\n")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--strict", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert 'Unexpected keyword argument "servce_name" for "init"' in result.stdout


def test_values_of_the_wrong_type_are_not_guessed():
    with pytest.raises(ConfigError, match=r"sample_ratio: expected float, got str '0.5'"):
        resolve_config({"sample_ratio": "0.5"}, {})
    assert resolve_config({"protocol": "HTTP/PROTOBUF"}, {}).protocol == "http/protobuf"
    assert resolve_config({}, {"TTBT5_LOG_LEVEL": "debug"}).log_level == "DEBUG"


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_naming_the_variable(raw):
    with pytest.raises(ConfigError, match="TTBT5_SHUTDOWN_TIMEOUT"):
        resolve_config({}, {"TTBT5_SHUTDOWN_TIMEOUT": raw})
