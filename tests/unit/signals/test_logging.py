"""Logging bridge, structured logger and ``log_calls``."""

import asyncio
import logging

import pytest
from opentelemetry._logs import SeverityNumber

from ttbt5_otel import get_logger, log_calls, span, traced
from ttbt5_otel._signals.log_bridge import install_bridge, installed_bridge, remove_bridge


def test_stdlib_record_becomes_one_otel_record_with_trace_ids(capture_telemetry):
    log = logging.getLogger("shop.orders")
    with span("place-order") as current:
        log.warning("stock low for %s", "sku-1", extra={"warehouse": "north"})
    [record] = capture_telemetry.logs
    otel = record.log_record
    assert otel.body == "stock low for sku-1"
    assert otel.severity_number is SeverityNumber.WARN
    assert otel.severity_text == "WARNING"
    assert otel.trace_id == current.get_span_context().trace_id
    assert otel.span_id == current.get_span_context().span_id
    assert otel.attributes["warehouse"] == "north"
    assert otel.attributes["logger.name"] == "shop.orders"
    assert (
        otel.attributes["code.function.name"]
        == "test_stdlib_record_becomes_one_otel_record_with_trace_ids"
    )
    assert capture_telemetry.spans, "a log record must not become a span"
    assert capture_telemetry.span_names() == ["place-order"]


def test_structured_logger_fields_and_contextualize(capture_telemetry):
    log = get_logger("shop.payments")
    with log.contextualize(request_id="r-1"):
        log.info("charged", amount=12.5, currency="EUR")
    log.info("after")
    first, second = capture_telemetry.logs
    assert first.log_record.attributes["request_id"] == "r-1"
    assert first.log_record.attributes["amount"] == 12.5
    assert (
        first.log_record.attributes["code.function.name"]
        == "test_structured_logger_fields_and_contextualize"
    )
    assert "request_id" not in second.log_record.attributes


async def test_contextualized_fields_follow_tasks_not_siblings(capture_telemetry):
    log = get_logger("shop.tasks")

    async def handle(request_id: str) -> None:
        log.contextualize(request_id=request_id)
        await asyncio.sleep(0)
        log.info("handled")

    await asyncio.gather(handle("a"), handle("b"))
    ids = sorted(
        r.log_record.attributes["request_id"]
        for r in capture_telemetry.logs
        if r.log_record.attributes["logger.name"] == "shop.tasks"
    )
    assert ids == ["a", "b"]


def test_bind_returns_a_new_logger_and_changes_nothing_else(capture_telemetry):
    """structlog/loguru convention: ``log.bind(k=v)`` is a new logger; chaining works."""
    base = get_logger("shop.bind")
    bound = base.bind(order_id=1)
    assert bound is not base
    bound.bind(step="pay").info("paying")
    base.info("plain")
    get_logger("shop.other").info("other")
    assert dict(bound.fields) == {"order_id": 1}
    assert dict(bound.unbind("order_id").fields) == {}
    paying, plain, other = (r.log_record.attributes for r in capture_telemetry.logs)
    assert (paying["order_id"], paying["step"]) == (1, "pay")
    assert "order_id" not in plain
    assert "order_id" not in other


def test_bound_fields_and_exception(capture_telemetry):
    log = get_logger("shop.db").bind(db="orders")
    try:
        raise ConnectionError("db down")
    except ConnectionError:
        log.exception("query failed", table="carts")
    [record] = capture_telemetry.logs
    attrs = record.log_record.attributes
    assert attrs["db"] == "orders"
    assert attrs["table"] == "carts"
    assert attrs["exception.type"] == "ConnectionError"
    assert "db down" in attrs["exception.stacktrace"]
    assert record.log_record.severity_number is SeverityNumber.ERROR


def test_secret_log_fields_are_scrubbed(capture_telemetry):
    get_logger("shop.auth").info("login", password="hunter2", user="alice")
    attrs = capture_telemetry.logs[0].log_record.attributes
    assert attrs["password"] == "[REDACTED]"
    assert attrs["user"] == "alice"


def test_user_handler_and_bridge_do_not_duplicate(capture_telemetry):
    root = logging.getLogger()
    seen: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    mine = ListHandler()
    root.addHandler(mine)
    try:
        assert install_bridge("INFO") is None, "bridge already present: must not add a second"
        logging.getLogger("shop").info("once")
    finally:
        root.removeHandler(mine)
    assert seen == ["once"]
    assert capture_telemetry.log_bodies() == ["once"]


def test_install_bridge_is_idempotent_and_removable():
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    bridge = install_bridge("INFO")
    try:
        assert bridge is not None
        assert install_bridge("INFO") is None
        assert installed_bridge() is bridge
        assert root.handlers == handlers_before, "the bridge is not a handler"
    finally:
        remove_bridge(bridge)
    assert installed_bridge() is None
    assert logging.Logger.callHandlers.__module__ == "logging"


def test_sdk_loggers_are_not_bridged(capture_telemetry):
    logging.getLogger("opentelemetry.exporter.otlp").error("export failed")
    assert capture_telemetry.logs == []


def test_log_calls_entry_exit_and_error(capture_telemetry):
    @log_calls(level=logging.INFO, log_args=True, log_result=True)
    def price(sku: str, token: str = "") -> int:
        if sku == "bad":
            raise LookupError(sku)
        return 10

    @traced(name="quote")
    def quote():
        return price("sku-1", token="secret-token")

    quote()
    with pytest.raises(LookupError):
        price("bad")
    bodies = capture_telemetry.log_bodies()
    fn = price.__qualname__
    assert bodies[0] == f"calling {fn}"
    assert bodies[1].startswith(f"{fn} returned after")
    assert bodies[3].startswith(f"{fn} raised after")
    call, ret = capture_telemetry.logs[0].log_record, capture_telemetry.logs[1].log_record
    quote_span = capture_telemetry.span("quote")
    assert call.span_id == quote_span.context.span_id
    assert call.attributes["code.kwargs.token"] == "[REDACTED]"
    assert ret.attributes["code.return"] == "10"
    assert ret.attributes["duration_ms"] >= 0
    assert capture_telemetry.logs[3].log_record.severity_number is SeverityNumber.WARN


async def test_log_calls_async_default_level_is_debug(capture_telemetry):
    @log_calls
    async def ping() -> str:
        return "pong"

    assert await ping() == "pong"
    mine = [r for r in capture_telemetry.logs if r.log_record.attributes["logger.name"] == __name__]
    assert [r.log_record.severity_text for r in mine] == ["DEBUG", "DEBUG"]
