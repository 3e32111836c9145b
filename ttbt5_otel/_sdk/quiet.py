"""Rate limiting for the OpenTelemetry SDK's own warnings during an outage.

With the collector down, the batch processors warn once per dropped item and the exporters
once per failed batch: thousands of identical lines that bury the application's own logs
exactly when someone is reading them. Each distinct message is let through once per
``interval`` seconds, with the number of copies held back in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from ttbt5_otel._core.guard import own_logger

NOISY_LOGGERS: Final = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


class RateLimitFilter(logging.Filter):
    """Pass each distinct message at most once per ``interval`` seconds."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Let a message through, then hold back its copies for ``interval`` seconds."""
        super().__init__()
        self.interval = interval
        self._monotonic = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True for the first copy in each interval (annotated with the count held back)."""
        key = (record.name, str(record.msg))
        now = self._monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages suppressed)"
        return True


_installed: RateLimitFilter | None = None


def quiet_sdk_warnings(interval: float = 60.0) -> RateLimitFilter:
    """Attach one shared rate limiter to the SDK's noisy loggers (idempotent)."""
    global _installed  # noqa: PLW0603 - one filter shared by the SDK loggers
    if _installed is None:
        _installed = RateLimitFilter(interval)
        for name in NOISY_LOGGERS:
            # Their messages quote endpoints and gRPC/HTTP errors: masked like our own.
            own_logger(name).addFilter(_installed)
    return _installed
