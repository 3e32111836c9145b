"""An optional disk spool: spans and log records the collector cannot take now are sent later.

Off unless ``spool_dir`` is set. A spool needs a private, writable, persistent directory that
only the operator can choose well (containers often run with a read-only root; several
services on one host must not share one), and with the sidecar on the same host an outage is
rare and short, which the bounded queues and the loss counts already cover. Where losing
nothing matters, setting the directory is one line.

Once an export fails, the signal goes *offline*: every later batch is encoded and written to
the spool instead of waiting on the network, so the batch queue never overflows, and a
background thread resends the stored requests oldest first. The signal is online again only
when the spool holds none of its requests, so nothing overtakes older data. Metrics are not
spooled: their points are cumulative, so the next successful export carries every count, and
a stale point replayed later would look like a counter reset.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ttbt5_otel._core import guard as _guard
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._sdk.accounting import SignalLedger
from ttbt5_otel._sdk.config import TelemetryConfig
from ttbt5_otel._sdk.exporters import grpc_credentials, is_insecure, signal_url
from ttbt5_otel._sdk.otlp.encode import encode_logs, encode_spans
from ttbt5_otel._sdk.spool_files import SpoolDirectory

_LOG = own_logger("ttbt5_otel")
SPOOL_FULL = "spool_full"
_SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_FIRST_RETRY_S = 0.5
_LAST_RETRY_S = 10.0

Send = Callable[[str, bytes], bool]


def otlp_sender(config: TelemetryConfig) -> Send:
    """Send one encoded request for a signal to the configured collector; True if accepted."""
    headers = dict(config.headers)
    if config.protocol == "grpc":
        import grpc  # type: ignore[import-untyped]  # noqa: PLC0415

        target = config.endpoint.split("://", 1)[-1].rstrip("/")
        if is_insecure(config):
            channel = grpc.insecure_channel(target)
        else:
            credentials = grpc_credentials(config) or grpc.ssl_channel_credentials()
            channel = grpc.secure_channel(target, credentials)
        calls = {signal: channel.unary_unary(path) for signal, path in _SERVICES.items()}

        def send_grpc(signal: str, payload: bytes) -> bool:
            try:
                calls[signal](payload, timeout=config.timeout, metadata=tuple(headers.items()))
            except grpc.RpcError:
                return False
            return True

        return send_grpc

    import requests  # noqa: PLC0415 - a dependency of the OTLP/HTTP exporter

    session = requests.Session()
    session.headers.update({**headers, "Content-Type": "application/x-protobuf"})
    verify: str | bool = config.certificate_file or True

    def send_http(signal: str, payload: bytes) -> bool:
        try:
            response = session.post(
                signal_url(config, signal), data=payload, timeout=config.timeout, verify=verify
            )
        except requests.RequestException:
            return False
        return 200 <= response.status_code < 300  # noqa: PLR2004 - any 2xx is success

    return send_http


class Spool:
    """Stores failed requests and resends them, in order, from a background thread."""

    def __init__(
        self,
        directory: SpoolDirectory,
        send: Send,
        ledgers: dict[str, SignalLedger],
        drain_timeout: float = 0.0,
    ) -> None:
        """Spool into ``directory``; count into ``ledgers`` (keyed ``traces``/``logs``).

        At ``stop()`` the spool spends up to ``drain_timeout`` seconds resending what it
        holds, if the collector takes it; the rest waits on disk for the next process.
        """
        self.directory = directory
        self.drain_timeout = drain_timeout
        # A pass answers stop() only if it began after stop() asked: one that was already
        # running may have been refused just before the collector came back.
        self._passes = threading.Condition()
        self._passes_asked = 0
        self._passes_answered = -1  # no pass has ended yet
        self._send = send
        self._ledgers = ledgers
        self._offline = dict.fromkeys(_SERVICES, False)
        self._listing = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        for spooled in directory.files():  # left by an earlier run: send those first
            self._offline[spooled.signal] = True
        self._ensure_thread()

    def offline(self, signal: str) -> bool:
        """True while ``signal`` has requests waiting in the spool."""
        offline = self._offline[signal]
        if offline:
            self._ensure_thread()
        return offline

    def store(self, signal: str, payload: bytes, items: int) -> None:
        """Keep one request for later; evict (and count) the oldest beyond the size cap."""
        with self._listing:
            self._offline[signal] = True
            evicted_files = self.directory.append(signal, payload, items)
        self._ledgers[signal].spool(items)
        for evicted in evicted_files:
            self._ledgers[evicted.signal].drop(evicted.items, SPOOL_FULL)
            _guard.warn_once(
                "spool-full",
                "telemetry spool %s reached its cap of %d bytes; the oldest data is dropped "
                "and counted (error.type=spool_full)",
                self.directory.path,
                self.directory.max_bytes,
            )
        self._ensure_thread()
        self._wake.set()

    def _ensure_thread(self) -> None:
        # A forked child inherits the flag but not the thread.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        if self._stopped.is_set():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="ttbt5-spool", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # noqa: FBT003
        delay = _FIRST_RETRY_S
        try:
            while not self._stopped.is_set():
                with self._passes:
                    asked = self._passes_asked
                try:
                    sent_all = self._drain()
                except Exception as exc:  # a damaged file or a full disk must not end replay
                    _guard.internal_error("spool replay", exc)
                    sent_all = False
                # Empty, or the collector refused: either way a drain at stop is over.
                with self._passes:
                    self._passes_answered = asked
                    self._passes.notify_all()
                self._wake.wait(None if sent_all else delay)
                self._wake.clear()
                delay = _FIRST_RETRY_S if sent_all else min(delay * 2, _LAST_RETRY_S)
        finally:
            detach(token)

    def _drain(self) -> bool:
        """Send stored requests oldest first; True once none is left."""
        while not self._stopped.is_set():
            # Under the lock a store() cannot land between the listing and the flag.
            with self._listing:
                files = [f for f in self.directory.files() if f.signal in _SERVICES]
                for signal in self._offline:
                    if not any(f.signal == signal for f in files):
                        self._offline[signal] = False
            if not files:
                return True
            # One listing per pass, not per file: a long backlog is thousands of files.
            for spooled in files:
                if self._stopped.is_set():
                    return False
                claimed = self.directory.claim(spooled)
                if claimed is None:  # another process is sending it
                    continue
                if not self._send(spooled.signal, claimed.read_bytes()):
                    self.directory.give_back(claimed, spooled)
                    return False
                claimed.unlink()
                self._ledgers[spooled.signal].replay(spooled.items)
        return False

    def stop(self) -> None:
        """Resend for up to ``drain_timeout`` s, then stop; the rest stays for the next process."""
        thread = self._thread
        if (
            self.drain_timeout > 0
            and not self._stopped.is_set()
            and thread is not None
            and thread.is_alive()
            and any(self._offline.values())
        ):
            with self._passes:
                self._passes_asked += 1
                asked = self._passes_asked
                self._wake.set()
                self._passes.wait_for(lambda: self._passes_answered >= asked, self.drain_timeout)
        self._stopped.set()
        self._wake.set()


def _export_or_store(
    spool: Spool, signal: str, batch: Sequence[Any], export: Callable[[], bool]
) -> bool:
    """True once the batch is delivered or safely on disk."""
    if not spool.offline(signal):
        try:
            if export():
                return True
        except Exception as exc:
            _LOG.debug("export of %s failed, spooling: %s", signal, exc)
    payload = encode_spans(batch) if signal == "traces" else encode_logs(batch)
    try:
        spool.store(signal, payload, len(batch))
    except OSError as exc:  # a full or read-only disk: the batch is lost, and counted so
        _guard.warn_once(
            "spool-write", "telemetry spool %s cannot be written: %s", spool.directory.path, exc
        )
        return False
    return True


class SpoolingSpanExporter(SpanExporter):
    """Exports spans, or stores them in the spool while the collector is unreachable."""

    def __init__(self, inner: SpanExporter, spool: Spool) -> None:
        """Forward to ``inner``; fall back to ``spool``."""
        self.inner = inner
        self.spool = spool

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Success once delivered or stored: either way the batch is safe."""
        safe = _export_or_store(
            self.spool,
            "traces",
            spans,
            lambda: self.inner.export(spans) is SpanExportResult.SUCCESS,
        )
        return SpanExportResult.SUCCESS if safe else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Stop the spool's resending and shut the exporter down."""
        self.spool.stop()
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


class SpoolingLogExporter(LogRecordExporter):
    """Exports log records, or stores them in the spool while the collector is unreachable."""

    def __init__(self, inner: LogRecordExporter, spool: Spool) -> None:
        """Forward to ``inner``; fall back to ``spool``."""
        self.inner = inner
        self.spool = spool

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Success once delivered or stored: either way the batch is safe."""
        safe = _export_or_store(
            self.spool,
            "logs",
            batch,
            lambda: self.inner.export(batch) is LogRecordExportResult.SUCCESS,
        )
        return LogRecordExportResult.SUCCESS if safe else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        """Stop the spool's resending and shut the exporter down."""
        self.spool.stop()
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)
