"""The guide's application context and DI container over the native context."""

import asyncio

import pytest

import ttbt5_otel
from ttbt5_otel import LifecyclePhase, load_settings
from ttbt5_otel._sdk import setup as _setup
from ttbt5_otel.patterns.application_context import (
    DependencyNotFoundError,
    EventBus,
    LifecycleError,
    LifecycleHook,
    application_lifecycle,
    get_application_context,
)
from ttbt5_otel.patterns.dependency_injection import DIContainer
from ttbt5_otel.testing import reset_application_context


@pytest.fixture
def native(capture_telemetry):
    ctx = reset_application_context(load_settings(environ={}, telemetry={"runtime_metrics": False}))
    yield ctx
    if ctx.phase is LifecyclePhase.RUNNING:
        asyncio.run(ctx.shutdown())
    _setup._current = None
    reset_application_context()


class GuideHook(LifecycleHook):
    """A hook written for the guide: it takes the context."""

    def __init__(self, log, fail=False):
        self.log = log
        self.fail = fail

    async def on_startup(self, context):
        await asyncio.sleep(0)
        self.log.append(("start", type(self).__name__, context.get_dependency("monitoring")))
        if self.fail:
            raise RuntimeError(f"{type(self).__name__} failed")

    async def on_shutdown(self, context):
        self.log.append(("stop", type(self).__name__, None))

    def on_error(self, context, error):
        self.log.append(("error", type(self).__name__, str(error)))


class DatabaseHook(GuideHook):
    pass


class CacheHook(GuideHook):
    pass


class NativeDatabaseHook(ttbt5_otel.LifecycleHook):
    name = "DatabaseHook"


class NativeCacheHook(ttbt5_otel.LifecycleHook):
    name = "CacheHook"


def _lifecycle_spans(capture):
    return [
        (s.name, dict(s.attributes))
        for s in capture.spans
        if s.name.startswith(("lifecycle.", "application."))
    ]


async def test_guide_hooks_added_in_main_start_and_stop_like_native_ones(native, capture_telemetry):
    """The guide's example: hooks added inside the decorated main, same spans as native hooks."""
    await native.startup()
    native.register("monitoring", "m")
    await native.start_hook(NativeDatabaseHook())
    await native.start_hook(NativeCacheHook())
    await native.shutdown()
    expected = _lifecycle_spans(capture_telemetry)
    capture_telemetry.clear()
    reset_application_context(native.settings)
    log = []
    container = DIContainer()
    container.register("monitoring", "m")
    bus = EventBus()
    events = []
    bus.subscribe("*", lambda event: events.append(event))  # noqa: PLW0108 - called with event=

    @application_lifecycle(handle_signals=False)
    async def main():
        context = get_application_context()
        context.set_container(container)
        context.set_event_bus(bus)
        context.add_lifecycle_hook(DatabaseHook(log))
        context.add_lifecycle_hook(CacheHook(log))
        return "done"

    assert asyncio.iscoroutinefunction(main)
    assert await main() == "done"
    assert log == [
        ("start", "DatabaseHook", "m"),
        ("start", "CacheHook", "m"),
        ("stop", "CacheHook", None),
        ("stop", "DatabaseHook", None),
    ]
    assert _lifecycle_spans(capture_telemetry) == expected
    assert events == ["lifecycle.stopping", "lifecycle.stopped"]
    assert get_application_context().get_dependency("event_bus") is bus


async def test_hooks_added_before_startup_and_basic_integration(native, capture_telemetry):
    """The guide's basic integration: container, startup, get_dependency, shutdown."""
    context = get_application_context()
    assert context.native is native
    assert get_application_context() is context
    container = DIContainer()
    monitoring = object()
    container.register("monitoring", monitoring)
    context.set_container(container)
    log = []
    context.add_lifecycle_hook(DatabaseHook(log))
    await context.startup()
    assert context.phase is LifecyclePhase.RUNNING
    assert context.get_dependency("monitoring") is monitoring
    assert native.get("monitoring") is monitoring
    await context.shutdown()
    assert [step for step, *_ in log] == ["start", "stop"]
    assert context.phase is LifecyclePhase.STOPPED


async def test_failing_guide_hook_calls_on_error_and_aborts_startup(native, capture_telemetry):
    """``on_error(context, error)`` of every guide hook, then the native failure rules."""
    context = get_application_context()
    context.container.register("monitoring", None)
    log = []
    context.add_lifecycle_hook(DatabaseHook(log))
    context.add_lifecycle_hook(CacheHook(log, fail=True))
    with pytest.raises(RuntimeError, match="CacheHook failed"):
        await context.startup()
    assert log == [
        ("start", "DatabaseHook", None),
        ("start", "CacheHook", None),
        ("error", "DatabaseHook", "CacheHook failed"),
        ("error", "CacheHook", "CacheHook failed"),
        ("stop", "DatabaseHook", None),
    ]
    assert context.phase is LifecyclePhase.STOPPED


async def test_late_hook_awaited_and_failure_leaves_it_out(native, capture_telemetry):
    """``await add_lifecycle_hook`` waits for the start; a failed late hook is never stopped."""
    context = get_application_context()
    context.register("monitoring", 1)
    await context.startup()
    log = []
    await context.add_lifecycle_hook(DatabaseHook(log))
    broken = context.add_lifecycle_hook(CacheHook(log, fail=True))
    with pytest.raises(RuntimeError, match="CacheHook failed"):
        await broken
    await context.shutdown()
    assert [(step, name) for step, name, _ in log] == [
        ("start", "DatabaseHook"),
        ("start", "CacheHook"),
        ("error", "DatabaseHook"),
        ("error", "CacheHook"),
        ("stop", "DatabaseHook"),
    ]
    assert any("start-up hook CacheHook failed" in b for b in capture_telemetry.log_bodies())


def test_plain_hook_added_while_running_without_a_loop_starts_at_once(native):
    """Outside an event loop (a sync main) the late hook starts before the call returns."""
    context = get_application_context()
    asyncio.run(context.startup())
    started = []

    class Plain:
        def on_startup(self):
            started.append("plain")

    assert context.add_lifecycle_hook(Plain()) is None
    assert started == ["plain"]
    asyncio.run(context.shutdown())


async def test_native_start_hook_needs_a_running_application(native):
    """``ApplicationContext.start_hook`` refuses outside the running phase."""
    with pytest.raises(LifecycleError, match="while created"):
        await native.start_hook(NativeDatabaseHook())


def test_wrong_objects_are_refused(native):
    """Clear errors instead of silently ignoring a hook, a container or a bus."""
    context = get_application_context()
    with pytest.raises(TypeError, match="neither on_startup nor on_shutdown"):
        context.add_lifecycle_hook(object())
    with pytest.raises(TypeError, match="DIContainer"):
        context.set_container({"db": 1})
    with pytest.raises(TypeError, match="EventBus"):
        context.set_event_bus(object())


def test_di_container_standalone_then_attached(native):
    """Before ``set_container`` it is its own registry; afterwards the context's."""
    container = DIContainer()
    container.register("db", "postgres")
    assert container.get("db") == "postgres"
    assert container.resolve("db") == "postgres"
    with pytest.raises(DependencyNotFoundError, match="'cache'; registered: db"):
        container.get("cache")
    get_application_context().set_container(container)
    container.register("cache", "redis")
    assert native.get("cache") == "redis"
    native.register("mailer", "smtp")
    assert container.get("mailer") == "smtp"
    container.attach(native)  # again: nothing changes
    with pytest.raises(ValueError, match="another application context"):
        container.attach(ttbt5_otel.ApplicationContext())
