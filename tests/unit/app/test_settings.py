"""One settings model: precedence argument > env > file > default, and errors that name things."""

import json

import pytest

from tests.paths import REPO
from ttbt5_otel import CacheLevel, ConfigError, load_settings
from ttbt5_otel._app.settings import option_table
from ttbt5_otel._app.settings_docs import main as check_documents


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults():
    settings = load_settings(environ={})
    assert settings.cache.backend == "memory"
    assert settings.retry.attempts == 3
    assert settings.monitoring.health_port is None
    assert settings.config_file is None


def test_file_env_argument_precedence(tmp_path):
    path = write(
        tmp_path,
        "app.json",
        json.dumps(
            {
                "telemetry": {"service_name": "from-file", "sample_ratio": 0.5},
                "logging": {"level": "DEBUG", "format": "json"},
                "cache": {"max_entries": 10, "default_ttl": 60},
                "retry": {"attempts": 5},
            }
        ),
    )
    env = {"TTBT5_CACHE_MAX_ENTRIES": "20", "OTEL_SERVICE_NAME": "from-otel-env"}
    settings = load_settings(path, env, cache={"default_ttl": 5})
    assert settings.telemetry.service_name == "from-otel-env"  # env beats file
    assert settings.telemetry.sample_ratio == 0.5  # file beats default
    assert settings.telemetry.log_level == "DEBUG"  # logging.level is the bridge level
    assert settings.logging.format == "json"
    assert settings.cache.max_entries == 20  # env beats file
    assert settings.cache.default_ttl == 5.0  # argument beats file
    assert settings.retry.attempts == 5
    assert settings.config_file == str(path)


def test_config_file_from_environment_toml_and_yaml(tmp_path):
    toml = write(tmp_path, "app.toml", "[monitoring]\ninterval = 15\nhealth_port = 8081\n")
    settings = load_settings(environ={"TTBT5_CONFIG_FILE": str(toml)})
    assert settings.monitoring.interval == 15.0
    assert settings.monitoring.health_port == 8081
    yaml = write(tmp_path, "app.yaml", "cache:\n  strategy: lfu\n")
    assert load_settings(yaml, {}).cache.strategy == "lfu"


@pytest.mark.parametrize(
    ("content", "option"),
    [
        ('{"cache": {"max_entrys": 5}}', "cache.max_entrys"),
        ('{"cachin": {}}', "cachin"),
        ('{"caching": {"max_memory": 5}}', "caching.max_memory"),
        ('{"cache": {"max_entries": "many"}}', "cache.max_entries"),
        ('{"cache": {"strategy": "fifo"}}', "cache.strategy"),
        ('{"retry": {"attempts": true}}', "retry.attempts"),
        ('{"telemetry": {"sample_ratio": "1.7"}}', "sample_ratio"),
        ('{"telemetry": {"sample_ratio": [1]}}', "sample_ratio"),
        ('{"telemetry": {"servce_name": "x"}}', "servce_name"),
    ],
)
def test_bad_file_values_name_key_and_file(tmp_path, content, option):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert info.value.option == option
    assert info.value.source == str(path)
    assert str(path) in str(info.value)


def test_bad_environment_value_names_variable():
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"TTBT5_RETRY_ATTEMPTS": "three"})
    assert info.value.source == "TTBT5_RETRY_ATTEMPTS"
    assert "retry.attempts" in str(info.value)


def test_negative_values_are_rejected():
    with pytest.raises(ConfigError, match=r"monitoring.interval: -1.0 must be greater than 0"):
        load_settings(environ={}, monitoring={"interval": -1.0})


def test_unreadable_or_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.json", {})
    with pytest.raises(ConfigError, match="is not valid"):
        load_settings(write(tmp_path, "broken.json", "{"), {})
    with pytest.raises(ConfigError, match="unsupported file type"):
        load_settings(write(tmp_path, "app.ini", "[x]"), {})


def test_documents_agree_with_the_option_table(capsys):
    """.env.example and the README table are generated from the table and kept in step."""
    assert check_documents(["--root", str(REPO)]) == 0, capsys.readouterr().err


def test_every_variable_appears_once_in_the_env_example():
    env_example = (REPO / ".env.example").read_text()
    for row in option_table():
        first, *others = row.spec.env or ("",)
        if first:
            assert env_example.count(f"# {first}=") == 1, first
        for variable in others:
            assert variable in env_example, variable


def test_json_example_lists_every_setting(tmp_path):
    json_example = json.loads((REPO / "config" / "base.json.example").read_text())
    for row in option_table():
        if row.name == "log_level":
            assert "level" in json_example["logging"]
            continue
        if row.name == "scrub_callback":  # a function has no JSON form
            continue
        assert row.name in json_example[row.section], row.key
    copy = tmp_path / "base.json"
    copy.write_text((REPO / "config" / "base.json.example").read_text())
    assert load_settings(copy, {}).telemetry.service_name == "orders"


def test_environment_values_are_parsed_by_declared_type_not_guessed():
    """An optional int stays an int; 'none' is not a magic word for unset."""
    settings = load_settings(environ={"TTBT5_MONITORING_HEALTH_PORT": "8081"})
    assert settings.monitoring.health_port == 8081
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"TTBT5_MONITORING_HEALTH_PORT": "none"})
    assert info.value.option == "monitoring.health_port"
    assert load_settings(environ={"TTBT5_CACHE_STRATEGY": "LFU"}).cache.strategy == "lfu"


def test_cache_settings_build_the_levels(tmp_path):
    memory = load_settings(environ={}, cache={"max_entries": 5, "default_ttl": 7}).cache.build("a")
    assert memory.levels == (CacheLevel.L1,)
    redis = load_settings(environ={"TTBT5_CACHE_BACKEND": "redis"}).cache.build("b")
    assert redis.levels == (CacheLevel.L1, CacheLevel.L2)
    disk = load_settings(
        environ={}, cache={"backend": "disk", "disk_path": str(tmp_path / "c")}
    ).cache.build("c")
    assert disk.levels == (CacheLevel.L1, CacheLevel.DISK)


def test_retry_settings_give_a_policy(capture_telemetry):
    policy = load_settings(environ={}, retry={"attempts": 2, "backoff": 0.001}).retry.policy
    calls = []

    @policy(name="flaky")
    def flaky():
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        flaky()
    assert len(calls) == 2
    assert (
        capture_telemetry.counter_value(
            "ttbt5.retry.calls", {"retry.name": "flaky", "retry.outcome": "failed_with_retry"}
        )
        == 1
    )
