"""Read traces from Jaeger's query API and their log records from VictoriaLogs.

``ttbt5-otel traces`` and ``ttbt5-otel trace`` are built on this module: it validates what
the user typed, asks the two stores over HTTP (stdlib ``urllib`` only, short timeouts) and
turns their JSON into the small dataclasses below; ``trace_render`` prints them.

The shapes read here are those Jaeger v2 and VictoriaLogs really answer (see
``tests/unit/cli/test_trace_view.py`` for captured samples): Jaeger's ``/api/traces``
JSON (``traceID``, ``spans[].spanID``, ``references``, ``startTime``/``duration`` in µs,
``tags``, ``logs[].fields``, ``processes``), and VictoriaLogs' JSON lines with ``_time``,
``_msg``, ``trace_id``, ``span_id``, ``severity_text``/``severity_number`` and
``service.name``.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Final

from ttbt5_otel._sdk.checks import mask_url

JAEGER_ENV: Final = "TTBT5_JAEGER_URL"
LOGS_ENV: Final = "TTBT5_VICTORIALOGS_URL"
DEFAULT_JAEGER_URL: Final = "http://127.0.0.1:16686"
DEFAULT_LOGS_URL: Final = "http://127.0.0.1:9428"
DEFAULT_TIMEOUT: Final = 5.0
LOG_LIMIT: Final = 1000
# Jaeger's in-memory store (v1.76) reads the tag error="true" as a boolean false, so
# `tags={"error":"true"}` finds spans with status OK and never those with ERROR. --errors
# therefore filters here, over this many times --limit of the newest traces.
ERRORS_SEARCH_FACTOR: Final = 10
MAX_SEARCH_LIMIT: Final = 5000
# A log record may be written a little before its span starts or after it ends on another
# host's clock; the log query's time window leaves this much room on both sides.
LOG_WINDOW_MARGIN: Final = timedelta(hours=1)

_TRACE_ID: Final = re.compile(r"[0-9a-fA-F]{1,32}")
_SINCE: Final = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# OTLP SeverityNumber ranges (1-4 TRACE ... 21-24 FATAL), for records without severity_text
# (VictoriaLogs adds one to OTLP records; other ingestion paths may not).
_SEVERITY_NAMES: Final = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


class StoreError(Exception):
    """A store could not be asked or gave an unusable answer; the message names the URL."""


class TraceNotFoundError(Exception):
    """Jaeger does not know the trace id."""


@dataclass(frozen=True, slots=True)
class SpanException:
    """One ``exception`` event of a span."""

    type: str
    message: str
    time_us: int


@dataclass(frozen=True, slots=True)
class Span:
    """One span as Jaeger returns it; times in microseconds since the epoch."""

    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str
    start_us: int
    duration_us: int
    error: bool
    status_message: str
    exceptions: tuple[SpanException, ...]


@dataclass(frozen=True, slots=True)
class SpanNode:
    """A span with its children, ordered by start time."""

    span: Span
    children: tuple[SpanNode, ...]


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace id and its spans."""

    trace_id: str
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """What ``ttbt5-otel traces`` prints for one trace."""

    trace_id: str
    start_us: int
    root_name: str
    root_service: str
    duration_us: int
    span_count: int
    error_count: int
    first_exception: SpanException | None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record from VictoriaLogs."""

    time_us: int
    severity: str
    message: str
    span_id: str
    service: str


# --- what the user typed


def normalise_trace_id(value: str) -> str:
    """``value`` as 32 lowercase hex digits; ValueError naming it unless 1-32 hex digits."""
    text = value.strip()
    if not _TRACE_ID.fullmatch(text):
        raise ValueError(f"{value!r} is not a trace id: expected 1 to 32 hexadecimal digits")
    if int(text, 16) == 0:
        raise ValueError(f"{value!r} is not a trace id: an all-zero id is invalid")
    return text.lower().rjust(32, "0")


def parse_since(value: str) -> int:
    """``30s``, ``10m``, ``2h`` or ``1d`` as seconds; ValueError naming anything else."""
    found = _SINCE.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"{value!r} is not a duration: expected e.g. 30s, 10m, 2h or 1d")
    return int(found[1]) * _UNIT_SECONDS[found[2]]


def base_url(value: str) -> str:
    """An ``http(s)://host[:port][/path]`` URL without its trailing slash; else ValueError."""
    try:
        parts = urllib.parse.urlsplit(value.strip())
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{mask_url(value)!r} is not a URL: expected http(s)://host:port")
    return urllib.parse.urlunsplit(parts._replace(query="", fragment="")).rstrip("/")


# --- HTTP


def _shown(url: str) -> str:
    """``url`` for messages: without its query, any password masked."""
    return mask_url(url.split("?", 1)[0])


def _get(url: str, what: str, timeout: float) -> tuple[int, bytes]:
    """The status and body of ``GET url``; StoreError when no HTTP answer comes."""
    host = urllib.parse.urlsplit(url).hostname or ""
    # A store on this machine is never behind the proxy that http_proxy names.
    handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as reply:
            return int(reply.status), bytes(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()
    except (OSError, http.client.HTTPException) as exc:
        # URLError wraps what connecting raised; reading raises TimeoutError itself.
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            cause = f"no answer within {timeout:g} s"
        elif isinstance(reason, OSError) and reason.strerror:
            cause = reason.strerror
        else:
            cause = str(reason) or type(reason).__name__
        raise StoreError(f"cannot reach {what} at {_shown(url)}: {cause}") from None


def _jaeger_json(url: str, timeout: float) -> tuple[int, Any]:
    status, body = _get(url, "Jaeger", timeout)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status not in (HTTPStatus.OK, HTTPStatus.NOT_FOUND) or not isinstance(data, dict):
        detail = _jaeger_error(data) or body[:200].decode("utf-8", "replace").strip()
        raise StoreError(f"Jaeger at {_shown(url)} answered HTTP {status}: {detail}")
    return status, data


def _data(answer: dict[str, Any]) -> list[Any]:
    """The ``data`` list of a Jaeger answer (null when there is nothing)."""
    data = answer.get("data")
    return data if isinstance(data, list) else []


def _jaeger_error(data: object) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("msg", ""))
    return ""


# --- Jaeger


def fetch_trace(jaeger: str, trace_id: str, timeout: float = DEFAULT_TIMEOUT) -> Trace:
    """``GET {jaeger}/api/traces/{trace_id}``; TraceNotFoundError when Jaeger has no such trace."""
    status, data = _jaeger_json(f"{jaeger}/api/traces/{trace_id}", timeout)
    traces = [parse_trace(item) for item in _data(data)]
    if status == HTTPStatus.NOT_FOUND or not traces:
        raise TraceNotFoundError(trace_id)
    return traces[0]


def list_services(jaeger: str, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The service names Jaeger has spans of, sorted."""
    _, data = _jaeger_json(f"{jaeger}/api/services", timeout)
    return sorted(str(name) for name in _data(data))


def search_traces(
    jaeger: str,
    *,
    services: list[str],
    since_s: int,
    limit: int,
    errors_only: bool,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[TraceSummary]:
    """The newest ``limit`` traces of ``services`` started in the last ``since_s`` seconds."""
    end = time.time_ns() // 1000
    wanted = min(limit * ERRORS_SEARCH_FACTOR, MAX_SEARCH_LIMIT) if errors_only else limit
    found: dict[str, TraceSummary] = {}
    for service in services:
        query = {
            "service": service,
            "start": str(end - since_s * 1_000_000),
            "end": str(end),
            "limit": str(wanted),
        }
        url = f"{jaeger}/api/traces?{urllib.parse.urlencode(query)}"
        _, data = _jaeger_json(url, timeout)
        for item in _data(data):
            summary = summarise(parse_trace(item))
            # A trace through several services comes back once per service.
            found.setdefault(summary.trace_id, summary)
    chosen = [s for s in found.values() if s.error_count or not errors_only]
    chosen.sort(key=lambda s: (s.start_us, s.trace_id), reverse=True)
    return chosen[:limit]


def parse_trace(item: object) -> Trace:
    """One element of Jaeger's ``data`` list as a Trace; StoreError when it is not one."""
    if not isinstance(item, dict) or not isinstance(item.get("spans"), list):
        raise StoreError("Jaeger answered a trace without a list of spans")
    processes = item.get("processes")
    if not isinstance(processes, dict):
        processes = {}
    spans = tuple(_parse_span(span, processes) for span in item["spans"])
    return Trace(str(item.get("traceID", "")).rjust(32, "0"), spans)


def _parse_span(raw: object, processes: dict[str, Any]) -> Span:
    if not isinstance(raw, dict):
        raise StoreError("Jaeger answered a span that is not an object")
    tags = _fields(raw.get("tags"))
    process = processes.get(str(raw.get("processID")))
    service = process.get("serviceName") if isinstance(process, dict) else None
    exceptions = []
    for event in raw.get("logs") or ():
        fields = _fields(event.get("fields") if isinstance(event, dict) else None)
        if fields.get("event") == "exception":
            exceptions.append(
                SpanException(
                    str(fields.get("exception.type", "")),
                    str(fields.get("exception.message", "")),
                    _int(event.get("timestamp")),
                )
            )
    return Span(
        span_id=str(raw.get("spanID", "")),
        parent_id=_parent_id(raw),
        name=str(raw.get("operationName", "")),
        service=str(service or raw.get("processID") or "?"),
        kind=str(tags.get("span.kind", "")),
        start_us=_int(raw.get("startTime")),
        duration_us=_int(raw.get("duration")),
        # OTLP status ERROR arrives as the tags error=true and otel.status_code=ERROR.
        error=tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR",
        status_message=str(tags.get("otel.status_description", "")),
        exceptions=tuple(sorted(exceptions, key=lambda e: e.time_us)),
    )


def _parent_id(raw: dict[str, Any]) -> str | None:
    # CHILD_OF within the same trace is the parent; FOLLOWS_FROM and links to other traces
    # are not. Older Jaeger JSON carries parentSpanID instead of references.
    trace_id = raw.get("traceID")
    references = [r for r in raw.get("references") or () if isinstance(r, dict)]
    for ref in references:
        if ref.get("refType") == "CHILD_OF" and ref.get("traceID") in (None, trace_id):
            return str(ref.get("spanID"))
    parent = raw.get("parentSpanID")
    return parent if isinstance(parent, str) and parent.strip("0") else None


def _fields(items: object) -> dict[str, Any]:
    """Jaeger's ``[{"key", "type", "value"}]`` lists as a dict."""
    if not isinstance(items, list):
        return {}
    return {str(i.get("key")): i.get("value") for i in items if isinstance(i, dict)}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def span_tree(spans: tuple[Span, ...]) -> tuple[SpanNode, ...]:
    """The spans as trees: each under its parent, siblings and roots by start time.

    A span whose parent is not in the trace (not yet arrived, or dropped) is a root.
    """
    known = {span.span_id for span in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in known else None
        children.setdefault(parent, []).append(span)

    def build(parent: str | None, seen: frozenset[str]) -> tuple[SpanNode, ...]:
        ordered = sorted(children.get(parent, ()), key=lambda s: (s.start_us, s.span_id))
        # `seen` guards against a broken answer whose spans are each other's parents.
        return tuple(
            SpanNode(s, build(s.span_id, seen | {s.span_id}))
            for s in ordered
            if s.span_id not in seen
        )

    return build(None, frozenset())


def summarise(trace: Trace) -> TraceSummary:
    """Root span, overall duration, span and error counts, and the first exception."""
    spans = trace.spans
    roots = span_tree(spans)
    root = roots[0].span if roots else None
    start = min((s.start_us for s in spans), default=0)
    end = max((s.start_us + s.duration_us for s in spans), default=0)
    exceptions = sorted((e for s in spans for e in s.exceptions), key=lambda e: e.time_us)
    return TraceSummary(
        trace_id=trace.trace_id,
        start_us=start,
        root_name=root.name if root else "?",
        root_service=root.service if root else "?",
        duration_us=end - start,
        span_count=len(spans),
        error_count=sum(1 for s in spans if s.error),
        first_exception=exceptions[0] if exceptions else None,
    )


# --- VictoriaLogs


def fetch_logs(
    logs: str,
    trace: Trace,
    limit: int = LOG_LIMIT,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[LogRecord]:
    """The log records carrying ``trace``'s id, oldest first (at most ``limit``)."""
    start = min((s.start_us for s in trace.spans), default=0)
    end = max((s.start_us + s.duration_us for s in trace.spans), default=0)
    query = {
        "query": f'trace_id:"{trace.trace_id}" | sort by (_time)',
        "limit": str(limit),
        "start": _rfc3339(start, -LOG_WINDOW_MARGIN),
        "end": _rfc3339(end, LOG_WINDOW_MARGIN),
    }
    url = f"{logs}/select/logsql/query?{urllib.parse.urlencode(query)}"
    status, body = _get(url, "VictoriaLogs", timeout)
    if status != HTTPStatus.OK:
        detail = body[:200].decode("utf-8", "replace").strip()
        raise StoreError(f"VictoriaLogs at {_shown(url)} answered HTTP {status}: {detail}")
    return parse_logs(body)


def parse_logs(body: bytes) -> list[LogRecord]:
    """VictoriaLogs' JSON lines as LogRecords, oldest first."""
    records = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            raise StoreError("VictoriaLogs answered a line that is not JSON") from None
        if isinstance(raw, dict):
            records.append(_parse_log(raw))
    records.sort(key=lambda r: r.time_us)
    return records


def _parse_log(raw: dict[str, Any]) -> LogRecord:
    # VictoriaLogs fills in severity_text from the number when a record has none ("Info",
    # "Warn3", "Unspecified" for 0); upper case reads like the levels applications write.
    severity = str(raw.get("severity_text") or "").upper()
    if severity == "UNSPECIFIED":
        severity = "-"
    elif not severity:
        number = str(raw.get("severity_number", ""))
        level = int(number) if number.isdigit() else 0
        severity = _SEVERITY_NAMES[(level - 1) // 4] if 1 <= level <= 24 else "-"  # noqa: PLR2004
    return LogRecord(
        time_us=_parse_time(str(raw.get("_time", ""))),
        severity=severity,
        message=str(raw.get("_msg", "")),
        span_id=str(raw.get("span_id", "")).lower(),
        service=str(raw.get("service.name", "")),
    )


def _parse_time(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime.fromtimestamp(0, UTC)) // timedelta(microseconds=1)


def _rfc3339(time_us: int, shift: timedelta) -> str:
    moment = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=time_us) + shift
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
