"""``ttbt5-otel traces`` and ``ttbt5-otel trace``: parsing, tree, formatting and errors.

The JSON below was captured from the real stores (Jaeger v2 v1.76.0 with its in-memory
store, VictoriaLogs v1.52.1) after exporting a trace with the OpenTelemetry SDK: a SERVER
root in ``shop``, an internal child, a CLIENT child with status ERROR and an exception,
and a SERVER span in ``payments`` under it, with log records inside the spans. Only the
SDK's own attributes and stack traces were trimmed. The commands run in-process against a
loopback HTTP server that answers with these captures.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.loopback import clean_env, free_port, serve
from tests.paths import REPO
from ttbt5_otel._cli.main import main
from ttbt5_otel._cli.trace_render import format_duration, format_time, summary_line, trace_lines
from ttbt5_otel._cli.trace_view import (
    StoreError,
    base_url,
    normalise_trace_id,
    parse_logs,
    parse_since,
    parse_trace,
    span_tree,
    summarise,
)

TRACE_ID = "fa6a0eafa838edfcff0fdcfd42afb641"
ROOT, LOAD = "658686a643bfdb06", "fd5ad46bd4445b55"
CHARGE, POST = "19dfd24b426b6793", "ca016e4d7151f34f"

# GET {jaeger}/api/traces/fa6a0eafa838edfcff0fdcfd42afb641
JAEGER_TRACE = """
{
      "data": [
        {
          "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
          "spans": [
            {
              "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
              "spanID": "fd5ad46bd4445b55",
              "operationName": "load order",
              "references": [
                {
                  "refType": "CHILD_OF",
                  "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
                  "spanID": "658686a643bfdb06"
                }
              ],
              "startTime": 1795835867931105,
              "duration": 2116,
              "tags": [{"key": "span.kind", "type": "string", "value": "internal"}],
              "logs": [],
              "processID": "p1",
              "warnings": null
            },
            {
              "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
              "spanID": "ca016e4d7151f34f",
              "operationName": "POST /charge",
              "references": [
                {
                  "refType": "CHILD_OF",
                  "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
                  "spanID": "19dfd24b426b6793"
                }
              ],
              "startTime": 1795835867936425,
              "duration": 2672,
              "tags": [
                {"key": "error", "type": "bool", "value": true},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {
                  "key": "otel.status_description",
                  "type": "string",
                  "value": "insufficient funds"
                },
                {"key": "span.kind", "type": "string", "value": "server"}
              ],
              "logs": [
                {
                  "timestamp": 1795835867939071,
                  "fields": [
                    {"key": "event", "type": "string", "value": "exception"},
                    {
                      "key": "exception.message",
                      "type": "string",
                      "value": "insufficient funds"
                    },
                    {"key": "exception.type", "type": "string", "value": "RuntimeError"}
                  ]
                }
              ],
              "processID": "p2",
              "warnings": null
            },
            {
              "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
              "spanID": "19dfd24b426b6793",
              "operationName": "charge card",
              "references": [
                {
                  "refType": "CHILD_OF",
                  "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
                  "spanID": "658686a643bfdb06"
                }
              ],
              "startTime": 1795835867936389,
              "duration": 5987,
              "tags": [
                {"key": "error", "type": "bool", "value": true},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "span.kind", "type": "string", "value": "client"}
              ],
              "logs": [
                {
                  "timestamp": 1795835867940675,
                  "fields": [
                    {"key": "event", "type": "string", "value": "exception"},
                    {
                      "key": "exception.message",
                      "type": "string",
                      "value": "payment failed: HTTP 402"
                    },
                    {"key": "exception.type", "type": "string", "value": "ValueError"}
                  ]
                }
              ],
              "processID": "p1",
              "warnings": null
            },
            {
              "traceID": "fa6a0eafa838edfcff0fdcfd42afb641",
              "spanID": "658686a643bfdb06",
              "operationName": "GET /orders/{id}",
              "references": [],
              "startTime": 1795835867927656,
              "duration": 15754,
              "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
              "logs": [],
              "processID": "p1",
              "warnings": null
            }
          ],
          "processes": {
            "p1": {
              "serviceName": "shop",
              "tags": [{"key": "telemetry.sdk.language", "type": "string", "value": "python"}]
            },
            "p2": {
              "serviceName": "payments",
              "tags": [{"key": "telemetry.sdk.language", "type": "string", "value": "python"}]
            }
          },
          "warnings": null
        }
      ],
      "total": 0,
      "limit": 0,
      "offset": 0,
      "errors": null
    }
"""

# One trace of GET {jaeger}/api/traces?service=okshop: status OK, no error.
OK_TRACE = {
    "traceID": "5fd31ba2d1888c304f3181de60ee7535",
    "spans": [
        {
            "traceID": "5fd31ba2d1888c304f3181de60ee7535",
            "spanID": "de249b869d4017aa",
            "operationName": "ok-op",
            "references": [],
            "startTime": 1795835669252198,
            "duration": 28,
            "tags": [
                {"key": "order.id", "type": "string", "value": "42"},
                {"key": "otel.status_code", "type": "string", "value": "OK"},
                {"key": "span.kind", "type": "string", "value": "internal"},
            ],
            "logs": [],
            "processID": "p1",
            "warnings": None,
        }
    ],
    "processes": {"p1": {"serviceName": "okshop", "tags": []}},
    "warnings": None,
}

# GET {jaeger}/api/services
SERVICES = '{"data":["shop","okshop","payments"],"total":3,"limit":0,"offset":0,"errors":null}'
# GET {jaeger}/api/traces/<an id Jaeger does not know>: HTTP 404
NOT_FOUND = (
    '{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}'
)

# GET {victorialogs}/select/logsql/query?query=trace_id:"..." (JSON lines, in the store's
# order, not by time), the stream and SDK fields trimmed. The last two are made up: a
# record whose span is not in the trace, and one with only a severity number.
LOG_RECORDS = [
    {
        "_msg": "order 42 requested",
        "_time": "2026-11-28T03:17:47.927694592Z",
        "scope.name": "shop",
        "service.name": "shop",
        "severity_number": "9",
        "severity_text": "INFO",
        "span_id": "658686a643bfdb06",
        "trace_id": "fa6a0eafa838edfcff0fdcfd42afb641",
    },
    {
        "_msg": "charging order 42 failed",
        "_time": "2026-11-28T03:17:47.940718336Z",
        "scope.name": "shop",
        "service.name": "shop",
        "severity_number": "17",
        "severity_text": "ERROR",
        "span_id": "19dfd24b426b6793",
        "trace_id": "fa6a0eafa838edfcff0fdcfd42afb641",
    },
    {
        "_msg": "card 4242 declined by the bank",
        "_time": "2026-11-28T03:17:47.936459776Z",
        "scope.name": "payments",
        "service.name": "payments",
        "severity_number": "13",
        "severity_text": "WARN",
        "span_id": "ca016e4d7151f34f",
        "trace_id": "fa6a0eafa838edfcff0fdcfd42afb641",
    },
    {
        "_msg": "retry queued\nattempt 2 of 3",
        "_time": "2026-11-28T03:17:47.950000000Z",
        "service.name": "shop",
        "severity_number": "9",
        "severity_text": "INFO",
        "span_id": "00000000000000aa",
        "trace_id": "fa6a0eafa838edfcff0fdcfd42afb641",
    },
    {
        "_msg": "password=hunter2 rejected",
        "_time": "2026-11-28T03:17:47.929000000Z",
        "service.name": "shop",
        "severity_number": "5",
        "span_id": "fd5ad46bd4445b55",
        "trace_id": "fa6a0eafa838edfcff0fdcfd42afb641",
    },
]
LOG_LINES = "\n".join(json.dumps(record) for record in LOG_RECORDS) + "\n"

EXPECTED_TREE = [
    (
        "trace fa6a0eafa838edfcff0fdcfd42afb641  4 spans, 2 errors, 15.75 ms, "
        "started 2026-11-28T03:17:47.927Z"
    ),
    "GET /orders/{id}  (shop, server)  15.75 ms",
    "  log 03:17:47.927 INFO  order 42 requested",
    "  load order  (shop, internal)  2.12 ms",
    "    log 03:17:47.929 DEBUG password=[REDACTED] rejected",
    "  charge card  (shop, client)  5.99 ms  ERROR",
    "    exception ValueError: payment failed: HTTP 402",
    "    POST /charge  (payments, server)  2.67 ms  ERROR: insufficient funds",
    "      exception RuntimeError: insufficient funds",
    "      log 03:17:47.936 WARN  card 4242 declined by the bank",
    "    log 03:17:47.940 ERROR charging order 42 failed",
    "logs (in no span of this trace):",
    "  log 03:17:47.950 INFO  [shop] retry queued",
    "      attempt 2 of 3",
]


def jaeger_trace() -> dict:
    return json.loads(JAEGER_TRACE)["data"][0]


# --- a loopback stand-in for Jaeger and VictoriaLogs


Route = tuple[int, str]


class FakeStore:
    """An HTTP server on a free loopback port answering GET by path; records each request."""

    def __init__(self, routes: dict[str, Route | Callable[[dict[str, str]], Route]]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, dict[str, str]]] = []

        def get(request: BaseHTTPRequestHandler) -> None:
            parts = urllib.parse.urlsplit(request.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            self.requests.append((parts.path, query))
            route = self.routes.get(parts.path, (404, "404 page not found"))
            status, body = route(query) if callable(route) else route
            data = body.encode()
            request.send_response(status)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)

        self.server: ThreadingHTTPServer = serve(get, "GET")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stores() -> Iterator[Callable[..., FakeStore]]:
    started: list[FakeStore] = []

    def start(routes: dict[str, Route | Callable[[dict[str, str]], Route]]) -> FakeStore:
        store = FakeStore(routes)
        started.append(store)
        return store

    yield start
    for store in started:
        store.close()


@pytest.fixture(autouse=True)
def _no_store_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTBT5_JAEGER_URL", raising=False)
    monkeypatch.delenv("TTBT5_VICTORIALOGS_URL", raising=False)


def search_route(query: dict[str, str]) -> Route:
    found = {"shop": [jaeger_trace()], "payments": [jaeger_trace()], "okshop": [OK_TRACE]}
    return 200, json.dumps({"data": found.get(query["service"], []), "errors": None})


# --- parsing Jaeger's answer


def test_a_jaeger_trace_is_parsed_into_spans_with_service_kind_status_and_exceptions() -> None:
    """Service from processes, kind from span.kind, ERROR from the error/otel tags."""
    spans = {s.span_id: s for s in parse_trace(jaeger_trace()).spans}
    root, charge, post = spans[ROOT], spans[CHARGE], spans[POST]
    assert (root.name, root.service, root.kind, root.parent_id) == (
        "GET /orders/{id}",
        "shop",
        "server",
        None,
    )
    assert (root.start_us, root.duration_us, root.error) == (1795835867927656, 15754, False)
    assert (charge.parent_id, charge.kind, charge.error, charge.status_message) == (
        ROOT,
        "client",
        True,
        "",
    )
    assert [(e.type, e.message) for e in charge.exceptions] == [
        ("ValueError", "payment failed: HTTP 402")
    ]
    assert (post.service, post.parent_id, post.status_message) == (
        "payments",
        CHARGE,
        "insufficient funds",
    )


def test_the_tree_puts_children_under_parents_ordered_by_start_time() -> None:
    """Jaeger lists spans in no useful order; the tree is by parent, then start time."""
    spans = parse_trace(jaeger_trace()).spans
    for order in (spans, tuple(reversed(spans))):
        (root,) = span_tree(order)
        assert root.span.span_id == ROOT
        assert [c.span.span_id for c in root.children] == [LOAD, CHARGE]
        assert [c.span.span_id for c in root.children[1].children] == [POST]
        assert root.children[0].children == ()


def test_a_span_whose_parent_is_missing_or_only_followed_from_is_a_root() -> None:
    """An orphan (its parent not stored) and a FOLLOWS_FROM span become roots, by start."""
    raw = jaeger_trace()
    by_id = {s["spanID"]: s for s in raw["spans"]}
    by_id[LOAD]["references"] = [{"refType": "FOLLOWS_FROM", "traceID": TRACE_ID, "spanID": ROOT}]
    by_id[CHARGE]["references"][0]["spanID"] = "00000000000000ff"
    roots = span_tree(parse_trace(raw).spans)
    assert [r.span.span_id for r in roots] == [ROOT, LOAD, CHARGE]
    assert [c.span.span_id for c in roots[2].children] == [POST]


def test_parent_span_id_without_references_and_parent_cycles_are_handled() -> None:
    """Older JSON's parentSpanID is read; spans that are each other's parents are not looped."""
    raw = jaeger_trace()
    for span in raw["spans"]:
        parent = span.pop("references")
        span["parentSpanID"] = parent[0]["spanID"] if parent else "0000000000000000"
    (root,) = span_tree(parse_trace(raw).spans)
    assert [c.span.span_id for c in root.children] == [LOAD, CHARGE]
    cycle = jaeger_trace()
    for span in cycle["spans"]:
        if span["spanID"] == ROOT:
            span["references"] = [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": POST}]
    # Every span has a parent in the trace: nothing is a root, and nothing hangs.
    assert span_tree(parse_trace(cycle).spans) == ()


def test_a_trace_is_summarised_from_its_root_counts_and_first_exception() -> None:
    """Root (service), duration from first start to last end, counts, earliest exception."""
    summary = summarise(parse_trace(jaeger_trace()))
    assert (summary.root_name, summary.root_service) == ("GET /orders/{id}", "shop")
    assert (summary.span_count, summary.error_count, summary.duration_us) == (4, 2, 15754)
    assert summary.first_exception is not None
    assert summary.first_exception.message == "insufficient funds"
    assert summary_line(summary) == (
        "2026-11-28T03:17:47.927Z  fa6a0eafa838edfcff0fdcfd42afb641  GET /orders/{id} (shop)"
        "  15.75 ms  4 spans  2 errors  RuntimeError: insufficient funds"
    )
    ok = summary_line(summarise(parse_trace(OK_TRACE)))
    assert ok.endswith("ok-op (okshop)  0.03 ms  1 span  0 errors")


def test_an_answer_that_is_not_a_trace_is_a_store_error() -> None:
    """Garbage from the store is reported, not a KeyError traceback."""
    with pytest.raises(StoreError, match="without a list of spans"):
        parse_trace({"traceID": TRACE_ID})
    with pytest.raises(StoreError, match="not an object"):
        parse_trace({"traceID": TRACE_ID, "spans": ["x"]})


# --- parsing VictoriaLogs' answer


def test_log_lines_are_parsed_and_ordered_by_time() -> None:
    """_time, severity_text (or the OTLP severity_number's name), _msg, span_id."""
    records = parse_logs(LOG_LINES.encode())
    assert [r.message.split()[0] for r in records] == [
        "order",
        "password=hunter2",
        "card",
        "charging",
        "retry",
    ]
    first = records[0]
    assert (first.severity, first.span_id, first.service) == ("INFO", ROOT, "shop")
    assert first.time_us == 1795835867927694
    assert records[1].severity == "DEBUG"  # severity_number 5, no severity_text
    # What VictoriaLogs stores for OTLP records without severity_text: its own spelling.
    derived = b'{"severity_text": "Warn3", "severity_number": "15"}\n'
    derived += b'{"severity_text": "Unspecified", "severity_number": "0"}\n'
    assert [r.severity for r in parse_logs(derived)] == ["WARN3", "-"]
    assert parse_logs(b"") == []
    with pytest.raises(StoreError, match="not JSON"):
        parse_logs(b'{"_msg": "x"}\nnot json\n')


# --- what the user types


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        (TRACE_ID, TRACE_ID),
        (TRACE_ID.upper(), TRACE_ID),
        ("ABC", "00000000000000000000000000000abc"),
        (" 1 ", "00000000000000000000000000000001"),
    ],
)
def test_trace_ids_are_normalised_to_32_lowercase_hex_digits(typed: str, normalised: str) -> None:
    """Jaeger ids may be typed short or upper case; they are padded as Jaeger pads them."""
    assert normalise_trace_id(typed) == normalised


@pytest.mark.parametrize("typed", ["", "xyz", "0x1f", "a" * 33, "12-34", "0", "0" * 32])
def test_invalid_trace_ids_are_refused_naming_the_value(typed: str) -> None:
    """Not 1-32 hex digits, or the all-zero id: refused, quoting what was typed."""
    with pytest.raises(ValueError, match=rf"^{repr(typed)!s} is not a trace id"):
        normalise_trace_id(typed)


def test_since_accepts_seconds_minutes_hours_and_days_only() -> None:
    """30s, 10m, 2h and 1d; anything else names the value."""
    assert [parse_since(v) for v in ("30s", "10m", "2h", "1d")] == [30, 600, 7200, 86400]
    for bad in ("10", "0m", "1w", "-5m", "", "1.5h", "m"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_since(bad)


def test_store_urls_are_checked_and_lose_their_trailing_slash() -> None:
    """http(s)://host[:port][/path]; the password of a bad one is not echoed."""
    assert base_url("http://127.0.0.1:16686/") == "http://127.0.0.1:16686"
    assert base_url("https://logs.example/vl/") == "https://logs.example/vl"
    for bad in ("127.0.0.1:16686", "ftp://x", "http://", "http://h:port"):
        with pytest.raises(ValueError, match="is not a URL"):
            base_url(bad)
    with pytest.raises(ValueError, match="is not a URL") as caught:
        base_url("ftp://user:s3cret@host")
    assert "s3cret" not in str(caught.value)


def test_durations_and_times_are_formatted() -> None:
    """Milliseconds with two decimals below a second, seconds from there; UTC times."""
    assert [format_duration(us) for us in (0, 11, 13673, 999_994, 999_999, 2_500_000)] == [
        "0.00 ms",
        "0.01 ms",
        "13.67 ms",
        "999.99 ms",
        "1.00 s",
        "2.50 s",
    ]
    assert format_time(1795835867927656) == "2026-11-28T03:17:47.927Z"
    assert format_time(1795835867927656, date=False) == "03:17:47.927"


# --- rendering


def test_the_tree_shows_exceptions_and_logs_under_their_spans_in_time_order() -> None:
    """Logs interleave with child spans by time; logs of unknown spans come last."""
    trace = parse_trace(jaeger_trace())
    lines = trace_lines(trace, parse_logs(LOG_LINES.encode()), None)
    assert lines == [line.replace("[REDACTED]", "hunter2") for line in EXPECTED_TREE]
    assert trace_lines(trace, [], 1000)[-1] == "(only the first 1000 log records are shown)"


# --- the commands, against the stand-in stores


def test_trace_command_prints_the_tree_with_logs_masked(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """`trace ID` asks Jaeger, then VictoriaLogs for trace_id:"ID"; every line is masked."""
    jaeger = stores({f"/api/traces/{TRACE_ID}": (200, JAEGER_TRACE)})
    logs = stores({"/select/logsql/query": (200, LOG_LINES)})
    code = main(["trace", TRACE_ID.upper(), "--jaeger-url", jaeger.url, "--logs-url", logs.url])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines() == EXPECTED_TREE
    ((path, query),) = logs.requests
    assert path == "/select/logsql/query"
    assert query["query"].startswith(f'trace_id:"{TRACE_ID}"')
    assert int(query["limit"]) >= 100
    # A window around the trace, in the RFC 3339 VictoriaLogs accepts.
    assert query["start"] == "2026-11-28T02:17:47.927656Z"
    assert query["end"] == "2026-11-28T04:17:47.943410Z"


def test_trace_urls_come_from_the_environment_unless_a_flag_is_given(
    stores: Callable[..., FakeStore],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TTBT5_JAEGER_URL / TTBT5_VICTORIALOGS_URL, overridden by --jaeger-url / --logs-url."""
    jaeger = stores({f"/api/traces/{TRACE_ID}": (200, JAEGER_TRACE)})
    logs = stores({"/select/logsql/query": (200, "")})
    monkeypatch.setenv("TTBT5_JAEGER_URL", jaeger.url + "/")
    monkeypatch.setenv("TTBT5_VICTORIALOGS_URL", logs.url)
    assert main(["trace", TRACE_ID]) == 0
    assert len(jaeger.requests) == len(logs.requests) == 1
    monkeypatch.setenv("TTBT5_JAEGER_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["trace", TRACE_ID, "--jaeger-url", jaeger.url, "--no-logs"]) == 0
    assert len(jaeger.requests) == 2
    assert len(logs.requests) == 1
    capsys.readouterr()
    monkeypatch.setenv("TTBT5_VICTORIALOGS_URL", "logs.example:9428")
    assert main(["trace", TRACE_ID]) == 2
    assert capsys.readouterr().err == (
        "ttbt5-otel: 'logs.example:9428' is not a URL: expected http(s)://host:port "
        "(from TTBT5_VICTORIALOGS_URL)\n"
    )


def test_an_unknown_trace_id_exits_1_naming_the_id(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """Jaeger's 404 (the JSON it really answers) is "not found", exit 1; no log query."""
    jaeger = stores({"/api/traces/0000000000000000000000000000abcd": (404, NOT_FOUND)})
    logs = stores({})
    code = main(["trace", "abcd", "--jaeger-url", jaeger.url, "--logs-url", logs.url])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        f"ttbt5-otel: trace 0000000000000000000000000000abcd not found in Jaeger at {jaeger.url}\n"
    )
    assert logs.requests == []


def test_an_invalid_id_is_refused_before_any_request(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with the value quoted; Jaeger is never asked."""
    jaeger = stores({})
    assert main(["trace", "not-an-id", "--jaeger-url", jaeger.url]) == 2
    assert capsys.readouterr().err == (
        "ttbt5-otel: 'not-an-id' is not a trace id: expected 1 to 32 hexadecimal digits\n"
    )
    assert jaeger.requests == []


@pytest.mark.parametrize("command", [["trace", TRACE_ID], ["traces", "--service", "shop"]])
def test_an_unreachable_jaeger_exits_2_with_one_line_naming_the_url(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Connection refused: one line on stderr naming the URL, nothing on stdout, exit 2."""
    url = f"http://127.0.0.1:{free_port()}"
    assert main([*command, "--jaeger-url", url]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"ttbt5-otel: cannot reach Jaeger at {url}/api/traces")
    assert err.endswith(": Connection refused\n")


def test_a_store_that_never_answers_times_out_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A listening socket that never answers: --timeout bounds the wait, one line, exit 2."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code = main(["trace", TRACE_ID, "--jaeger-url", url, "--timeout", "0.5"])
        elapsed = time.monotonic() - started
    assert code == 2
    assert elapsed < 5
    assert capsys.readouterr().err == (
        f"ttbt5-otel: cannot reach Jaeger at {url}/api/traces/{TRACE_ID}: no answer within 0.5 s\n"
    )


def test_an_unreachable_log_store_still_shows_the_spans_and_exits_2(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """The spans are printed; the log store's failure is one line and the exit code."""
    jaeger = stores({f"/api/traces/{TRACE_ID}": (200, JAEGER_TRACE)})
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["trace", TRACE_ID, "--jaeger-url", jaeger.url, "--logs-url", url]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[:2] == EXPECTED_TREE[:2]
    assert "log " not in out
    assert err == (
        f"ttbt5-otel: cannot reach VictoriaLogs at {url}/select/logsql/query: Connection "
        "refused (the trace is shown without its logs; --no-logs skips them)\n"
    )


def test_a_store_answering_an_error_exits_2_quoting_it(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """A 500, or a body that is not Jaeger's JSON, is reported in one line."""
    jaeger = stores({f"/api/traces/{TRACE_ID}": (500, '{"errors":[{"msg":"storage down"}]}')})
    assert main(["trace", TRACE_ID, "--jaeger-url", jaeger.url]) == 2
    assert capsys.readouterr().err == (
        f"ttbt5-otel: Jaeger at {jaeger.url}/api/traces/{TRACE_ID} answered HTTP 500: "
        "storage down\n"
    )


def test_unreachable_store_in_a_subprocess_prints_no_traceback() -> None:
    """The installed entry point: exit 2, one stderr line, no Python traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "ttbt5_otel", "traces", "--service", "shop", "--jaeger-url", url],
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"ttbt5-otel: cannot reach Jaeger at {url}/api/traces: ")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_traces_lists_one_line_per_trace_and_filters_errors_here(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """--errors keeps traces with an ERROR span, searching 10x --limit without tags.

    Jaeger's memory store reads tags={"error":"true"} as error=false, so the filter runs
    on the answers; the query carries service, start/end (µs) and limit only.
    """
    jaeger = stores({"/api/traces": search_route})
    code = main(
        [
            "traces",
            "--service",
            "okshop",
            "--since",
            "10m",
            "--limit",
            "3",
            "--jaeger-url",
            jaeger.url,
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        (
            "2026-11-28T03:14:29.252Z  5fd31ba2d1888c304f3181de60ee7535  ok-op (okshop)  0.03 ms"
            "  1 span  0 errors"
        )
    ]
    ((path, query),) = jaeger.requests
    assert path == "/api/traces"
    assert set(query) == {"service", "start", "end", "limit"}
    assert (query["service"], query["limit"]) == ("okshop", "3")
    assert int(query["end"]) - int(query["start"]) == 600 * 1_000_000
    assert (
        main(
            [
                "traces",
                "--service",
                "okshop",
                "--errors",
                "--limit",
                "3",
                "--jaeger-url",
                jaeger.url,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "no traces with errors of okshop started in the last 1h\n"
    assert jaeger.requests[-1][1]["limit"] == "30"


def test_traces_without_a_service_searches_every_service_once_per_trace(
    stores: Callable[..., FakeStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """Services from /api/services; a trace through two services is listed once; newest first."""
    jaeger = stores({"/api/services": (200, SERVICES), "/api/traces": search_route})
    assert main(["traces", "--jaeger-url", jaeger.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == [TRACE_ID, "5fd31ba2d1888c304f3181de60ee7535"]
    assert lines[0].endswith("4 spans  2 errors  RuntimeError: insufficient funds")
    searched = [query["service"] for path, query in jaeger.requests if path == "/api/traces"]
    assert searched == ["okshop", "payments", "shop"]
    jaeger.routes["/api/services"] = (200, '{"data":null,"total":0}')
    assert main(["traces", "--jaeger-url", jaeger.url]) == 0
    assert capsys.readouterr().out == f"Jaeger at {jaeger.url} has no traces of any service yet\n"


def test_traces_refuses_bad_arguments_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """--since, --limit and --jaeger-url are checked before anything is asked."""
    assert main(["traces", "--since", "10 minutes"]) == 2
    assert "'10 minutes' is not a duration" in capsys.readouterr().err
    assert main(["traces", "--limit", "0"]) == 2
    assert "'0' must be positive" in capsys.readouterr().err
    assert main(["traces", "--jaeger-url", "localhost:16686"]) == 2
    assert capsys.readouterr().err == (
        "ttbt5-otel: 'localhost:16686' is not a URL: expected http(s)://host:port (from the flag)\n"
    )
