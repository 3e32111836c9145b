"""Keep instrumentation failures away from the host application.

An error inside ttbt5_otel's own code is logged once per call site and swallowed, so a
telemetry bug can never take a request down. Under pytest the error is re-raised instead,
so the same bug fails the test suite rather than hiding in a log line.
"""

from __future__ import annotations

import logging
import os
import threading

from ttbt5_otel._core.scrub import scrub_message


class MaskCredentials(logging.Filter):
    """Masks credentials in a record's message and traceback before any handler sees it.

    Our messages quote endpoints and the errors of the SDK, gRPC and HTTP clients, which
    quote URLs with their userinfo and headers; a log line is as much a leak as a span.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = scrub_message(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_message(logging.Formatter().formatException(record.exc_info))
        return True


_MASK = MaskCredentials()


def own_logger(name: str) -> logging.Logger:
    """The logger ``name`` with credential masking attached (once)."""
    logger = logging.getLogger(name)
    if _MASK not in logger.filters:
        logger.addFilter(_MASK)
    return logger


_LOG = own_logger("ttbt5_otel")
_reported: set[str] = set()
_lock = threading.Lock()


def _under_pytest() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ or os.environ.get("TTBT5_STRICT_INTERNAL") == "1"


def internal_error(where: str, exc: BaseException) -> None:
    """Report an instrumentation failure at ``where``: raise under pytest, else log once."""
    if _under_pytest() and os.environ.get("TTBT5_STRICT_INTERNAL") != "0":
        raise exc
    with _lock:
        first = where not in _reported
        _reported.add(where)
    if first:
        _LOG.warning(
            "ttbt5_otel instrumentation failed in %s; telemetry from there may be incomplete",
            where,
            exc_info=(type(exc), exc, exc.__traceback__),
        )


def warn_once(key: str, message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process."""
    with _lock:
        if key in _reported:
            return
        _reported.add(key)
    _LOG.warning(message, *args)


def reset_reported() -> None:
    """Forget which call sites already reported (used by tests and after fork)."""
    with _lock:
        _reported.clear()
