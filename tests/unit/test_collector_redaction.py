"""The collector's redaction rules, run over the secret corpus without a collector.

``otel-collector.yaml`` masks credentials with Go RE2 patterns (the redaction processor's
``blocked_values`` and ``blocked_key_patterns``) and routes span names, status messages and
event names through them with two transform processors. The patterns use only syntax that
RE2 and Python's ``re`` read alike, so Python can apply them here the way the processor
does: each value pattern in turn, every match replaced with ``****``. This keeps the YAML
in step with ``tests/secret_corpus.py`` (the SDK's own rules are tested on the same corpus);
``tests/integration/test_collector_redaction_live.py`` proves the same on the real binary.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import pytest
import yaml

from tests.paths import REPO
from tests.secret_corpus import BENIGN, SECRETS

CONFIG = REPO / "otel-collector.yaml"
MASK = "****"
# Text outside attributes and log bodies, which the redaction processor does not read itself:
# the transform processors must route each one through it.
TEXT_FIELDS = ("span.name", "span.status.message", "spanevent.name", "log.event_name")

# Keys that name a secret (masked whatever their value) and ordinary keys that must pass.
SECRET_KEYS = (
    "db.password",
    "deploy.token",
    "password",
    "DB_PASSWORD",
    "http.request.header.authorization",
    "http.request.header.cookie",
    "http.response.header.set-cookie",
    "http.request.header.x-api-key",
    "aws.secret_access_key",
    "aws.access_key_id",
    "client_secret",
    "oauth.refresh_token",
    "app.api_key",
    "user.credentials",
    "tls.private_key",
    "session.id",
    "db.pass",
    "arg.pin",
    "azure.sas",
    "sentry.dsn",
    "request.sig",
)
ORDINARY_KEYS = (
    "service.name",
    "service.instance.id",
    "deployment.environment.name",
    "http.request.method",
    "http.route",
    "url.full",
    "db.query.text",
    "process.pid",
    "process.command_args",
    "gen_ai.usage.input_tokens",
    "gen_ai.token.type",
    "tokens_used",
    "password_policy",
    "secret_rotation_days",
    "session_count",
    "cache.key",
    "sort_key",
    "compass",
    "upward",
    "spinner",
    "exception.message",
    "exception.stacktrace",
    "ttbt5.entry",
)

# Constructs RE2 refuses (lookarounds, backreferences, possessive and atomic groups) or
# reads differently from Python (\Z is "end of text" in Python, not in RE2).
_NOT_RE2 = re.compile(r"\(\?[=!]|\(\?<[=!]|\(\?>|\\[1-9]|[*+?}]\+|\\Z|\\z")


@functools.cache
def _config() -> dict[str, Any]:
    """The parsed config, read once: tests only read it."""
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return loaded


def _setting(value: str) -> str:
    """A config string as the collector reads it: ``$$`` is the escape for a literal ``$``."""
    assert "${" not in value, f"a pattern must not depend on the environment: {value}"
    return value.replace("$$", "$")


def _redaction(name: str = "redaction") -> dict[str, Any]:
    processor: dict[str, Any] = _config()["processors"][name]
    return processor


@functools.cache
def _value_patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(_setting(p)) for p in _redaction()["blocked_values"])


@functools.cache
def _key_patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(_setting(p)) for p in _redaction()["blocked_key_patterns"])


def _mask(text: str) -> str:
    """What the redaction processor makes of a string value: each pattern in turn."""
    for pattern in _value_patterns():
        text = pattern.sub(MASK, text)
    return text


def _key_blocked(key: str) -> bool:
    return any(pattern.search(key) for pattern in _key_patterns())


def _statements(name: str) -> list[str]:
    processor = _config()["processors"][name]
    groups = [*processor["trace_statements"], *processor["log_statements"]]
    return [statement for group in groups for statement in group["statements"]]


def _copies() -> dict[str, str]:
    """Field -> the attribute transform/expose_names copies it into."""
    copied: dict[str, str] = {}
    for statement in _statements("transform/expose_names"):
        match = re.fullmatch(
            r'set\((span|spanevent|log)\.attributes\["([^"]+)"\], ([\w.]+)\)(?: where .*)?',
            statement,
        )
        assert match, f"unexpected statement in transform/expose_names: {statement}"
        context, key, field = match.groups()
        assert field.startswith(f"{context}."), statement
        copied[field] = key
    return copied


def _restores() -> tuple[dict[str, str], set[str]]:
    """Attribute -> the field transform/restore_names writes it back to; attributes deleted."""
    restored: dict[str, str] = {}
    deleted: set[str] = set()
    for statement in _statements("transform/restore_names"):
        if match := re.fullmatch(
            r'set\(([\w.]+), (span|spanevent|log)\.attributes\["([^"]+)"\]\)(?: where .*)?',
            statement,
        ):
            field, _, key = match.groups()
            restored[key] = field
        elif match := re.fullmatch(
            r'delete_key\((span|spanevent|log|resource)\.attributes, "([^"]+)"\)', statement
        ):
            deleted.add(".".join(match.groups()))
        else:
            pytest.fail(f"unexpected statement in transform/restore_names: {statement}")
    return restored, deleted


def _through_pipeline(field: str, text: str) -> str:
    """``text`` in ``field``, after expose -> redaction -> restore."""
    key = _copies()[field]
    assert not _key_blocked(key), f"{key} would mask every {field} whole"
    masked = _mask(text)
    restored, _ = _restores()
    assert restored[key] == field
    return masked


# --- the patterns themselves


def test_every_pattern_is_re2_syntax_python_reads_alike() -> None:
    """No lookaround or backreference, nothing that means one thing in RE2, another here."""
    patterns = [*_redaction()["blocked_values"], *_redaction()["blocked_key_patterns"]]
    assert patterns
    for pattern in patterns:
        assert isinstance(pattern, str), pattern
        assert not _NOT_RE2.search(pattern), f"not RE2 (or not read alike): {pattern}"
        re.compile(_setting(pattern))


def test_metrics_use_the_same_patterns_without_a_summary() -> None:
    """One list for every signal; no count attribute that would become a series label."""
    traces, metrics = _redaction(), _redaction("redaction/metrics")
    assert metrics["blocked_values"] == traces["blocked_values"]
    assert metrics["blocked_key_patterns"] == traces["blocked_key_patterns"]
    assert metrics["summary"] == "silent"
    for processor in (traces, metrics):
        assert processor["allow_all_keys"] is True
        assert processor["redact_all_types"] is True
        assert not processor.get("allowed_values")
        assert not processor.get("ignored_keys")
        assert not processor.get("ignored_key_patterns")


@pytest.mark.parametrize(("form", "text", "needle"), SECRETS, ids=[s[0] for s in SECRETS])
def test_every_secret_value_is_masked(form: str, text: str, needle: str) -> None:
    """Attribute values, log bodies, data point and resource attributes: one rule set."""
    masked = _mask(text)
    assert needle not in masked, f"{form}: {masked!r}"
    assert MASK in masked


@pytest.mark.parametrize(("form", "text", "needle"), SECRETS, ids=[s[0] for s in SECRETS])
def test_every_secret_is_masked_in_names_and_status_messages(
    form: str, text: str, needle: str
) -> None:
    """The fields the redaction processor does not read reach it through attributes."""
    for field in TEXT_FIELDS:
        masked = _through_pipeline(field, f"GET /reset {text}")
        assert needle not in masked, f"{form} in {field}: {masked!r}"


@pytest.mark.parametrize(("form", "text", "needle"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secrets_rendered_inside_arrays_are_masked(form: str, text: str, needle: str) -> None:
    """redact_all_types: an array is checked as its JSON text."""
    masked = _mask(json.dumps([text, "ok"]))
    assert needle not in masked, f"{form}: {masked!r}"


def test_ordinary_values_pass_unchanged() -> None:
    """Under 1 % of ordinary values may be altered (none are, today)."""
    altered = [value for value in BENIGN if _mask(value) != value]
    assert len(altered) < len(BENIGN) / 100, altered


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_naming_keys_are_masked_whole(key: str) -> None:
    """db.password and deploy.token on a resource never become target_info labels."""
    assert _key_blocked(key)


@pytest.mark.parametrize("key", ORDINARY_KEYS)
def test_ordinary_keys_are_not(key: str) -> None:
    """Counts and kinds named after tokens, and every key the dashboards use, pass."""
    assert not _key_blocked(key)


# --- where the processors sit


def test_every_pipeline_redacts_after_the_memory_limiter() -> None:
    """Memory limiter first; traces, logs and metrics all pass a redaction processor."""
    pipelines = _config()["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", name
    assert "redaction" in pipelines["logs"]["processors"]
    assert "redaction/metrics" in pipelines["metrics"]["processors"]
    assert "span_metrics" in pipelines["metrics"]["receivers"]


@pytest.mark.parametrize("signal", ["traces", "logs"])
def test_names_are_masked_before_any_exporter_sees_them(signal: str) -> None:
    """expose -> redaction -> restore; in traces, before the span_metrics connector."""
    pipeline = _config()["service"]["pipelines"][signal]
    processors = pipeline["processors"]
    steps = ("transform/expose_names", "redaction", "transform/restore_names")
    order = [processors.index(step) for step in steps]
    assert order == sorted(order), processors
    if signal == "traces":
        assert "span_metrics" in pipeline["exporters"]


def test_every_copied_field_is_restored_and_its_copy_removed() -> None:
    """No name stays unmasked, no helper attribute reaches a backend."""
    copies = _copies()
    assert set(copies) == set(TEXT_FIELDS)
    restored, deleted = _restores()
    assert {restored[key] for key in copies.values()} == set(copies)
    for field, key in copies.items():
        assert f"{field.split('.')[0]}.{key}" in deleted, field


def test_the_redaction_count_never_reaches_target_info() -> None:
    """A count on a resource would be a target_info label that differs between the span
    metrics' resource and the application's own."""
    _, deleted = _restores()
    assert "resource.redaction.masked.count" in deleted
    assert _redaction("redaction/metrics")["summary"] == "silent"


def test_transforms_fail_closed() -> None:
    """A statement error refuses the batch instead of passing an unchecked name on."""
    for name in ("transform/expose_names", "transform/restore_names"):
        assert _config()["processors"][name]["error_mode"] == "propagate"
