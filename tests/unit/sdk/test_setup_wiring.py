"""The wiring inside ``init()``, in-process: what each option makes ``setup`` build and start.

``test_options_take_effect`` checks every option in a fresh process; these tests read the
same facts off the objects ``_spool_for``, ``_spooled``, ``_build``, ``_start_extras`` and
the ``Telemetry`` handle create here, so that the mutation check (which counts in-process
tests only) sees them: the spool directory and cap, the log file's rotation, which exporters
and processors exist for which exporter, the budgets flush and shutdown hand on.
"""

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asyncio import AsyncioInstrumentor
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

import ttbt5_otel
from ttbt5_otel._core import guard
from ttbt5_otel._core.limits import set_cardinality_limit
from ttbt5_otel._core.otel import meter
from ttbt5_otel._core.scrub import active_scrubber, configure_scrubber
from ttbt5_otel._sdk import exporters
from ttbt5_otel._sdk import setup as _setup
from ttbt5_otel._sdk.accounting import CountingMetricExporter, Ledger
from ttbt5_otel._sdk.config import resolve_config
from ttbt5_otel._sdk.instrumentors import DISABLED_VARIABLE, SEMCONV_VARIABLE
from ttbt5_otel._sdk.spool import Spool, SpoolingLogExporter, SpoolingSpanExporter
from ttbt5_otel._sdk.spool_files import SpoolDirectory
from ttbt5_otel._signals.log_bridge import installed_bridge, remove_bridge

# Nothing listens on port 9: an export fails at once instead of retrying for seconds.
NOWHERE = {"endpoint": "http://127.0.0.1:9", "timeout": 0.2}
URL = "postgres://app:hunter2@db.internal:5432/orders"
GAVE_UP = "telemetry shutdown gave up after"


@pytest.fixture
def build() -> Iterator[Callable[..., _setup.Telemetry]]:
    """``_setup._build`` from explicit options only (no environment); all shut down after."""
    built: list[_setup.Telemetry] = []

    def make(**options: Any) -> _setup.Telemetry:
        telemetry = _setup._build(resolve_config(options, {}))
        built.append(telemetry)
        return telemetry

    yield make
    for telemetry in built:
        telemetry.shutdown(timeout=0.2)
    built.clear()
    # The SDK keeps every live metric reader in a class-wide set; let ours go with the test.
    gc.collect()


@pytest.fixture
def no_bridge() -> Iterator[None]:
    """Run with no logging bridge installed (a leftover one would refuse the test's own)."""
    remove_bridge(installed_bridge())
    yield
    remove_bridge(installed_bridge())


@pytest.fixture
def lenient_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Internal errors logged as in production (under pytest they raise), each site fresh."""
    monkeypatch.setenv("TTBT5_STRICT_INTERNAL", "0")
    monkeypatch.setattr(guard, "_reported", set())


@pytest.fixture
def fresh_init(capture_telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run init() against the capture providers; undo its handle and policies afterwards."""
    assert _setup.current_telemetry() is None
    monkeypatch.setenv(SEMCONV_VARIABLE, "")  # init() sets it; restored after the test
    yield
    ttbt5_otel.shutdown()
    _setup._current = None
    configure_scrubber()
    set_cardinality_limit(2000)


class Recorder:
    """Stands in for a provider's ``force_flush``: records the budget and the thread."""

    def __init__(self, result: bool = True, delay: float = 0.0) -> None:
        self.result = result
        self.delay = delay
        self.budgets: list[int] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, timeout_millis: int = 30_000) -> bool:
        self.budgets.append(timeout_millis)
        self.threads.append(threading.current_thread())
        time.sleep(self.delay)
        return self.result


def record_flushes(telemetry: _setup.Telemetry, **recorder: Any) -> dict[str, Recorder]:
    providers = telemetry.providers
    assert providers is not None
    recorders = {}
    for name in ("tracer_provider", "meter_provider", "logger_provider"):
        recorders[name] = Recorder(**recorder)
        getattr(providers, name).force_flush = recorders[name]
    return recorders


def record_meter_shutdown(telemetry: _setup.Telemetry, fail: bool = False) -> list[float]:
    providers = telemetry.providers
    assert providers is not None
    original = providers.meter_provider.shutdown
    budgets: list[float] = []

    def shutdown(timeout_millis: float = 30_000, **kwargs: object) -> None:
        budgets.append(timeout_millis)
        original(timeout_millis=timeout_millis)
        if fail:
            raise RuntimeError("meter shutdown failed")

    providers.meter_provider.shutdown = shutdown  # type: ignore[method-assign]
    return budgets


# --- the disk spool -----------------------------------------------------------------------


def test_the_spool_gets_the_configured_directory_cap_ledgers_and_drain_budget(tmp_path: Path):
    """spool_dir, spool_max_mb (1.5 MiB = 1572864 bytes) and shutdown_timeout reach the spool."""
    directory = tmp_path / "spool"
    config = resolve_config(
        {**NOWHERE, "spool_dir": str(directory), "spool_max_mb": 1.5, "shutdown_timeout": 2.5}, {}
    )
    ledger = Ledger()
    spool = _setup._spool_for(config, ledger)
    assert isinstance(spool, Spool)
    try:
        assert spool.directory.path == directory
        assert directory.is_dir()
        assert spool.directory.max_bytes == 1_572_864
        assert spool.drain_timeout == 2.5
        # The sender goes to the configured collector, where nothing listens.
        assert spool._send("traces", b"") is False
    finally:
        spool.stop()
    # Stopped, the spool keeps what it is given on disk; each signal counts into its own
    # ledger of the pipeline.
    spool.store("traces", b"t" * 10, 3)
    spool.store("logs", b"l" * 10, 4)
    assert (ledger.spans.spooled, ledger.logs.spooled) == (3, 4)
    assert sorted((f.signal, f.items) for f in spool.directory.files()) == [
        ("logs", 4),
        ("traces", 3),
    ]


@pytest.mark.parametrize(
    "options",
    [
        {**NOWHERE},
        {"exporter": "console", "spool_dir": "SPOOL"},
        {"exporter": "none", "spool_dir": "SPOOL"},
    ],
    ids=["otlp-without-spool_dir", "console", "none"],
)
def test_no_spool_without_a_directory_or_without_otlp(tmp_path: Path, options: dict[str, Any]):
    """Only OTLP export spools, and only with spool_dir: nothing else creates the directory."""
    directory = tmp_path / "spool"
    if options.get("spool_dir") == "SPOOL":
        options = {**options, "spool_dir": str(directory)}
    assert _setup._spool_for(resolve_config(options, {}), Ledger()) is None
    assert not directory.exists()


def test_spooled_wraps_each_exporter_around_the_one_spool(tmp_path: Path):
    """Spans and logs both fall back to the same spool; without a spool they pass unchanged."""
    spool = Spool(SpoolDirectory(tmp_path, max_bytes=1000), lambda signal, payload: False, {})
    spans, logs = exporters.ConsoleSpanExporter(), exporters.ConsoleLogExporter()
    try:
        assert _setup._spooled(None, spans, logs) == (spans, logs)
        wrapped_spans, wrapped_logs = _setup._spooled(spool, spans, logs)
        assert isinstance(wrapped_spans, SpoolingSpanExporter)
        assert (wrapped_spans.inner, wrapped_spans.spool) == (spans, spool)
        assert isinstance(wrapped_logs, SpoolingLogExporter)
        assert (wrapped_logs.inner, wrapped_logs.spool) == (logs, spool)
        # A signal without an exporter stays without one, spool or not.
        assert _setup._spooled(spool, None, None) == (None, None)
    finally:
        spool.stop()


# --- the pipeline _build assembles --------------------------------------------------------


def test_build_with_a_spool_sends_spans_and_logs_through_it_but_not_metrics(
    build: Callable[..., _setup.Telemetry], tmp_path: Path
):
    """With spool_dir, spans and logs reach OTLP through the spool; metrics go straight."""
    directory = tmp_path / "spool"
    telemetry = build(**NOWHERE, spool_dir=str(directory), spool_max_mb=2.0)
    providers = telemetry.providers
    assert providers is not None
    spool = telemetry._spool
    assert isinstance(spool, Spool)
    assert (spool.directory.path, spool.directory.max_bytes) == (directory, 2 * 1024 * 1024)
    assert telemetry._span_exporter is providers.span_exporter
    assert providers.span_exporter is not None
    spans = providers.span_exporter.inner
    assert isinstance(spans, SpoolingSpanExporter)
    assert spans.spool is spool
    assert isinstance(spans.inner, OTLPSpanExporter)
    assert telemetry._log_exporter is not None
    logs = telemetry._log_exporter.inner
    assert isinstance(logs, SpoolingLogExporter)
    assert logs.spool is spool
    assert isinstance(logs.inner, OTLPLogExporter)
    assert telemetry._metric_exporter is not None
    assert isinstance(telemetry._metric_exporter.inner, OTLPMetricExporter)

    # A span the collector cannot take lands in that directory, counted in the pipeline's
    # own ledger (the one its self-metrics report). The spool's resending is stopped first,
    # so that the file stays there to be seen.
    spool.stop()
    with providers.tracer_provider.get_tracer("wiring").start_as_current_span("kept"):
        pass
    assert providers.tracer_provider.force_flush(5_000)
    assert providers.ledger.spans.spooled == 1
    assert [(f.signal, f.items) for f in spool.directory.files()] == [("traces", 1)]


def test_build_counts_metric_points_into_the_pipelines_ledger(
    build: Callable[..., _setup.Telemetry],
):
    """One periodic reader: scrubbing, then counting into the ledger, then the OTLP exporter."""
    telemetry = build(**NOWHERE)
    providers = telemetry.providers
    assert providers is not None
    [reader] = providers.meter_provider._metric_readers
    assert isinstance(reader, PeriodicExportingMetricReader)
    counting = reader._exporter.inner
    assert isinstance(counting, CountingMetricExporter)
    assert counting.inner is telemetry._metric_exporter
    assert counting.ledger is providers.ledger.metric_points
    assert telemetry._spool is None
    [processor] = providers.tracer_provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    assert processor._batch_processor._exporter.ledger is providers.ledger.spans


def test_build_without_an_exporter_sets_up_no_pipeline(build: Callable[..., _setup.Telemetry]):
    """exporter="none": providers without processors, readers or exporters to swap."""
    telemetry = build(exporter="none")
    providers = telemetry.providers
    assert providers is not None
    assert providers.tracer_provider._active_span_processor._span_processors == ()
    assert providers.meter_provider._metric_readers == []
    log_processors = providers.logger_provider._multi_log_record_processor._log_record_processors
    assert log_processors == ()
    assert telemetry._span_exporter is None
    assert telemetry._metric_exporter is None
    assert telemetry._log_exporter is None
    assert telemetry._spool is None


def test_build_for_the_console_prints_each_signal_as_it_ends(
    build: Callable[..., _setup.Telemetry],
):
    """exporter="console": console exporters, spans and logs exported synchronously."""
    telemetry = build(exporter="console")
    providers = telemetry.providers
    assert providers is not None
    [processor] = providers.tracer_provider._active_span_processor._span_processors
    assert isinstance(processor, SimpleSpanProcessor)
    assert providers.span_exporter is not None
    assert isinstance(providers.span_exporter.inner, exporters.ConsoleSpanExporter)
    log_processors = providers.logger_provider._multi_log_record_processor._log_record_processors
    assert [type(p) for p in log_processors] == [SimpleLogRecordProcessor]
    assert telemetry._log_exporter is not None
    assert isinstance(telemetry._log_exporter.inner, exporters.ConsoleLogExporter)
    assert telemetry._metric_exporter is not None
    assert isinstance(telemetry._metric_exporter.inner, exporters.ConsoleMetricExporter)


def test_after_fork_the_fresh_exporters_still_spool(
    build: Callable[..., _setup.Telemetry], tmp_path: Path
):
    """A forked child's new OTLP exporters are wrapped around the same spool again."""
    telemetry = build(**NOWHERE, spool_dir=str(tmp_path / "spool"))
    assert telemetry._span_exporter is not None
    assert telemetry._log_exporter is not None
    before_spans = telemetry._span_exporter.inner
    before_logs = telemetry._log_exporter.inner
    telemetry._renew_after_fork()
    spans = telemetry._span_exporter.inner
    logs = telemetry._log_exporter.inner
    assert isinstance(spans, SpoolingSpanExporter)
    assert isinstance(logs, SpoolingLogExporter)
    assert spans is not before_spans
    assert logs is not before_logs
    assert spans.spool is telemetry._spool
    assert logs.spool is telemetry._spool


# --- what _start_extras starts ------------------------------------------------------------


def test_extras_open_the_log_file_with_the_configured_rotation(
    build: Callable[..., _setup.Telemetry],
    no_bridge: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """log_file, log_file_max_mb (0.5 MiB = 524288 bytes) and log_file_backups reach the file."""
    monkeypatch.setattr(_setup, "_agent_instruments", True)  # no instrumentation here
    path = tmp_path / "logs" / "app.log"
    telemetry = build(
        exporter="none",
        runtime_metrics=False,
        log_level="WARNING",
        log_file=str(path),
        log_file_max_mb=0.5,
        log_file_backups=3,
    )
    _setup._start_extras(telemetry)
    bridge = telemetry._log_bridge
    assert bridge is not None
    assert bridge is installed_bridge()
    assert bridge.level == logging.WARNING
    handler = bridge.file
    assert isinstance(handler, RotatingFileHandler)
    assert (handler.baseFilename, handler.maxBytes, handler.backupCount) == (str(path), 524288, 3)
    logging.getLogger("wiring.file").warning("kept in the file")
    telemetry.shutdown(timeout=0.2)
    assert installed_bridge() is None
    assert "kept in the file" in path.read_text()


def test_extras_without_the_bridge_install_none(
    build: Callable[..., _setup.Telemetry], no_bridge: None, monkeypatch: pytest.MonkeyPatch
):
    """logging_bridge=False: no bridge, so no log records exported and no log file."""
    monkeypatch.setattr(_setup, "_agent_instruments", True)
    telemetry = build(exporter="none", runtime_metrics=False, logging_bridge=False)
    _setup._start_extras(telemetry)
    assert telemetry._log_bridge is None
    assert installed_bridge() is None


@pytest.mark.parametrize(
    ("runtime_metrics", "own_providers", "expected"),
    [(True, True, 1), (True, False, 0), (False, True, 0)],
    ids=["on-own-providers", "on-foreign-providers", "off"],
)
def test_runtime_metrics_only_when_asked_and_only_on_own_providers(
    build: Callable[..., _setup.Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    runtime_metrics: bool,
    own_providers: bool,
    expected: int,
):
    """The process.* instruments are registered once, on the package meter, by an own setup."""
    registered: list[Any] = []
    monkeypatch.setattr(_setup, "register_runtime_metrics", registered.append)
    monkeypatch.setattr(_setup, "_agent_instruments", True)
    options = {"exporter": "none", "logging_bridge": False, "runtime_metrics": runtime_metrics}
    if own_providers:
        telemetry = build(**options)
    else:
        telemetry = _setup.Telemetry(config=resolve_config(options, {}), providers=None)
    _setup._start_extras(telemetry)
    assert registered == [meter()] * expected


@pytest.mark.parametrize(
    ("asyncio", "status"), [(False, "skipped"), (True, "instrumented")], ids=["off", "on"]
)
def test_extras_activate_the_listed_instrumentations_with_stable_http_conventions(
    build: Callable[..., _setup.Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    asyncio: bool,
    status: str,
):
    """instrument and instrument_asyncio decide what is instrumented; HTTP semconv is stable."""
    monkeypatch.setattr(_setup, "_agent_instruments", False)
    monkeypatch.setenv(SEMCONV_VARIABLE, "")  # unset for the code, restored after the test
    monkeypatch.delenv(DISABLED_VARIABLE, raising=False)
    telemetry = build(
        exporter="none",
        logging_bridge=False,
        runtime_metrics=False,
        instrument=("asyncio",),
        instrument_asyncio=asyncio,
    )
    _setup._start_extras(telemetry)
    assert os.environ[SEMCONV_VARIABLE] == "http"
    results = {r.name: r for r in telemetry.instrumentations}
    assert results["asyncio"].status == status
    assert AsyncioInstrumentor().is_instrumented_by_opentelemetry is asyncio
    others = {r.reason for name, r in results.items() if name not in ("asyncio", "logging")}
    assert others <= {"not listed in instrument"}
    telemetry.shutdown(timeout=0.2)
    assert not AsyncioInstrumentor().is_instrumented_by_opentelemetry


def test_under_the_agent_extras_leave_instrumentation_and_semconv_alone(
    build: Callable[..., _setup.Telemetry], monkeypatch: pytest.MonkeyPatch
):
    """opentelemetry-instrument activates the instrumentors itself: init() adds none."""
    monkeypatch.setattr(_setup, "_agent_instruments", True)
    monkeypatch.setenv(SEMCONV_VARIABLE, "")
    telemetry = build(exporter="none", logging_bridge=False, runtime_metrics=False)
    _setup._start_extras(telemetry)
    assert os.environ[SEMCONV_VARIABLE] == ""
    assert telemetry.instrumentations == ()


# --- flush and shutdown budgets -----------------------------------------------------------


def test_flush_hands_each_provider_what_is_left_of_the_budget(
    build: Callable[..., _setup.Telemetry],
):
    """force_flush(2.0): the first provider gets just under 2000 ms, on a daemon helper."""
    telemetry = build(exporter="none")
    recorders = record_flushes(telemetry)
    assert telemetry.force_flush(timeout=2.0) is True
    budgets = [r.budgets for r in recorders.values()]
    assert all(len(b) == 1 for b in budgets)
    first = recorders["tracer_provider"].budgets[0]
    assert 1900 <= first <= 2000
    assert all(b[0] <= first for b in budgets)
    [helper] = {thread for r in recorders.values() for thread in r.threads}
    # The helper is abandoned at the deadline: it must never hold the interpreter open,
    # and it is found by its name.
    assert helper is not threading.current_thread()
    assert helper.daemon is True
    assert helper.name == "ttbt5-flush"


def test_an_expired_budget_gives_each_provider_zero_ms(build: Callable[..., _setup.Telemetry]):
    """Past the deadline a provider gets 0 ms, never a negative or invented budget."""
    telemetry = build(exporter="none")
    recorders = record_flushes(telemetry)
    providers = telemetry.providers
    assert providers is not None
    assert telemetry._flush([providers.tracer_provider, providers.logger_provider], 0) is True
    assert recorders["tracer_provider"].budgets == [0]
    assert recorders["logger_provider"].budgets == [0]


def test_one_failing_flush_fails_the_whole_flush(
    lenient_errors: None, build: Callable[..., _setup.Telemetry]
):
    """A provider that did not flush, or raised, makes force_flush False even if others did."""
    telemetry = build(exporter="none")
    recorders = record_flushes(telemetry)
    providers = telemetry.providers
    assert providers is not None
    recorders["tracer_provider"].result = False
    assert telemetry.force_flush(timeout=1) is False
    recorders["tracer_provider"].result = True
    assert telemetry.force_flush(timeout=1) is True

    def broken(timeout_millis: int = 30_000) -> bool:
        raise RuntimeError("flush failed")

    providers.logger_provider.force_flush = broken  # the last one flushed
    assert telemetry.force_flush(timeout=1) is False


def test_within_reports_a_failing_task_as_not_done(lenient_errors: None, caplog):
    """An exception on the helper thread is logged once and counts as an unfinished task."""

    def failing() -> bool:
        raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        assert _setup._within(1.0, "probe", failing) is False
    assert "ttbt5_otel instrumentation failed in probe" in caplog.text


def test_shutdown_flushes_spans_and_logs_then_gives_metrics_the_rest_of_the_budget(
    build: Callable[..., _setup.Telemetry], caplog
):
    """Traces and logs are flushed first; the meter provider's shutdown gets what is left."""
    telemetry = build(exporter="none")
    recorders = record_flushes(telemetry)
    budgets = record_meter_shutdown(telemetry)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        telemetry.shutdown(timeout=100.0)
    assert GAVE_UP not in caplog.text
    assert telemetry.is_shut_down
    assert len(recorders["tracer_provider"].budgets) == 1
    assert len(recorders["logger_provider"].budgets) == 1
    assert recorders["meter_provider"].budgets == []  # exported once, by its shutdown
    assert recorders["tracer_provider"].threads[0].name == "ttbt5-shutdown"
    [meter_budget] = budgets
    assert 99_000 < meter_budget <= 100_000


def test_a_short_shutdown_budget_is_not_rounded_up(build: Callable[..., _setup.Telemetry], caplog):
    """shutdown(0.9) after 0.1 s of flushing leaves the meter provider 800 ms, not a second."""
    telemetry = build(exporter="none")
    record_flushes(telemetry, delay=0.05)  # traces and logs: 0.1 s
    budgets = record_meter_shutdown(telemetry)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        telemetry.shutdown(timeout=0.9)
    assert GAVE_UP not in caplog.text
    [meter_budget] = budgets
    assert 0 < meter_budget <= 800


def test_a_failing_meter_shutdown_is_reported_and_counts_as_given_up(
    lenient_errors: None, build: Callable[..., _setup.Telemetry], caplog
):
    """Within the budget, a failing metrics shutdown is an internal error and a lost flush."""
    telemetry = build(exporter="none")
    record_meter_shutdown(telemetry, fail=True)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        telemetry.shutdown(timeout=0.8)
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("ttbt5_otel instrumentation failed in shutdown;") for m in messages)
    assert (
        "telemetry shutdown gave up after 0.8 s; dropped 0 spans and 0 log records still "
        "queued or in flight"
    ) in messages


def test_shutting_down_on_foreign_providers_completes(caplog, capture_telemetry: Any):
    """Attached to someone else's providers, shutdown flushes them and reports no give-up."""
    telemetry = _setup.Telemetry(config=resolve_config({}, {}), providers=None)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        telemetry.shutdown(timeout=1.0)
    assert GAVE_UP not in caplog.text
    assert telemetry.is_shut_down


def test_module_level_flush_and_shutdown_pass_their_timeout_on(
    build: Callable[..., _setup.Telemetry], monkeypatch: pytest.MonkeyPatch
):
    """ttbt5_otel.force_flush(t) and shutdown(t) hand t to the handle, and its outcome back."""
    telemetry = build(exporter="none", shutdown_timeout=60.0)
    monkeypatch.setattr(_setup, "_current", telemetry)
    recorders = record_flushes(telemetry)
    tracer = recorders["tracer_provider"]
    assert ttbt5_otel.force_flush(timeout=0.3) is True
    tracer.result = False
    assert ttbt5_otel.force_flush(timeout=0.3) is False
    assert all(budget <= 300 for budget in tracer.budgets)
    tracer.result = True
    ttbt5_otel.shutdown(timeout=0.4)
    assert telemetry.is_shut_down
    assert 0 < tracer.budgets[-1] <= 400


# --- init() and an earlier, shut-down init() ----------------------------------------------


def test_ours_shut_down_recognises_its_own_installed_providers(
    build: Callable[..., _setup.Telemetry], monkeypatch: pytest.MonkeyPatch
):
    """Only a shut-down handle whose tracer provider is the installed one counts as ours."""
    earlier = build(exporter="none")
    assert earlier.providers is not None
    installed: list[Any] = [earlier.providers.tracer_provider]
    monkeypatch.setattr(_setup.trace, "get_tracer_provider", lambda: installed[0])
    assert _setup._ours_shut_down(earlier) is False  # still running
    earlier.shutdown(timeout=0.2)
    assert _setup._ours_shut_down(earlier) is True
    assert _setup._ours_shut_down(None) is False
    installed[0] = TracerProvider(shutdown_on_exit=False)
    assert _setup._ours_shut_down(earlier) is False


def test_init_after_our_own_shutdown_says_nothing_more_is_exported(
    fresh_init: None,
    build: Callable[..., _setup.Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    caplog,
):
    """The in-process counterpart of the subprocess test: the exact error, not the info line."""
    earlier = build(exporter="none")
    earlier.shutdown(timeout=0.2)
    assert earlier.providers is not None
    monkeypatch.setattr(_setup, "_current", earlier)
    monkeypatch.setattr(
        _setup.trace, "get_tracer_provider", lambda: earlier.providers.tracer_provider
    )
    with caplog.at_level(logging.INFO, logger="ttbt5_otel"):
        telemetry = ttbt5_otel.init(runtime_metrics=False, instrument=("none",))
    assert telemetry.providers is None
    messages = [r.getMessage() for r in caplog.records if r.name == "ttbt5_otel"]
    assert messages == [
        (
            "ttbt5_otel.init() after shutdown(): OpenTelemetry's global providers can be set "
            "only once per process, so telemetry from now on is not exported; shut down only "
            "at process exit"
        )
    ]
    assert [r.levelno for r in caplog.records if r.name == "ttbt5_otel"] == [logging.ERROR]
    telemetry.shutdown(timeout=0.2)


@pytest.mark.parametrize(
    ("options", "scrubbed"),
    [
        ({}, True),
        ({"scrub_values": False}, False),
        ({"scrub_callback": lambda match: ttbt5_otel.ScrubAction.KEEP}, False),
    ],
    ids=["default", "scrub_values-off", "callback-keeps"],
)
def test_init_hands_scrub_values_and_callback_to_the_scrubber(
    fresh_init: None, options: dict[str, Any], scrubbed: bool
):
    """A password in a URL is masked by default; scrub_values=False or a callback keep it."""
    ttbt5_otel.init(runtime_metrics=False, instrument=("none",), **options)
    text = str(active_scrubber().text(URL, "span.name"))
    assert ("hunter2" not in text) is scrubbed
    assert "db.internal" in text
