"""``traced`` and ``span`` on every kind of function, with errors and secrets."""

import asyncio
import inspect

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from ttbt5_otel import span, traced
from ttbt5_otel._core.scrub import Scrubber


def test_bare_traced_sync_function(capture_telemetry):
    @traced
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    recorded = capture_telemetry.span(add.__qualname__)
    assert recorded.attributes["code.function"] == add.__qualname__
    assert recorded.attributes["code.namespace"] == __name__
    assert recorded.status.status_code is StatusCode.UNSET
    assert not any(k.startswith("code.argument") for k in recorded.attributes)


def test_traced_preserves_identity_and_kind():
    @traced
    async def fetch(order_id: str) -> str:
        return order_id

    @traced(name="gen")
    def gen():
        yield 1

    @traced
    async def agen():
        yield 1

    assert inspect.iscoroutinefunction(fetch)
    assert inspect.isgeneratorfunction(gen)
    assert inspect.isasyncgenfunction(agen)
    assert fetch.__name__ == "fetch"
    assert str(inspect.signature(fetch)) == "(order_id: str) -> str"


async def test_traced_async_with_options(capture_telemetry):
    @traced(name="charge", attributes={"payment.provider": "acme"}, kind=SpanKind.CLIENT)
    async def charge(order_id: str) -> str:
        await asyncio.sleep(0)
        assert trace.get_current_span().is_recording()
        return f"ok-{order_id}"

    assert await charge("o1") == "ok-o1"
    recorded = capture_telemetry.span("charge")
    assert recorded.kind is SpanKind.CLIENT
    assert recorded.attributes["payment.provider"] == "acme"


def test_exception_is_recorded_and_reraised(capture_telemetry):
    @traced
    def boom():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        boom()
    recorded = capture_telemetry.span(boom.__qualname__)
    assert recorded.status.status_code is StatusCode.ERROR
    assert recorded.status.description == "ValueError: bad input"
    [event] = recorded.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"


def test_nested_spans_have_parent_child_relation(capture_telemetry):
    @traced(name="inner")
    def inner():
        return 1

    @traced(name="outer")
    def outer():
        return inner()

    outer()
    inner_span = capture_telemetry.span("inner")
    outer_span = capture_telemetry.span("outer")
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert inner_span.context.trace_id == outer_span.context.trace_id


def test_sequential_ids_are_deterministic(capture_telemetry):
    @traced(name="one")
    def one():
        return 1

    one()
    assert capture_telemetry.span("one").context.span_id == 1
    assert capture_telemetry.span("one").context.trace_id == 1


def test_generator_span_covers_iteration_but_is_not_current_in_consumer(capture_telemetry):
    @traced(name="produce")
    def produce():
        for i in range(3):
            assert trace.get_current_span().is_recording()
            yield i

    consumed = []
    for item in produce():
        # Between items the consumer's context must not carry the generator's span.
        assert not trace.get_current_span().is_recording()
        consumed.append(item)
    assert consumed == [0, 1, 2]
    assert capture_telemetry.span_names() == ["produce"]


def test_generator_send_throw_and_close(capture_telemetry):
    @traced(name="echo")
    def echo():
        received = yield "ready"
        while True:
            try:
                received = yield received * 2
            except KeyError:
                received = -1

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(4) == 8
    assert gen.throw(KeyError("x")) == -2
    gen.close()
    recorded = capture_telemetry.span("echo")
    assert recorded.status.status_code is StatusCode.UNSET
    assert recorded.end_time is not None


def test_generator_return_value_survives(capture_telemetry):
    @traced
    def gen():
        yield 1
        return "done"

    def delegate():
        result = yield from gen()
        yield result

    assert list(delegate()) == [1, "done"]


async def test_async_generator(capture_telemetry):
    @traced(name="stream")
    async def stream():
        for i in range(2):
            await asyncio.sleep(0)
            yield i
        raise RuntimeError("stream broke")

    seen = []
    with pytest.raises(RuntimeError, match="stream broke"):
        async for item in stream():
            seen.append(item)
    assert seen == [0, 1]
    assert capture_telemetry.span("stream").status.status_code is StatusCode.ERROR


async def test_async_generator_closed_early(capture_telemetry):
    @traced(name="ticks")
    async def ticks():
        i = 0
        while True:
            yield i
            i += 1

    gen = ticks()
    assert await gen.__anext__() == 0
    await gen.aclose()
    assert capture_telemetry.span("ticks").status.status_code is StatusCode.UNSET


async def test_cancellation_is_not_an_error(capture_telemetry):
    @traced(name="slow")
    async def slow():
        await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    recorded = capture_telemetry.span("slow")
    assert recorded.status.status_code is StatusCode.UNSET
    assert recorded.attributes["ttbt5.interrupted"] == "CancelledError"


def test_capture_args_scrubs_secret_names(capture_telemetry):
    @traced(capture_args=True, record_return=True)
    def login(user: str, password: str) -> bool:
        return True

    login("alice", password="hunter2")
    attrs = capture_telemetry.span(login.__qualname__).attributes
    assert attrs["code.argument.user"] == "'alice'"
    assert attrs["code.argument.password"] == "[REDACTED]"
    assert attrs["code.return"] == "True"
    assert "hunter2" not in str(attrs)


def test_span_context_manager_with_attributes(capture_telemetry):
    with span("load-cart", cart_size=3) as current:
        current.set_attribute("cart.cached", True)
    recorded = capture_telemetry.span("load-cart")
    assert recorded.attributes["cart_size"] == 3
    assert recorded.attributes["cart.cached"] is True


def test_span_records_exception(capture_telemetry):
    with pytest.raises(KeyError), span("lookup"):
        raise KeyError("k")
    assert capture_telemetry.span("lookup").status.status_code is StatusCode.ERROR


async def test_span_async_with_and_decorator(capture_telemetry):
    async with span("async-block", step=1):
        await asyncio.sleep(0)

    @span("decorated", team="core")
    async def work():
        return 7

    assert await work() == 7
    assert await work() == 7
    assert capture_telemetry.span("async-block").attributes["step"] == 1
    decorated = [s for s in capture_telemetry.spans if s.name == "decorated"]
    assert len(decorated) == 2
    assert decorated[0].context.span_id != decorated[1].context.span_id


def test_secret_span_attributes_are_scrubbed_on_export(capture_telemetry):
    with span("call-api", api_key="sk-live-123", region="eu") as current:
        current.add_event("auth", {"authorization": "Bearer abc", "scheme": "bearer"})
    recorded = capture_telemetry.span("call-api")
    assert recorded.attributes["api_key"] == "[REDACTED]"
    assert recorded.attributes["region"] == "eu"
    assert recorded.events[0].attributes["authorization"] == "[REDACTED]"
    assert "sk-live-123" not in str(recorded.to_json())


def test_non_primitive_attributes_are_coerced(capture_telemetry):
    with span("coerce", payload={"a": 1}, tags=["x", "y"]):
        pass
    attrs = capture_telemetry.span("coerce").attributes
    assert attrs["payload"] == "{'a': 1}"
    assert list(attrs["tags"]) == ["x", "y"]


def test_allowed_names_are_not_scrubbed():
    scrubber = Scrubber(allow=["tokens_used"])
    assert not scrubber.is_secret("tokens_used")
    assert scrubber.is_secret("refresh_token")
    assert scrubber.scrub({"tokens_used": 42, "api_key": "k"}) == {
        "tokens_used": 42,
        "api_key": "[REDACTED]",
    }


async def test_one_span_object_in_overlapping_tasks_ends_each_own_span(capture_telemetry):
    """Two tasks entering the same ``span()`` object each end the span they started."""
    shared = span("db")

    async def query(seconds: float, label: str) -> None:
        async with shared as current:
            current.set_attribute("label", label)
            await asyncio.sleep(seconds)

    # The first to enter is the first to leave: a stack on the object would pop the wrong one.
    await asyncio.gather(query(0.02, "fast"), query(0.20, "slow"))
    durations = {
        s.attributes["label"]: (s.end_time - s.start_time) / 1e9 for s in capture_telemetry.spans
    }
    assert durations["slow"] >= 0.20
    assert durations["fast"] < 0.15


def test_blocks_left_out_of_order_still_end_their_own_spans(capture_telemetry):
    """Entered a then b, left a then b (possible with manual __enter__/__exit__)."""
    outer, inner = span("a"), span("b")
    first = outer.__enter__()
    second = inner.__enter__()
    outer.__exit__(None, None, None)
    assert not first.is_recording()
    assert second.is_recording()
    inner.__exit__(None, None, None)
    assert not second.is_recording()
    assert sorted(capture_telemetry.span_names()) == ["a", "b"]
    outer.__exit__(None, None, None)  # nothing left open: a no-op
