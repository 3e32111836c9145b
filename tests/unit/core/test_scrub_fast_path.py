"""The scrubber's fast path skips only what cannot change, and skips all of that.

A name known not to be secret holding a number or a string already found clean is passed
over without the per-value path (``Scrubber.value``); everything else still takes it, so a
secret is redacted and the callback sees every match however warm the caches are.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes

from ttbt5_otel import ScrubAction, ScrubMatch
from ttbt5_otel._core.scrub import (
    _MAX_CACHED_KEYS,
    _MAX_CLEAN_LENGTH,
    _MAX_CLEAN_VALUES,
    REDACTED,
    Scrubber,
)

SECRET_TEXT = "password=abc123"
SCRUBBED_TEXT = "password=[REDACTED]"


class _Counting(Scrubber):
    """A scrubber that records the names whose values take the full per-value path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def value(self, key: str, value: Any, location: str) -> Any:
        self.calls.append(key)
        return super().value(key, value, location)


class _Level(enum.IntEnum):
    LOW = 1


class _PlainMapping(Mapping[str, Any]):
    """A read-only mapping with nothing but the Mapping protocol (no ``copy``)."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_secret_names_are_redacted_whatever_the_type_of_their_value_however_often_seen():
    """A cached secret name never takes the fast path: ints, floats and bools are redacted."""
    scrubber = Scrubber()
    attributes = {"card.pin": 1234, "password": 3.5, "token": True, "db.pass": 0}
    for _ in range(3):
        assert scrubber.attributes(attributes, "span.attribute") == dict.fromkeys(
            attributes, REDACTED
        )


def test_a_clean_string_seen_before_does_not_vouch_for_the_next_string_under_that_name():
    """Only the string found clean is skipped: a new one under a known name is scanned."""
    scrubber = Scrubber()
    assert scrubber.attributes({"note": "hello"}, "span.attribute") == {"note": "hello"}
    assert scrubber.attributes({"note": SECRET_TEXT}, "span.attribute") == {"note": SCRUBBED_TEXT}
    # And the secret string is not remembered as clean under another clean name either.
    assert scrubber.attributes({"user": SECRET_TEXT}, "span.attribute") == {"user": SCRUBBED_TEXT}


def test_containers_and_bytes_under_a_known_clean_name_still_take_the_full_path():
    """Bytes, sequences and nested mappings are scanned even where the name is known clean."""
    scrubber = Scrubber()
    warm = {"payload": b"ok", "hosts": ["a"], "config": {"user": "bob"}}
    assert scrubber.attributes(warm, "span.attribute") is warm
    assert scrubber.attributes(
        {"payload": SECRET_TEXT.encode(), "hosts": ["a", SECRET_TEXT], "config": {"pw": "x"}},
        "span.attribute",
    ) == {
        "payload": SCRUBBED_TEXT.encode(),
        "hosts": ["a", SCRUBBED_TEXT],
        "config": {"pw": REDACTED},
    }


def test_without_value_rules_strings_pass_but_nested_secret_names_are_still_redacted():
    """``values=False`` skips strings under clean names, never a mapping under one."""
    scrubber = _Counting(values=False)
    first = {"config": "plain", "note": "x", "password": "hunter2"}
    assert scrubber.attributes(first, "log.attribute") == {**first, "password": REDACTED}
    scrubber.calls.clear()
    assert scrubber.attributes({"note": SECRET_TEXT}, "log.attribute") == {"note": SECRET_TEXT}
    assert scrubber.calls == []
    nested = {"config": {"password": "x", "user": "bob"}}
    expected = {"config": {"password": REDACTED, "user": "bob"}}
    assert scrubber.attributes(nested, "log.attribute") == expected


def test_known_clean_names_holding_numbers_or_clean_strings_skip_the_per_value_path():
    """The fast path is taken: no call per attribute once names and strings are known."""
    scrubber = _Counting()
    attributes = {"route": "/orders/{id}", "count": 3, "ratio": 0.5, "ok": True, "ms": 12}
    assert scrubber.attributes(attributes, "span.attribute") is attributes
    assert sorted(scrubber.calls) == sorted(attributes)
    scrubber.calls.clear()
    assert scrubber.attributes(dict(attributes, count=4), "span.attribute") == {
        **attributes,
        "count": 4,
    }
    assert scrubber.calls == []


def test_only_the_items_that_might_match_take_the_per_value_path():
    """A new string, a secret name, a new name and an IntEnum each cost one call; no more."""
    scrubber = _Counting()
    scrubber.attributes({"route": "/a", "count": 1, "password": "x", "level": 1}, "x")
    scrubber.calls.clear()
    result = scrubber.attributes(
        {"route": "/b", "count": 2, "password": "y", "fresh": 5, "level": _Level.LOW},
        "span.attribute",
    )
    assert result == {"route": "/b", "count": 2, "password": REDACTED, "fresh": 5, "level": 1}
    assert scrubber.calls == ["route", "password", "fresh", "level"]


def test_the_callback_sees_every_match_on_every_pass_and_kept_text_is_not_remembered():
    """Warm caches change nothing the callback sees: each pass reports the same matches."""
    seen: list[tuple[str | None, str]] = []

    def keep(match: ScrubMatch) -> ScrubAction:
        seen.append((match.key, match.rule))
        return ScrubAction.KEEP

    scrubber = Scrubber(callback=keep)
    attributes = {"route": "/a", "n": 1, "password": 7, "url": "redis://:pw123456@cache:6379"}
    for _ in range(3):
        assert scrubber.attributes(attributes, "span.attribute") == attributes
    assert seen == [("password", "name"), ("url", "url_userinfo")] * 3


def test_nested_names_are_dotted_and_the_callback_is_told_where_they_were():
    """Nested names are checked as ``outer.inner`` at the caller's location, warm or cold."""
    seen: list[tuple[str | None, str]] = []

    def record(match: ScrubMatch) -> ScrubAction:
        seen.append((match.key, match.location))
        return ScrubAction.REDACT

    scrubber = Scrubber(["db.x"], callback=record)
    for _ in range(2):
        assert scrubber.value("cfg", {"db": {"x": 1, "y": 2}}, "log.attribute") == {
            "db": {"x": REDACTED, "y": 2}
        }
        assert scrubber.whole_text(SECRET_TEXT, "span.name") == SCRUBBED_TEXT
    assert seen == [("cfg.db.x", "log.attribute"), (None, "span.name")] * 2


def test_a_name_or_body_seen_clean_comes_back_as_the_same_object_and_a_dirty_one_does_not():
    """``whole_text`` answers from the clean memory, and only for what was found clean."""
    scrubber = Scrubber()
    name = "GET /api/orders/{order_id}"
    assert scrubber.whole_text(name, "span.name") is name
    assert scrubber.whole_text(name, "span.name") is name
    for _ in range(2):
        assert scrubber.whole_text(SECRET_TEXT, "span.name") == SCRUBBED_TEXT


def test_the_sdks_attribute_mapping_is_read_through_its_copy_not_key_by_key(monkeypatch):
    """A BoundedAttributes is read as one dict copy; clean it comes back as itself."""
    clean = BoundedAttributes(attributes={"route": "/a", "n": 1}, immutable=True)
    dirty = BoundedAttributes(attributes={"route": "/a", "password": "x", "jwt": "eyJ"})

    def per_key(self: BoundedAttributes, key: str) -> Any:
        raise AssertionError(key)

    monkeypatch.setattr(BoundedAttributes, "__getitem__", per_key)
    scrubber = Scrubber(callback=lambda m: ScrubAction.DROP if m.key == "jwt" else None)
    assert scrubber.attributes(clean, "span.attribute") is clean
    assert scrubber.attributes(dirty, "log.attribute") == {"route": "/a", "password": REDACTED}


def test_any_other_mapping_is_read_through_the_mapping_protocol():
    """A mapping without ``copy`` is scrubbed too, into a plain dict when something changed."""
    scrubber = Scrubber()
    clean = _PlainMapping({"route": "/a"})
    assert scrubber.attributes(clean, "span.attribute") is clean
    assert scrubber.attributes(_PlainMapping({"token": "t"}), "span.attribute") == {
        "token": REDACTED
    }


def test_the_name_memory_is_bounded_and_names_past_it_are_judged_every_time():
    """No more names than the bound are remembered; a later one still gets the full path."""
    scrubber = _Counting()
    for index in range(_MAX_CACHED_KEYS + 5):
        scrubber.is_secret(f"field{index}")
    assert len(scrubber._key_cache) == _MAX_CACHED_KEYS
    for _ in range(2):
        scrubber.calls.clear()
        assert scrubber.attributes({"late.token": 1, "late": 2}, "x") == {
            "late.token": REDACTED,
            "late": 2,
        }
        assert scrubber.calls == ["late.token", "late"]


def test_the_clean_memory_is_bounded_and_is_emptied_when_full():
    """At most the bound of clean strings is held; the next one starts a fresh memory."""
    scrubber = Scrubber()
    for index in range(_MAX_CLEAN_VALUES):
        scrubber.text(f"value {index}", "x")
    assert len(scrubber._clean) == _MAX_CLEAN_VALUES
    scrubber.text("one more", "x")
    assert list(scrubber._clean) == ["one more"]


def test_only_short_clean_strings_are_remembered():
    """A string up to the length bound is remembered; a longer one is scanned each time."""
    scrubber = _Counting()
    attributes = {"edge": "a" * _MAX_CLEAN_LENGTH, "over": "b" * (_MAX_CLEAN_LENGTH + 1)}
    for _ in range(2):
        scrubber.calls.clear()
        assert scrubber.attributes(attributes, "x") is attributes
    assert scrubber.calls == ["over"]


_KEYS = st.sampled_from(["user", "route", "password", "card.pin", "config", "n", "note"])
_TEXTS = st.sampled_from(
    [
        "GET",
        "/orders/{id}",
        "hello world",
        SECRET_TEXT,
        "Bearer abcdefgh12345678",
        "postgres://app:hunter2pw@db:5432/orders",
        "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0",
    ]
)
_LEAVES = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), _TEXTS, _TEXTS.map(str.encode)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)
_MAPPINGS = st.dictionaries(_KEYS, _VALUES, max_size=6)


def _decide(match: ScrubMatch) -> ScrubAction | str:
    """A callback whose answer depends only on the match: keep, replace, drop or redact."""
    return {"key_value": ScrubAction.KEEP, "jwt": ScrubAction.DROP}.get(
        match.rule, "<x>" if match.rule == "url_userinfo" else ScrubAction.REDACT
    )


@pytest.mark.parametrize("values", [True, False])
@settings(max_examples=int(os.environ.get("TTBT5_PROPERTY_EXAMPLES", "200")), deadline=None)
@given(earlier=st.lists(_MAPPINGS, max_size=4), mapping=_MAPPINGS)
def test_warm_caches_never_change_a_result_or_what_the_callback_sees(values, earlier, mapping):
    """Whatever was scrubbed before, a mapping scrubs as on a fresh scrubber, twice over."""

    def run(scrubber: Scrubber, seen: list[Any]) -> Any:
        seen.clear()
        return scrubber.attributes(mapping, "span.attribute")

    cold_seen: list[Any] = []
    warm_seen: list[Any] = []

    def cold_decide(match: ScrubMatch) -> ScrubAction | str:
        cold_seen.append(match)
        return _decide(match)

    def warm_decide(match: ScrubMatch) -> ScrubAction | str:
        warm_seen.append(match)
        return _decide(match)

    warm = Scrubber(values=values, callback=warm_decide)
    for before in earlier:
        warm.attributes(before, "span.attribute")
    expected = run(Scrubber(values=values, callback=cold_decide), cold_seen)
    for _ in range(2):
        assert run(warm, warm_seen) == expected
        assert warm_seen == cold_seen
