"""``init()`` in-process: idempotency, reuse of installed providers, shutdown, build."""

import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry.instrumentation.asyncio import AsyncioInstrumentor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

import ttbt5_otel
from tests.loopback import clean_env
from ttbt5_otel import ConfigError
from ttbt5_otel._core.limits import set_cardinality_limit
from ttbt5_otel._core.scrub import active_scrubber, configure_scrubber
from ttbt5_otel._sdk import setup as _setup
from ttbt5_otel._sdk.config import resolve_config
from ttbt5_otel._sdk.providers import build_resource
from ttbt5_otel._sdk.scrubbing import ScrubbingSpanExporter
from ttbt5_otel._signals.log_bridge import installed_bridge


@pytest.fixture
def fresh_init(capture_telemetry):
    """Run init() against the capture providers, and undo it afterwards."""
    assert _setup.current_telemetry() is None
    yield
    ttbt5_otel.shutdown()
    _setup._current = None


def processors_of(telemetry):
    return telemetry.providers.tracer_provider._active_span_processor._span_processors


def test_init_reuses_installed_providers_and_is_idempotent(fresh_init, capture_telemetry):
    first = ttbt5_otel.init(service_name="svc", runtime_metrics=False, instrument=("none",))
    second = ttbt5_otel.init(service_name="other")
    assert first is second
    assert first.providers is None, "the capture providers were already installed"
    assert first._log_bridge is None, "the capture fixture's bridge is reused, not doubled"

    @ttbt5_otel.traced(name="after-init")
    def work():
        logging.getLogger("svc").warning("inside")

    work()
    assert capture_telemetry.span_names() == ["after-init"]
    assert capture_telemetry.log_bodies() == [
        "OpenTelemetry providers already installed; ttbt5_otel reuses them",
        "ttbt5_otel.init() was already called; options of later calls are ignored",
        "inside",
    ]


def test_asyncio_instrumentation_is_on_by_default_and_removed_on_shutdown(fresh_init):
    telemetry = ttbt5_otel.init(runtime_metrics=False)
    assert AsyncioInstrumentor().is_instrumented_by_opentelemetry
    telemetry.shutdown()
    telemetry.shutdown()  # twice is fine
    assert telemetry.is_shut_down
    assert not AsyncioInstrumentor().is_instrumented_by_opentelemetry


def test_asyncio_instrumentation_can_be_turned_off(fresh_init):
    ttbt5_otel.init(instrument_asyncio=False, runtime_metrics=False)
    assert not AsyncioInstrumentor().is_instrumented_by_opentelemetry


def test_init_rejects_bad_options_before_touching_anything(capture_telemetry):
    with pytest.raises(ConfigError, match="protocol: 'udp' is not one of grpc, http/protobuf"):
        ttbt5_otel.init(protocol="udp")
    assert _setup.current_telemetry() is None


def test_build_wires_batch_processors_with_bounded_queues():
    config = resolve_config({"max_queue_size": 100, "max_export_batch_size": 10}, {})
    telemetry = _setup._build(config)
    try:
        [processor] = processors_of(telemetry)
        assert isinstance(processor, BatchSpanProcessor)
        assert processor._batch_processor._max_queue_size == 100
        assert isinstance(telemetry._span_exporter, ScrubbingSpanExporter)
        assert telemetry.resource.attributes["service.name"] == "unknown_service"
        providers = telemetry.providers
        readers = providers.meter_provider._metric_readers
        [reader] = [r for r in readers if isinstance(r, PeriodicExportingMetricReader)]
        assert reader._exporter.inner.inner is telemetry._metric_exporter
        log_processors = (
            providers.logger_provider._multi_log_record_processor._log_record_processors
        )
        [log_batch] = [p for p in log_processors if isinstance(p, BatchLogRecordProcessor)]
        assert log_batch._batch_processor._exporter.inner.inner is telemetry._log_exporter
        assert processor._batch_processor._exporter.inner is telemetry._span_exporter
        assert log_batch._batch_processor._max_queue_size == 100
    finally:
        telemetry.shutdown(timeout=0.2)


def test_console_mode_exports_synchronously(capsys):
    telemetry = _setup._build(resolve_config({"exporter": "console", "service_name": "c"}, {}))
    try:
        [processor] = processors_of(telemetry)
        assert isinstance(processor, SimpleSpanProcessor)
        tracer = telemetry.providers.tracer_provider.get_tracer("t")
        with tracer.start_as_current_span("printed", attributes={"token": "abc"}):
            pass
        err = capsys.readouterr().err
        assert "[span] printed" in err
        assert "token='[REDACTED]'" in err
    finally:
        telemetry.shutdown(timeout=0.2)


def test_renew_after_fork_swaps_identity_and_exporters():
    telemetry = _setup._build(resolve_config({"service_name": "forky"}, {}))
    try:
        before_id = telemetry.resource.attributes["service.instance.id"]
        before = (
            telemetry._span_exporter.inner,
            telemetry._metric_exporter.inner,
            telemetry._log_exporter.inner,
        )
        telemetry.resource._attributes = {**telemetry.resource.attributes, "process.pid": -1}
        # The SDK providers' own at-fork hooks, which run first, swap in merged copies.
        for provider in (
            telemetry.providers.tracer_provider,
            telemetry.providers.meter_provider,
            telemetry.providers.logger_provider,
        ):
            provider._update_resource(Resource({"process.pid": -1}))
        telemetry._renew_after_fork()
        attributes = telemetry.resource.attributes
        for copy in (
            telemetry.providers.tracer_provider.resource,
            telemetry.providers.meter_provider._sdk_config.resource,
            telemetry.providers.logger_provider.resource,
        ):
            assert copy.attributes["process.pid"] == os.getpid()
            assert copy.attributes["service.instance.id"] == attributes["service.instance.id"]
        assert attributes["service.instance.id"] != before_id
        assert attributes["service.name"] == "forky"
        assert attributes["process.pid"] == os.getpid()
        with pytest.raises(TypeError):
            attributes["service.name"] = "changed"  # still immutable, as the SDK expects
        after = (
            telemetry._span_exporter.inner,
            telemetry._metric_exporter.inner,
            telemetry._log_exporter.inner,
        )
        assert all(new is not old for new, old in zip(after, before, strict=True))
    finally:
        telemetry.shutdown(timeout=0.2)


def test_resource_has_host_process_and_explicit_attributes():
    config = resolve_config(
        {"service_name": "r", "environment": "prod", "resource_attributes": {"team": "core"}}, {}
    )
    attributes = build_resource(config).attributes
    assert attributes["deployment.environment.name"] == "prod"
    assert attributes["team"] == "core"
    for key in ("host.name", "process.pid", "process.runtime.version", "service.instance.id"):
        assert key in attributes


def test_cardinality_limit_setting_reaches_instruments_created_before_init(
    fresh_init, capture_telemetry
):
    early = ttbt5_otel.counter("shop.early")
    ttbt5_otel.init(metric_cardinality_limit=3, runtime_metrics=False)
    try:
        for user in range(10):
            early.add(1, {"user.id": str(user)})
        assert early.attribute_sets == 3
        assert capture_telemetry.counter_value("shop.early", {"otel.metric.overflow": True}) == 7
    finally:
        set_cardinality_limit(2000)


def test_cardinality_limit_setting_reaches_retry_outcomes(fresh_init, capture_telemetry):
    overflow = {"otel.metric.overflow": True}
    ttbt5_otel.retry(name="known-before-the-limit", attempts=1)(lambda: None)()
    before = capture_telemetry.counter_value("ttbt5.retry.calls", overflow)
    ttbt5_otel.init(metric_cardinality_limit=1, runtime_metrics=False)
    try:
        for user in range(10):
            ttbt5_otel.retry(name=f"per-user-{user}", attempts=1)(lambda: None)()
        assert capture_telemetry.counter_value("ttbt5.retry.calls", overflow) == before + 10
        assert (
            capture_telemetry.counter_value("ttbt5.retry.calls", {"retry.name": "per-user-3"}) == 0
        )
    finally:
        set_cardinality_limit(2000)


def test_module_level_flush_and_shutdown_follow_init(fresh_init):
    """Before init() there is nothing to flush; after it, both act on the one handle."""
    assert ttbt5_otel.force_flush() is True
    ttbt5_otel.shutdown()  # a no-op without init()
    telemetry = ttbt5_otel.init(runtime_metrics=False)
    assert ttbt5_otel.force_flush(timeout=1.0) is True
    ttbt5_otel.shutdown(timeout=1.0)
    assert telemetry.is_shut_down


def test_init_installs_its_scrubbing_policy(fresh_init):
    try:
        ttbt5_otel.init(runtime_metrics=False, scrub_patterns=("pin",), scrub_allow=("tokens",))
        scrubber = active_scrubber()
        assert scrubber.is_secret("order_pin")
        assert scrubber.is_secret("password")
        assert not scrubber.is_secret("tokens")
    finally:
        configure_scrubber()


def test_init_reads_the_environment_and_the_config_file(fresh_init, monkeypatch, tmp_path):
    config_file = tmp_path / "app.toml"
    config_file.write_text('[telemetry]\nsample_ratio = 0.5\n[logging]\nlevel = "WARNING"\n')
    monkeypatch.setenv("TTBT5_SERVICE_NAME", "from-env")
    monkeypatch.setenv("TTBT5_CONFIG_FILE", str(config_file))
    telemetry = ttbt5_otel.init(runtime_metrics=False)
    assert telemetry.config.service_name == "from-env"
    assert (telemetry.config.sample_ratio, telemetry.config.log_level) == (0.5, "WARNING")


def test_a_bad_config_file_value_names_the_file(fresh_init, monkeypatch, tmp_path):
    config_file = tmp_path / "app.json"
    config_file.write_text('{"telemetry": {"sample_ratio": 2}}')
    monkeypatch.setenv("TTBT5_CONFIG_FILE", str(config_file))
    with pytest.raises(
        ConfigError, match=rf"sample_ratio: 2.0 is outside 0..1 \(from {config_file}"
    ):
        ttbt5_otel.init(runtime_metrics=False)


def test_init_without_foreign_providers_installs_its_own(
    fresh_init, monkeypatch, capture_telemetry
):
    """The path of a real application: providers built, set globally, runtime metrics on."""
    installed = []
    monkeypatch.setattr(_setup, "_foreign_providers_installed", lambda: False)
    monkeypatch.setattr(_setup.trace, "set_tracer_provider", installed.append)
    monkeypatch.setattr(_setup.metrics, "set_meter_provider", installed.append)
    monkeypatch.setattr(_setup._logs, "set_logger_provider", installed.append)
    telemetry = ttbt5_otel.init(endpoint="http://127.0.0.1:9", timeout=0.5, shutdown_timeout=0.5)
    providers = telemetry.providers
    assert installed == [
        providers.tracer_provider,
        providers.meter_provider,
        providers.logger_provider,
    ]
    # The package's meter still resolves to the test's providers, which see the runtime
    # metrics registered by init().
    assert "process.cpu.time" in capture_telemetry.metric_names()


def test_exit_and_fork_hooks(fresh_init, monkeypatch):
    """Registered once per process; the exit hook shuts down, the fork hook renews."""
    registered = []
    monkeypatch.setattr(_setup, "_fork_hook_registered", False)
    monkeypatch.setattr(_setup.os, "register_at_fork", lambda **hooks: registered.append(hooks))
    monkeypatch.setattr(_setup.atexit, "register", registered.append)
    first = ttbt5_otel.init(runtime_metrics=False)
    first.shutdown()
    ttbt5_otel.init(runtime_metrics=False)
    # Libraries imported on the way (certifi, for one) may register exit hooks of their own.
    ours = [hook for hook in registered if isinstance(hook, dict) or hook is _setup._at_exit]
    assert ours == [{"after_in_child": _setup._after_fork_in_child}, _setup._at_exit]

    # Nothing listens there: a short budget keeps the exit hook from waiting 5 s on it.
    built = _setup._build(
        resolve_config({"endpoint": "http://127.0.0.1:9", "shutdown_timeout": 0.2}, {})
    )
    monkeypatch.setattr(_setup, "_current", built)
    before = built.resource.attributes["service.instance.id"]
    _setup._after_fork_in_child()
    renewed = built.resource.attributes["service.instance.id"]
    assert renewed != before
    _setup._at_exit()
    assert built.is_shut_down
    _setup._after_fork_in_child()  # a shut-down handle is left alone
    assert built.resource.attributes["service.instance.id"] == renewed


def test_extras_install_the_bridge_at_the_configured_level():
    telemetry = _setup._build(resolve_config({"log_level": "WARNING", "instrument": ("none",)}, {}))
    try:
        _setup._start_extras(telemetry)
        assert telemetry._log_bridge is installed_bridge()
        assert telemetry._log_bridge.level == logging.WARNING
    finally:
        telemetry.shutdown(timeout=0.2)
    assert installed_bridge() is None


def test_init_leaves_instrumenting_to_the_agent(fresh_init, monkeypatch):
    monkeypatch.setattr(_setup, "_agent_instruments", False)
    telemetry = _setup.init_for_agent()
    assert _setup._agent_instruments is True
    assert telemetry.instrumentations == ()


def test_init_registers_the_worker_exit_flushes(fresh_init, monkeypatch):
    registered = []
    monkeypatch.setattr(_setup, "flush_workers_at_exit", lambda *a: registered.append(a))
    monkeypatch.setattr(_setup, "flush_this_worker_at_exit", lambda *a: registered.append(a))
    telemetry = ttbt5_otel.init(runtime_metrics=False, instrument=("none",))
    assert registered == [(telemetry, telemetry.shutdown), (telemetry.shutdown,)]


def test_flush_and_shutdown_return_at_their_deadline_whatever_the_exporter_does(caplog):
    """An export that never returns cannot hold force_flush() or shutdown() past the budget."""
    telemetry = _setup._build(resolve_config({"instrument": ("none",)}, {}))
    release = threading.Event()

    def stuck(timeout_millis: int = 30_000) -> bool:
        release.wait(30)
        return True

    for provider in (
        telemetry.providers.tracer_provider,
        telemetry.providers.meter_provider,
        telemetry.providers.logger_provider,
    ):
        provider.force_flush = stuck
    try:
        started = time.monotonic()
        assert telemetry.force_flush(timeout=0.3) is False
        assert time.monotonic() - started < 0.8
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
            telemetry.shutdown(timeout=0.3)
        assert time.monotonic() - started < 0.8
        assert "telemetry shutdown gave up after 0.3 s; dropped 0 spans" in caplog.text
    finally:
        release.set()
        # The abandoned helpers finish once released; they must not outlive the test.
        for helper in threading.enumerate():
            if helper.name in ("ttbt5-flush", "ttbt5-shutdown"):
                helper.join(10)


def test_init_after_shutdown_says_nothing_more_is_exported() -> None:
    """The global providers can be set once: a second init() says so instead of pretending."""
    source = (
        "import ttbt5_otel\n"
        "options = dict(service_name='s', exporter='none', instrument=['none'],\n"
        "               runtime_metrics=False)\n"
        "ttbt5_otel.init(**options)\n"
        "ttbt5_otel.shutdown()\n"
        "ttbt5_otel.init(**options)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", source],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "init() after shutdown()" in result.stderr
    assert "not exported" in result.stderr
