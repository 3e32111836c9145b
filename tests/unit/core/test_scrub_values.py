"""Credentials are recognised by their shape, wherever they sit; ordinary values pass."""

from __future__ import annotations

import logging
import time

import pytest

from tests.secret_corpus import BENIGN, SECRETS
from ttbt5_otel import ScrubAction, ScrubMatch
from ttbt5_otel._core.attributes import MAX_REPR, short_repr
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._core.scrub import (
    DROPPED,
    REDACTED,
    Scrubber,
    configure_scrubber,
    scrub_message,
)
from ttbt5_otel._core.secret_values import find_secrets


def test_the_corpus_is_big_enough_to_mean_something():
    assert len(SECRETS) >= 60
    assert len(BENIGN) >= 200
    assert all(needle in text for _, text, needle in SECRETS)


@pytest.mark.parametrize(("form", "text", "needle"), SECRETS, ids=[s[0] for s in SECRETS])
def test_every_secret_form_is_redacted_without_a_trace_of_it(form, text, needle):
    scrubbed = Scrubber().whole_text(text, "span.name")
    assert needle not in scrubbed
    assert REDACTED in scrubbed
    # Nothing of the secret survives at the marker's edges either.
    for piece in (needle[:4], needle[-4:]):
        assert scrubbed.count(piece) <= text.replace(needle, "").count(piece), form


def test_fewer_than_one_percent_of_ordinary_values_are_touched():
    scrubber = Scrubber()
    touched = [value for value in BENIGN if scrubber.whole_text(value, "span.name") != value]
    assert len(touched) / len(BENIGN) < 0.01, touched


def test_context_around_a_secret_stays_readable():
    scrubber = Scrubber()
    assert scrubber.whole_text("GET /reset?token=abc123xyz&page=2", "span.name") == (
        "GET /reset?token=[REDACTED]&page=2"
    )
    assert scrubber.whole_text("redis://:pw123456@cache:6379/0", "span.name") == (
        "redis://[REDACTED]@cache:6379/0"
    )
    assert scrubber.whole_text("Authorization: Bearer abcdefgh12345678", "x") == (
        "Authorization: [REDACTED]"
    )


def test_two_secrets_in_one_string_are_both_redacted():
    text = "password=one111 then api_key=two222 and Bearer three333three"
    scrubbed = Scrubber().whole_text(text, "log.body")
    assert not any(word in scrubbed for word in ("one111", "two222", "three333three"))
    assert scrubbed.count(REDACTED) == 3


def test_overlapping_findings_are_merged_into_one_redaction():
    findings = find_secrets("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl")
    assert len(findings) == 1


def test_strings_too_short_to_hold_a_credential_are_not_scanned():
    assert find_secrets("pw=1") == []


def test_clean_values_are_remembered_and_stay_clean():
    scrubber = Scrubber()
    assert scrubber.text("GET /api/orders/{id}", "span.name") == "GET /api/orders/{id}"
    assert scrubber.text("GET /api/orders/{id}", "span.name") == "GET /api/orders/{id}"
    assert scrubber.text("password=abc123", "span.name") == "password=[REDACTED]"


def test_value_rules_can_be_switched_off_while_name_rules_stay():
    scrubber = Scrubber(values=False)
    assert scrubber.text("password=abc123", "span.name") == "password=abc123"
    assert scrubber.value("password", "abc", "span.attribute") == REDACTED


def test_names_and_values_are_checked_inside_containers():
    scrubber = Scrubber()
    value = {"user": "bob", "db": {"password": "x", "url": "postgres://a:b12345@h/d"}}
    assert scrubber.value("config", value, "log.attribute") == {
        "user": "bob",
        "db": {"password": REDACTED, "url": "postgres://[REDACTED]@h/d"},
    }
    assert scrubber.value("hosts", ("ok", "Bearer abcdefgh12345678"), "span.attribute") == (
        "ok",
        "Bearer [REDACTED]",
    )


def test_clean_mappings_and_sequences_come_back_as_the_same_object():
    scrubber = Scrubber()
    attributes = {"http.route": "/orders/{id}", "count": 3, "tags": ["a", "b"]}
    assert scrubber.attributes(attributes, "span.attribute") is attributes


def test_short_secret_words_count_only_as_whole_name_segments():
    scrubber = Scrubber()
    assert scrubber.is_secret("code.argument.pw")
    assert scrubber.is_secret("db.pass")
    assert not scrubber.is_secret("upward")
    assert not scrubber.is_secret("compass")


def test_allowed_names_are_exempt_from_name_rules_but_values_are_still_checked():
    scrubber = Scrubber(allow=["session_hint"])
    assert scrubber.value("session_hint", "warm", "span.attribute") == "warm"
    assert scrubber.value("session_hint", "password=abc123", "span.attribute") == (
        "password=[REDACTED]"
    )


def test_callback_sees_where_and_what_and_can_keep_replace_or_drop():
    seen: list[ScrubMatch] = []

    def decide(match: ScrubMatch) -> ScrubAction | str:
        seen.append(match)
        if match.key == "internal_url":
            return ScrubAction.KEEP
        if match.rule == "jwt":
            return "<jwt>"
        if match.key == "cookie_jar":
            return ScrubAction.DROP
        return ScrubAction.REDACT

    scrubber = Scrubber(callback=decide)
    attributes = {
        "internal_url": "http://svc:abc12345@internal/",
        "note": "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0",
        "cookie_jar": "Cookie: sid=1",
        "password": "x",
        "plain": "hello",
    }
    assert scrubber.attributes(attributes, "span.attribute") == {
        "internal_url": "http://svc:abc12345@internal/",
        "note": "<jwt>",
        "password": REDACTED,
        "plain": "hello",
    }
    rules = {(m.location, m.key, m.rule) for m in seen}
    assert ("span.attribute", "password", "name") in rules
    assert ("span.attribute", "internal_url", "url_userinfo") in rules
    jwt = next(m for m in seen if m.rule == "jwt")
    assert jwt.value == attributes["note"]
    assert jwt.matched == attributes["note"]


def test_a_dropped_span_name_or_body_becomes_the_marker():
    scrubber = Scrubber(callback=lambda match: ScrubAction.DROP)
    assert scrubber.text("token=abc123", "span.name") is DROPPED
    assert scrubber.whole_text("token=abc123", "span.name") == REDACTED


def test_a_failing_callback_redacts_and_does_not_raise(monkeypatch):
    monkeypatch.setenv("TTBT5_STRICT_INTERNAL", "0")

    def broken(match: ScrubMatch) -> ScrubAction:
        raise RuntimeError(match.matched)

    scrubber = Scrubber(callback=broken)
    assert scrubber.whole_text("password=abc123", "log.body") == "password=[REDACTED]"


def test_own_messages_are_masked():
    assert scrub_message("failed to export to https://u:s3cr3tpw@collector:4318") == (
        "failed to export to https://[REDACTED]@collector:4318"
    )


def test_our_log_lines_and_their_tracebacks_are_masked(caplog):
    logger = own_logger("ttbt5_otel.test_masking")
    try:
        raise ConnectionError("cannot reach redis://:Tb9secretZ@cache:6379")
    except ConnectionError:
        with caplog.at_level(logging.WARNING, logger="ttbt5_otel.test_masking"):
            logger.warning("export to %s failed", "https://u:Msg9secretZ@collector", exc_info=True)
    text = "\n".join(caplog.text.splitlines())
    assert "Msg9secretZ" not in text
    assert "Tb9secretZ" not in text
    assert "https://[REDACTED]@collector" in text


def test_a_long_rendering_is_scrubbed_before_it_is_cut():
    # The cut at MAX_REPR falls inside the password, after its first six characters.
    value = {"padding": "x" * 208, "url": "postgres://app:Cut9secretZ@db.internal:5432/orders"}
    rendered = short_repr(value)
    assert len(rendered) <= MAX_REPR
    assert "Cut9" not in rendered


@pytest.mark.parametrize(
    "text",
    [
        "a-" * 50_000 + "token:x",
        "token_" * 20_000 + "=",
        "a." * 8_000 + "token=",
        "-----BEGIN PRIVATE KEY-----" + "A" * 100_000,
        "password" * 20_000,
    ],
    ids=["dashed", "repeated-key", "dotted", "open-key-block", "key-words"],
)
def test_long_adversarial_strings_take_linear_time(text):
    """A quadratic rule took minutes on 100 KB of `a-a-...`; linear time takes milliseconds."""
    started = time.process_time()
    find_secrets(text)
    assert time.process_time() - started < 5.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://admin:p@ss@db.example.com/app",
            "postgresql://[REDACTED]@db.example.com/app",
        ),
        ("run --db-password=CLIpw123 now", "run --db-password=[REDACTED] now"),
        ("SELECT id FROM users WHERE password = $1", None),
        ("UPDATE t SET token = %s, api_key = %(api_key)s", None),
        ("DELETE FROM s WHERE session_key = :session_key OR token = ?", None),
        ("GET session:user:1234:cart", None),
        ("SET token:abc123 1", None),
    ],
)
def test_edge_forms_are_redacted_and_placeholders_are_not(text, expected):
    assert Scrubber().whole_text(text, "span.name") == (expected or text)


def test_bytes_values_are_scanned_and_stay_bytes():
    scrubber = Scrubber()
    assert scrubber.value("payload", b"password=RAWBYTESpw123", "span.attribute") == (
        b"password=[REDACTED]"
    )
    clean = b"\x00\x01 ordinary"
    assert scrubber.value("payload", clean, "span.attribute") is clean


def test_configure_installs_value_rules_and_the_callback():
    seen: list[ScrubMatch] = []
    try:
        assert configure_scrubber().values is True
        assert configure_scrubber(values=False).text("password=abc123", "x") == "password=abc123"
        scrubber = configure_scrubber(callback=lambda m: seen.append(m) or ScrubAction.KEEP)
        assert scrubber.text("password=abc123", "log.body") == "password=abc123"
        assert [m.rule for m in seen] == ["key_value"]
    finally:
        configure_scrubber()


def test_name_matches_reach_the_callback_with_the_value_shown():
    seen: list[ScrubMatch] = []

    def keep(match: ScrubMatch) -> ScrubAction:
        seen.append(match)
        return ScrubAction.KEEP

    scrubber = Scrubber(callback=keep)
    assert scrubber.value("card.pin", 1234, "span.attribute") == 1234
    assert scrubber.value("password", "hunter2", "log.attribute") == "hunter2"
    assert [(m.key, m.value, m.matched, m.location) for m in seen] == [
        ("card.pin", "1234", "1234", "span.attribute"),
        ("password", "hunter2", "hunter2", "log.attribute"),
    ]


def test_a_failing_callback_is_reported_once_by_its_type_only(monkeypatch, caplog):
    monkeypatch.setenv("TTBT5_STRICT_INTERNAL", "0")

    def broken(match: ScrubMatch) -> ScrubAction:
        raise KeyError(match.matched)

    scrubber = Scrubber(callback=broken)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        scrubber.text("password=abc123", "log.body")
        scrubber.text("token=abc456", "log.body")
    messages = [r.getMessage() for r in caplog.records if "scrub callback" in r.getMessage()]
    assert messages == ["ttbt5_otel scrub callback raised KeyError; its matches are redacted"]


def test_bytes_and_sequences_tell_the_callback_where_they_were():
    seen: list[tuple[str | None, str]] = []

    def record(match: ScrubMatch) -> ScrubAction:
        seen.append((match.key, match.location))
        return ScrubAction.REDACT

    scrubber = Scrubber(callback=record)
    assert scrubber.value("raw", b"\xff password=abc123", "span.attribute") == (
        b"\xef\xbf\xbd password=[REDACTED]"
    )
    assert scrubber.value("hosts", ["ok", "token=abc123"], "log.attribute") == [
        "ok",
        "token=[REDACTED]",
    ]
    assert seen == [("raw", "span.attribute"), ("hosts", "log.attribute")]
    dropping = Scrubber(callback=lambda match: ScrubAction.DROP)
    assert dropping.value("raw", b"password=abc123", "span.attribute") is DROPPED
    assert dropping.value("hosts", ("ok", "token=abc123"), "span.attribute") == ("ok",)


def test_name_checks_of_a_mapping_and_short_segments_follow_the_patterns():
    scrubber = Scrubber()
    assert scrubber.needs_scrub({"user": "bob", "Password": "x"})
    assert not scrubber.needs_scrub({"user": "bob"})
    assert scrubber.is_secret("DB.PASS")
    assert not Scrubber([]).is_secret("db.pw")
