"""Console log formats for applications that let the lifecycle configure logging.

``text`` is for people (``time level logger: message key=value ... trace=...``), ``json`` for
log shippers (one object per line). Both carry the structured fields and the current trace
and span ids, so a console line can be matched with its trace.

The log file (``log_file``, the guide's ``LOG_FILE``) is always JSON lines: a file is read by
tools, and the OTel log records carry the same records for people.
"""

from __future__ import annotations

import json
import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, Final

from opentelemetry import trace

from ttbt5_otel._core.scrub import active_scrubber
from ttbt5_otel._signals.logger import FIELDS_ATTR, bound_context

_HANDLER_NAME: Final = "ttbt5-console"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return active_scrubber().scrub(
        {**bound_context(), **(getattr(record, FIELDS_ATTR, None) or {})}
    )


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class TextFormatter(logging.Formatter):
    """``2026-11-26 12:00:00,000 INFO orders: order placed amount=12.5 trace=...``."""

    def __init__(self) -> None:
        """Standard time, level and logger, then message, fields and trace ids."""
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The base line followed by ``key=value`` pairs."""
        line = super().format(record)
        extras = {**_fields(record), **_trace_ids()}
        if not extras:
            return line
        pairs = " ".join(f"{k}={v}" for k, v in extras.items())
        head, newline, tail = line.partition("\n")
        return f"{head} {pairs}{newline}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, fields, trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record``; values JSON cannot hold become strings."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
            **_trace_ids(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_console_logging(log_format: str, level: str) -> logging.Handler | None:
    """Add a console handler in ``log_format`` unless the application configured logging.

    Returns the handler it added (``None`` when the root logger already had a handler of
    the application's own, which is then left alone).
    """
    root = logging.getLogger()
    own = [h for h in root.handlers if type(h).__module__.split(".")[0] != "ttbt5_otel"]
    if own or any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return None
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.setLevel(logging.getLevelName(level))
    root.addHandler(handler)
    if root.level > handler.level:
        root.setLevel(handler.level)
    return handler


def rotating_file_handler(path: str, max_bytes: int, backups: int) -> RotatingFileHandler:
    """A JSON-lines handler appending to ``path``, rotated at ``max_bytes``; ``OSError`` if not.

    The parent directory is created (the guide's set-up step ``mkdir -p logs``); the file
    is opened now, so a path that cannot be written fails here rather than at the first record.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    # maxBytes 0 or backupCount 0 would let the file grow without bound (the handler then
    # reopens the same file for appending), so both are at least 1.
    handler = RotatingFileHandler(
        os.fspath(file), maxBytes=max(max_bytes, 1), backupCount=max(backups, 1), encoding="utf-8"
    )
    handler.setFormatter(JsonFormatter())
    return handler
