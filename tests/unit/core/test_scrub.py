"""Secret names are recognised whatever their case, extra patterns add to the defaults."""

import pytest

from ttbt5_otel._core.scrub import Scrubber, active_scrubber, configure_scrubber


@pytest.mark.parametrize(
    "name",
    ["Authorization", "AUTHORIZATION", "X-Api-Key", "Set-Cookie", "db.Password", "refreshToken"],
)
def test_secret_names_match_in_any_case(name):
    assert Scrubber().is_secret(name)
    assert Scrubber().scrub({name: "v", "user": "bob"}) == {name: "[REDACTED]", "user": "bob"}


@pytest.mark.parametrize("name", ["user", "order_id", "http.route", "item_count"])
def test_ordinary_names_are_left_alone(name):
    assert not Scrubber().is_secret(name)


def test_extra_patterns_are_case_insensitive_too():
    assert Scrubber(["Pin"]).is_secret("card_PIN")


def test_configure_keeps_the_defaults_and_applies_allow():
    try:
        scrubber = configure_scrubber(["pin"], allow=["tokens_used"])
        assert active_scrubber() is scrubber
        assert scrubber.is_secret("password")
        assert scrubber.is_secret("order_pin")
        assert not scrubber.is_secret("tokens_used")
        assert scrubber.is_secret("tokens_used_secret")
    finally:
        configure_scrubber()


def test_an_empty_pattern_list_matches_nothing():
    assert not Scrubber([]).is_secret("password")
    assert not Scrubber(["  "]).is_secret(" ")


def test_answers_stay_the_same_when_asked_again():
    scrubber = Scrubber()
    assert [scrubber.is_secret("Cookie") for _ in range(3)] == [True, True, True]
    assert [scrubber.is_secret("user") for _ in range(3)] == [False, False, False]
