"""Settings that could hang, exhaust or silently break the process are refused up front."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttbt5_otel import ConfigError
from ttbt5_otel._sdk.checks import mask_url
from ttbt5_otel._sdk.config import resolve_config, telemetry_options
from ttbt5_otel._sdk.config_file import MAX_CONFIG_BYTES, read_config_file


def _refused(environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve_config({}, environ)
    return caught.value


def test_header_names_must_be_tokens_and_values_printable() -> None:
    bad_name = _refused({"TTBT5_OTLP_HEADERS": "bad key=s3cret"})
    assert (
        str(bad_name) == "headers: 'bad key' is not a valid header name (from TTBT5_OTLP_HEADERS)"
    )
    bad_value = _refused({"OTEL_EXPORTER_OTLP_HEADERS": "x-token=abc%0Adef"})
    assert "the value of 'x-token' holds a control" in str(bad_value)
    assert "abc" not in str(bad_value), "a header value may be a credential: never quoted"
    config = resolve_config({}, {"TTBT5_OTLP_HEADERS": "Authorization=Bearer%20t0k, X-Tenant= a "})
    assert config.headers == {"authorization": "Bearer t0k", "x-tenant": "a"}


def test_credentials_in_the_endpoint_are_refused_and_never_printed() -> None:
    error = _refused({"TTBT5_OTLP_ENDPOINT": "http://admin:pw-123@127.0.0.1:4317"})
    assert "pw-123" not in str(error)
    assert "http://admin:[REDACTED]@127.0.0.1:4317" in str(error)
    assert str(error).startswith("endpoint:")
    broken = _refused({"TTBT5_OTLP_ENDPOINT": "http://admin:pw-123@127.0.0.1:port"})
    assert "pw-123" not in str(broken)
    assert mask_url("http://u:p@h:1/x") == "http://u:[REDACTED]@h:1/x"


def test_certificate_file_must_exist_and_be_regular(tmp_path: Path) -> None:
    missing = _refused({"TTBT5_OTLP_CERTIFICATE": str(tmp_path / "ca.pem")})
    assert str(missing).startswith("certificate_file:")
    directory = _refused({"TTBT5_OTLP_CERTIFICATE": str(tmp_path)})
    assert "is not a regular file" in str(directory)


def test_timeouts_are_bounded() -> None:
    assert "must be at most 120" in str(_refused({"TTBT5_SHUTDOWN_TIMEOUT": "1e9"}))
    assert "must be at most 300" in str(_refused({"TTBT5_OTLP_TIMEOUT": "100000"}))


def _timed_refusal(path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    assert time.monotonic() - started < 1.0
    return str(caught.value)


def test_config_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.json"
    os.mkfifo(fifo)
    assert "is not a regular file" in _timed_refusal(fifo), "a FIFO must not hang init()"
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    assert "is not a regular file" in _timed_refusal(zero), "a device must not fill memory"
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"telemetry": {"service_name": "x" * MAX_CONFIG_BYTES}}))
    assert "is larger than 1024 KiB" in _timed_refusal(big)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.yaml", "telemetry: [unclosed"),
        ("bad.toml", "[telemetry\nservice_name = 1"),
        ("bad.json", "{"),
        ("deep.json", "[" * 100_000 + "]" * 100_000),
        ("binary.json", "\udcff"),
    ],
)
def test_syntax_errors_name_the_file(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert str(path) in _timed_refusal(path)


_VARIABLES = sorted({v for row in telemetry_options() for v in row.variables})


@settings(max_examples=int(os.environ.get("TTBT5_PROPERTY_EXAMPLES", "300")), deadline=None)
@given(variable=st.sampled_from(_VARIABLES), raw=st.text(max_size=200))
def test_any_value_of_any_variable_is_taken_or_refused_by_name(variable: str, raw: str) -> None:
    """Random text through every variable: a valid config or a ConfigError, nothing else."""
    refusal = None
    try:
        resolve_config({}, {variable: raw})
    except ConfigError as exc:
        refusal = str(exc)
    if refusal is not None:
        assert refusal.split(":", 1)[0] in {row.key for row in telemetry_options()}
