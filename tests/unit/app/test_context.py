"""Application context: lifecycle order and failures, dependencies, events, health."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from ttbt5_otel import (
    DependencyNotFoundError,
    LifecycleHook,
    LifecyclePhase,
    get_application_context,
    load_settings,
)
from ttbt5_otel._app.health import HealthRegistry
from ttbt5_otel._sdk import setup as _setup
from ttbt5_otel.testing import reset_application_context


@pytest.fixture
def context(capture_telemetry):
    ctx = reset_application_context(load_settings(environ={}, telemetry={"runtime_metrics": False}))
    yield ctx
    if ctx.phase is LifecyclePhase.RUNNING:
        asyncio.run(ctx.shutdown())
    _setup._current = None
    reset_application_context()


class Recorder(LifecycleHook):
    def __init__(self, name, log, fail_on_start=False, fail_on_stop=False, use_async=False):
        self.name = name
        self.log = log
        self.fail_on_start = fail_on_start
        self.fail_on_stop = fail_on_stop
        self.use_async = use_async

    def _do(self, what, fail):
        self.log.append(f"{what}:{self.name}")
        if fail:
            raise RuntimeError(f"{self.name} {what} failed")

    def on_startup(self):
        if self.use_async:
            return self._async("start", self.fail_on_start)
        self._do("start", self.fail_on_start)
        return None

    def on_shutdown(self):
        if self.use_async:
            return self._async("stop", self.fail_on_stop)
        self._do("stop", self.fail_on_stop)
        return None

    async def _async(self, what, fail):
        await asyncio.sleep(0)
        self._do(what, fail)


async def test_hooks_start_in_order_and_stop_in_reverse_each_traced(context, capture_telemetry):
    log = []
    context.add_lifecycle_hook(Recorder("db", log))
    context.add_lifecycle_hook(Recorder("cache", log, use_async=True))
    phases = []
    context.events.subscribe("*", lambda event: phases.append(event))  # noqa: PLW0108 - called with event=
    await context.startup()
    assert context.phase is LifecyclePhase.RUNNING
    await context.shutdown()
    assert context.phase is LifecyclePhase.STOPPED
    assert log == ["start:db", "start:cache", "stop:cache", "stop:db"]
    assert phases == [
        "lifecycle.starting",
        "lifecycle.running",
        "lifecycle.stopping",
        "lifecycle.stopped",
    ]
    hooks = [
        (s.name, s.attributes["lifecycle.hook"])
        for s in capture_telemetry.spans
        if s.name.startswith("lifecycle.")
    ]
    assert hooks == [
        ("lifecycle.startup", "db"),
        ("lifecycle.startup", "cache"),
        ("lifecycle.shutdown", "cache"),
        ("lifecycle.shutdown", "db"),
    ]
    startup = capture_telemetry.span("application.startup")
    first_hook = next(s for s in capture_telemetry.spans if s.name == "lifecycle.startup")
    assert first_hook.parent.span_id == startup.context.span_id


async def test_failing_startup_hook_stops_those_already_started(context, capture_telemetry):
    log = []
    context.add_lifecycle_hook(Recorder("db", log))
    context.add_lifecycle_hook(Recorder("queue", log, fail_on_start=True))
    context.add_lifecycle_hook(Recorder("never", log))
    with pytest.raises(RuntimeError, match="queue start failed"):
        await context.startup()
    assert log == ["start:db", "start:queue", "stop:db"]
    assert context.phase is LifecyclePhase.STOPPED
    assert any("start-up hook queue failed" in body for body in capture_telemetry.log_bodies())


async def test_failing_shutdown_hook_does_not_stop_the_others(context):
    log = []
    context.add_lifecycle_hook(Recorder("db", log))
    context.add_lifecycle_hook(Recorder("broken", log, fail_on_stop=True))
    await context.startup()
    await context.shutdown()
    assert log == ["start:db", "start:broken", "stop:broken", "stop:db"]


async def test_shutdown_flushes_telemetry(context):
    await context.startup()
    telemetry = context.telemetry
    await context.shutdown()
    assert telemetry.is_shut_down


def test_dependency_registry(context):
    class Database:
        pass

    class Postgres(Database):
        pass

    db = Postgres()
    context.register("db", db)
    context.register(Postgres, db)
    assert context.get("db") is db
    assert context.get(Database) is db
    with pytest.raises(DependencyNotFoundError, match=r"'mailer'; registered: Postgres, db"):
        context.get("mailer")


def test_get_application_context_is_one_per_process(context):
    assert get_application_context() is context
    assert reset_application_context() is not context


async def test_event_bus_isolates_failing_handlers(context, capture_telemetry):
    seen = []

    def broken(**_):
        raise ValueError("handler bug")

    async def fine(**payload):
        seen.append(payload)

    context.events.subscribe("alert.fired", broken)
    unsubscribe = context.events.subscribe("alert.fired", fine)
    assert await context.events.publish("alert.fired", name="HighErrorRatio") == 1
    unsubscribe()
    assert await context.events.publish("alert.fired", name="again") == 0
    assert seen == [{"name": "HighErrorRatio"}]


async def test_health_checks_metric_timeouts_and_errors(capture_telemetry):
    registry = HealthRegistry(default_timeout=0.2)

    async def slow():
        await asyncio.sleep(5)

    def broken():
        raise ConnectionError("refused")

    registry.add("ok", lambda: True)
    registry.add("async-ok", asyncio.sleep, timeout=1) if False else registry.add(
        "none", lambda: None
    )
    registry.add("slow", slow)
    registry.add("broken", broken)
    registry.add("optional", lambda: False, critical=False)
    results = await registry.run_once()
    assert results["ok"].healthy
    assert results["none"].healthy
    assert results["slow"].error == "timed out after 0.2s"
    assert results["broken"].error == "ConnectionError: refused"
    assert results["optional"].error == "check returned False"
    assert not registry.ready
    gauge = capture_telemetry.gauge_value
    assert gauge("ttbt5.health.status", {"health.check": "ok"}) == 1
    assert gauge("ttbt5.health.status", {"health.check": "broken"}) == 0
    registry.remove("slow")
    registry.remove("broken")
    await registry.run_once()
    assert registry.ready, "non-critical failures do not make the application unready"


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_health_endpoint_over_real_http(capture_telemetry):
    settings = load_settings(
        environ={},
        telemetry={"runtime_metrics": False},
        monitoring={"health_port": 0, "interval": 0.05},
    )
    context = reset_application_context(settings)
    healthy = {"db": True}
    context.add_health_check("db", lambda: healthy["db"])
    try:
        await context.startup()
        base = f"http://127.0.0.1:{context.health_port}"
        await asyncio.sleep(0.1)
        assert await asyncio.to_thread(get_json, f"{base}/healthz") == (200, {"status": "alive"})
        status, body = await asyncio.to_thread(get_json, f"{base}/readyz")
        assert status == 200
        assert body["checks"]["db"]["healthy"] is True
        healthy["db"] = False
        await asyncio.sleep(0.15)
        status, body = await asyncio.to_thread(get_json, f"{base}/readyz")
        assert status == 503
        assert body["status"] == "not ready"
        assert body["checks"]["db"]["error"] == "check returned False"
        status, _ = await asyncio.to_thread(get_json, f"{base}/nope")
        assert status == 404
    finally:
        await context.shutdown()
        _setup._current = None
        reset_application_context()
