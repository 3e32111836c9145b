"""The stdlib logging bridge: each record a logger handles also leaves as one OTel log record.

The bridge is not a handler on the root logger. A handler there would change the app's own
logging: ``logging.basicConfig()`` does nothing once the root logger has a handler, the
last-resort handler that prints WARNING and above to stderr is bypassed, and
``logging.config.dictConfig()`` removes it and silently stops the export. Instead the bridge
wraps ``Logger.callHandlers``, the step every handled record goes through once, whatever the
handlers are. So after ``init()`` the console shows what it showed before, any later logging
configuration works as documented and keeps exporting, and each record is exported once.

To export INFO records while the app's logging is at the default WARNING, the root level is
lowered to just under the bridge's level; records the app's own levels would have rejected are then
exported but not passed to its handlers, so its console output does not change. A level the
app sets later (``basicConfig(level=...)``, ``dictConfig``, ``setLevel``) is the app's own and
is followed for both.

A record that reaches a logger chain carrying an OpenTelemetry ``LoggingHandler`` (the
logging instrumentation's, or one the app added) is left to that handler, so nothing is
exported twice.

With ``log_file`` the bridge also writes each record it passes on to a rotating JSON-lines
file (the TTBT5 guide's ``LOG_FILE``): the same records, at the same level, as the export,
whatever the app's own handlers and levels are.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._signals.log_format import configure_console_logging, rotating_file_handler
from ttbt5_otel._signals.logger import OTelLogHandler

_ORIGINAL_CALL_HANDLERS: Final = logging.Logger.callHandlers
_lock = threading.Lock()
_foreign_types: dict[type[logging.Handler], bool] = {}


class LogBridge:
    """The installed bridge: where records go and which root level it lowered."""

    __slots__ = ("file", "handler", "level", "lowered_to", "original_root_level")

    def __init__(self, level: int, file: logging.Handler | None = None) -> None:
        """A bridge exporting records at ``level`` and above (also to ``file``, if given)."""
        self.handler = OTelLogHandler(level=level)
        self.file = file
        self.level = level
        self.lowered_to: int | None = None
        self.original_root_level = logging.WARNING

    def app_handles(self, logger: logging.Logger, levelno: int) -> bool:
        """Whether the app's own levels let this record reach its handlers."""
        root = logging.root
        if self.lowered_to is None or root.level != self.lowered_to:
            return True
        current: logging.Logger | None = logger
        while current is not None:
            if current.level:
                threshold = self.original_root_level if current is root else current.level
                return levelno >= threshold
            current = current.parent
        return True


_installed: LogBridge | None = None


def _is_foreign_otel_handler(handler: logging.Handler) -> bool:
    kind = type(handler)
    known = _foreign_types.get(kind)
    if known is None:
        known = kind.__name__ == "LoggingHandler" and kind.__module__.startswith("opentelemetry")
        _foreign_types[kind] = known
    return known


def _chain_has_foreign_handler(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if any(_is_foreign_otel_handler(h) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    bridge = _installed
    if bridge is None:
        _ORIGINAL_CALL_HANDLERS(self, record)
        return
    app_handles = bridge.app_handles(self, record.levelno)
    # A foreign OTel handler exports what reaches the app's handlers; the rest is ours.
    if record.levelno >= bridge.level:
        if bridge.file is not None:
            bridge.file.handle(record)
        if not (app_handles and _chain_has_foreign_handler(self)):
            bridge.handler.emit(record)
    if app_handles:
        _ORIGINAL_CALL_HANDLERS(self, record)


def _open_file(path: str | None, max_bytes: int, backups: int) -> logging.Handler | None:
    if path is None:
        return None
    try:
        return rotating_file_handler(path, max_bytes, backups)
    except OSError as exc:
        # Telemetry never breaks the app: the export goes on, the reason is said once.
        warn_once("log-file", "ttbt5_otel: cannot open log_file %s: %s; not writing it", path, exc)
        return None


def install_bridge(
    level: str,
    log_file: str | None = None,
    *,
    log_file_max_bytes: int = 10 * 1024 * 1024,
    log_file_backups: int = 5,
) -> LogBridge | None:
    """Start exporting stdlib records at ``level`` and above; None if a bridge is running.

    With ``log_file`` the same records are also appended to that file (JSON lines, rotated
    at ``log_file_max_bytes`` keeping ``log_file_backups`` old files).
    """
    global _installed  # noqa: PLW0603 - one bridge per process
    with _lock:
        if _installed is not None:
            return None
        file = _open_file(log_file, log_file_max_bytes, log_file_backups)
        bridge = LogBridge(logging.getLevelName(level), file)
        root = logging.root
        if root.level > bridge.level:
            bridge.original_root_level = root.level
            # One below the bridge level: still lets its records through, and a level the
            # app sets later (INFO, say) can never be mistaken for the bridge's own.
            bridge.lowered_to = max(bridge.level - 1, 1)
            root.setLevel(bridge.lowered_to)
        _installed = bridge
        logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]
        return bridge


def remove_bridge(bridge: LogBridge | None) -> None:
    """Stop a bridge started by ``install_bridge``; restores the root level it lowered."""
    global _installed  # noqa: PLW0603 - one bridge per process
    with _lock:
        if bridge is None or _installed is not bridge:
            return
        _installed = None
        if bridge.file is not None:
            bridge.file.close()
        if logging.Logger.callHandlers is _call_handlers:
            logging.Logger.callHandlers = _ORIGINAL_CALL_HANDLERS  # type: ignore[method-assign]
        if bridge.lowered_to is not None and logging.root.level == bridge.lowered_to:
            logging.root.setLevel(bridge.original_root_level)


def installed_bridge() -> LogBridge | None:
    """The running bridge, if any."""
    return _installed


def add_console_handler(log_format: str, level: str) -> logging.Handler | None:
    """``configure_console_logging``, telling a running bridge that the app now prints at ``level``.

    With a bridge installed the root level is lowered for export only, and records under the
    app's own level never reach its handlers; the console handler added here is the app's
    own output, so its level becomes the app's level.
    """
    handler = configure_console_logging(log_format, level)
    with _lock:
        bridge = _installed
        if (
            handler is not None
            and bridge is not None
            and bridge.lowered_to is not None
            and logging.root.level == bridge.lowered_to
        ):
            bridge.original_root_level = min(bridge.original_root_level, handler.level)
    return handler
