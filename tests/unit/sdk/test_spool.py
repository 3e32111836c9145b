"""The disk spool: bounded, ordered, shared safely between processes, counted."""

import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from ttbt5_otel import ConfigError
from ttbt5_otel._sdk.accounting import CountingSpanExporter, Ledger
from ttbt5_otel._sdk.spool import Spool, SpoolingSpanExporter
from ttbt5_otel._sdk.spool_files import SpoolDirectory


def test_files_come_back_oldest_first_and_the_cap_evicts_the_oldest(tmp_path):
    directory = SpoolDirectory(tmp_path / "spool", max_bytes=250)
    assert directory.append("traces", b"a" * 100, 3) == []
    assert directory.append("logs", b"b" * 100, 4) == []
    [evicted] = directory.append("traces", b"c" * 100, 5)
    assert (evicted.signal, evicted.items) == ("traces", 3)
    assert [(f.signal, f.items, f.path.read_bytes()[:1]) for f in directory.files()] == [
        ("logs", 4, b"b"),
        ("traces", 5, b"c"),
    ]
    assert directory.size() == 200
    assert oct((tmp_path / "spool").stat().st_mode & 0o777) == "0o700"


def test_a_claimed_file_is_taken_once_and_a_dead_owner_gives_it_back(tmp_path):
    directory = SpoolDirectory(tmp_path, max_bytes=10_000)
    directory.append("traces", b"x", 1)
    [stored] = directory.files()
    claimed = directory.claim(stored)
    assert claimed is not None
    assert directory.claim(stored) is None
    assert directory.files() == []
    # A process that died mid-send: its claim goes back in line at the next start.
    dead = claimed.with_name(claimed.name.rsplit(".", 1)[0] + ".999999999")
    claimed.rename(dead)
    assert [f.items for f in SpoolDirectory(tmp_path, max_bytes=10_000).files()] == [1]


def test_a_directory_others_can_write_to_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match=r"spool_dir: .*writable by no other"):
        SpoolDirectory(shared, max_bytes=1)


def eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Collector:
    """A send function that refuses until told otherwise, recording what it took."""

    def __init__(self):
        self.up = False
        self.received = []
        self.delivered = threading.Event()

    def __call__(self, signal, payload):
        if not self.up:
            return False
        request = ExportTraceServiceRequest.FromString(payload)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.received += [span.name for span in scope_spans.spans]
        self.delivered.set()
        return True


class Flaky(SpanExporter):
    def __init__(self, collector):
        self.collector = collector
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        if not self.collector.up:
            return SpanExportResult.FAILURE
        self.collector.received += [s.name for s in spans]
        return SpanExportResult.SUCCESS


def test_an_outage_is_spooled_then_resent_in_order_without_touching_the_network(tmp_path):
    collector = Collector()
    ledger = Ledger()
    spool = Spool(SpoolDirectory(tmp_path, 1 << 20), collector, {"traces": ledger.spans})
    inner = Flaky(collector)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SpoolingSpanExporter(inner, spool)))
    tracer = provider.get_tracer("spool")
    try:
        for i in range(5):
            with tracer.start_as_current_span(f"op-{i}"):
                pass
        # One failed export sends the signal offline: later batches go straight to disk.
        assert inner.calls == 1
        assert spool.offline("traces")
        # (The resending thread may hold one file at a time, so the ledger is the count.)
        assert ledger.spans.spooled == 5
        collector.up = True
        spool._wake.set()
        assert eventually(lambda: not spool.offline("traces"))
        assert collector.received == [f"op-{i}" for i in range(5)]
        assert not spool.offline("traces")
        with tracer.start_as_current_span("op-live"):
            pass
        assert collector.received[-1] == "op-live"
        assert inner.calls == 2
        assert ledger.spans.spooled == ledger.spans.replayed == 5
    finally:
        spool.stop()
        provider.shutdown()


def test_a_backlog_left_by_an_earlier_process_is_sent_first(tmp_path):
    directory = SpoolDirectory(tmp_path, 1 << 20)
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="from-before")
    directory.append("traces", request.SerializeToString(), 1)
    collector = Collector()
    collector.up = True
    ledger = Ledger()
    spool = Spool(SpoolDirectory(tmp_path, 1 << 20), collector, {"traces": ledger.spans})
    try:
        assert eventually(lambda: ledger.spans.replayed == 1)
        assert collector.received == ["from-before"]
    finally:
        spool.stop()
    assert list(tmp_path.iterdir()) == []


def _store_three(spool):
    for i in range(3):
        request = ExportTraceServiceRequest()
        request.resource_spans.add().scope_spans.add().spans.add(name=f"kept-{i}")
        spool.store("traces", request.SerializeToString(), 1)


def test_stop_spends_its_drain_budget_resending_when_the_collector_is_back(tmp_path):
    collector = Collector()
    ledger = Ledger()
    spool = Spool(SpoolDirectory(tmp_path, 1 << 20), collector, {"traces": ledger.spans}, 5.0)
    _store_three(spool)
    assert eventually(lambda: spool._passes_answered == 0)  # tried, refused, backing off
    collector.up = True
    spool.stop()
    assert collector.received == ["kept-0", "kept-1", "kept-2"]


def test_stop_does_not_wait_on_a_collector_that_refuses(tmp_path):
    collector = Collector()
    ledger = Ledger()
    spool = Spool(SpoolDirectory(tmp_path, 1 << 20), collector, {"traces": ledger.spans}, 5.0)
    _store_three(spool)
    started = time.monotonic()
    spool.stop()
    assert time.monotonic() - started < 1.0
    assert eventually(lambda: len(spool.directory.files()) == 3)  # kept for the next process


def test_a_spool_that_cannot_be_written_fails_the_export_so_the_loss_is_counted(
    tmp_path, monkeypatch
):
    collector = Collector()
    ledger = Ledger()
    spool = Spool(SpoolDirectory(tmp_path, 1 << 20), collector, {"traces": ledger.spans})
    provider = TracerProvider()
    counted = CountingSpanExporter(SpoolingSpanExporter(Flaky(collector), spool), ledger.spans)
    provider.add_span_processor(SimpleSpanProcessor(counted))
    tracer = provider.get_tracer("spool")

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool.directory, "append", disk_full)
    try:
        with tracer.start_as_current_span("lost"):
            pass
        books = ledger.snapshot()["spans"]
        assert books["export_failed"] == 1
        assert books["spooled"] == books["exported"] == 0
    finally:
        spool.stop()
        provider.shutdown()
