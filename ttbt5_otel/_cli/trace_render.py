"""Plain-text lines for ``ttbt5-otel traces`` and ``ttbt5-otel trace``.

Only lines are built here; the command prints each through its masking ``_say``. Times are
UTC. No colour and only ASCII: the output is read in terminals, pasted into tickets and
grepped, and a terminal with a non-UTF-8 locale must not fail on a tree glyph.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from ttbt5_otel._cli.trace_view import (
    LogRecord,
    Span,
    SpanNode,
    Trace,
    TraceSummary,
    span_tree,
    summarise,
)

INDENT: Final = "  "
_EPOCH: Final = datetime.fromtimestamp(0, UTC)


def format_duration(duration_us: int) -> str:
    """``13.67 ms`` below a second, ``2.50 s`` from a second on."""
    milliseconds = duration_us / 1000
    # Compared after rounding, so that 999.999 ms reads 1.00 s, not 1000.00 ms.
    if round(milliseconds, 2) < 1000:  # noqa: PLR2004
        return f"{milliseconds:.2f} ms"
    return f"{duration_us / 1_000_000:.2f} s"


def format_time(time_us: int, *, date: bool = True) -> str:
    """``2026-11-28T03:13:29.684Z``, or ``03:13:29.684`` without the date."""
    moment = _EPOCH + timedelta(microseconds=time_us)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f" if date else "%H:%M:%S.%f")[:-3]
    return f"{text}Z" if date else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(summary: TraceSummary) -> str:
    """One line of ``ttbt5-otel traces``: start, id, root (service), duration, counts, cause."""
    line = (
        f"{format_time(summary.start_us)}  {summary.trace_id}  "
        f"{summary.root_name} ({summary.root_service})  {format_duration(summary.duration_us)}  "
        f"{_plural(summary.span_count, 'span')}  {_plural(summary.error_count, 'error')}"
    )
    if summary.first_exception is not None:
        first = summary.first_exception
        line += f"  {_first_line(f'{first.type}: {first.message}')}"
    return line


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] + " ..." if len(lines) > 1 else (lines[0] if lines else "")


def _block(indent: str, head: str, text: str) -> list[str]:
    """``head`` and the first line of ``text``; its further lines indented below."""
    first, *rest = text.splitlines() or [""]
    return [f"{indent}{head}{first}"] + [f"{indent}    {line}" for line in rest]


def span_line(span: Span) -> str:
    """A span's name, (service, kind), duration and, for a failed one, ERROR and why."""
    where = f"{span.service}, {span.kind}" if span.kind else span.service
    line = f"{span.name}  ({where})  {format_duration(span.duration_us)}"
    if span.error:
        line += f"  ERROR: {span.status_message}" if span.status_message else "  ERROR"
    return line


def log_lines(record: LogRecord, indent: str, *, service: bool = False) -> list[str]:
    """``log 03:13:29.684 ERROR message`` (the service too where no span names it)."""
    head = f"log {format_time(record.time_us, date=False)} {record.severity:<5} "
    if service and record.service:
        head += f"[{record.service}] "
    return _block(indent, head, record.message)


def _node_lines(node: SpanNode, depth: int, logs: dict[str, list[LogRecord]]) -> list[str]:
    indent = INDENT * depth
    inner = indent + INDENT
    lines = [indent + span_line(node.span)]
    for exc in node.span.exceptions:
        lines += _block(inner, "exception ", f"{exc.type}: {exc.message}")
    # The span's own log records and its children, in the order they happened.
    entries: list[tuple[int, int, LogRecord | SpanNode]] = [
        (r.time_us, 0, r) for r in logs.get(node.span.span_id, ())
    ]
    entries += [(child.span.start_us, 1, child) for child in node.children]
    for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1])):
        if isinstance(entry, LogRecord):
            lines += log_lines(entry, inner)
        else:
            lines += _node_lines(entry, depth + 1, logs)
    return lines


def trace_lines(trace: Trace, logs: list[LogRecord], log_limit: int | None) -> list[str]:
    """The header, the span tree with exceptions and logs, then logs outside every span.

    ``log_limit`` is the number of log records asked for when that many came back (so
    more may exist), else None.
    """
    summary = summarise(trace)
    header = (
        f"trace {trace.trace_id}  {_plural(summary.span_count, 'span')}, "
        f"{_plural(summary.error_count, 'error')}, {format_duration(summary.duration_us)}, "
        f"started {format_time(summary.start_us)}"
    )
    lines = [header]
    span_ids = {span.span_id for span in trace.spans}
    by_span: dict[str, list[LogRecord]] = {}
    loose = []
    for record in logs:
        if record.span_id in span_ids:
            by_span.setdefault(record.span_id, []).append(record)
        else:
            loose.append(record)
    for root in span_tree(trace.spans):
        lines += _node_lines(root, 0, by_span)
    if loose:
        lines.append("logs (in no span of this trace):")
        for record in loose:
            lines += log_lines(record, INDENT, service=True)
    if log_limit is not None:
        lines.append(f"(only the first {log_limit} log records are shown)")
    return lines
