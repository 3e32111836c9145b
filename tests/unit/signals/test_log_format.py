"""Console log formats chosen by ``logging.format``."""

import json
import logging

import pytest

from ttbt5_otel import get_logger, span
from ttbt5_otel._signals.log_format import JsonFormatter, TextFormatter, configure_console_logging


@pytest.fixture
def bare_root():
    """The root logger without pytest's capture handlers (it adds them per test phase)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = [h for h in saved if type(h).__module__.startswith("ttbt5_otel")]
    yield root
    root.handlers, root.level = saved, level


def strip_capture_handlers() -> None:
    """pytest adds its capture handlers when the test body starts; take them off again."""
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if type(h).__module__.startswith("ttbt5_otel")]


def test_json_lines_carry_fields_trace_ids_and_scrub_secrets(bare_root, capsys, capture_telemetry):
    strip_capture_handlers()
    handler = configure_console_logging("json", "INFO")
    assert isinstance(handler.formatter, JsonFormatter)
    with span("request") as current:
        get_logger("orders").info("placed", order_id="o-1", token="abc")
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["message"] == "placed"
    assert entry["order_id"] == "o-1"
    assert entry["token"] == "[REDACTED]"
    assert entry["span_id"] == f"{current.get_span_context().span_id:016x}"


def test_text_lines_append_key_values(bare_root, capsys):
    strip_capture_handlers()
    handler = configure_console_logging("text", "INFO")
    assert isinstance(handler.formatter, TextFormatter)
    get_logger("orders").warning("slow", seconds=2)
    assert capsys.readouterr().err.strip().endswith("WARNING orders: slow seconds=2")


def test_an_application_handler_is_left_alone(bare_root):
    mine = logging.StreamHandler()
    bare_root.addHandler(mine)
    assert configure_console_logging("json", "INFO") is None
