"""The application context: lifecycle phases, hooks, dependencies, events and health.

One context per process (``get_application_context()``). Start-up runs the hooks in the
order they were added, each in its own span; shutdown runs them in reverse. If a start-up
hook fails, the hooks already started are shut down (reverse order) and the failure
propagates, so a half-started application never keeps running. Telemetry ``init()`` and
``shutdown()`` are the first and last steps, so everything the hooks record is flushed.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, cast

from opentelemetry.trace import SpanKind

from ttbt5_otel._app.events import EventBus
from ttbt5_otel._app.health import HealthCheck, HealthRegistry, HealthServer
from ttbt5_otel._app.settings import Settings, load_settings
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._exceptions import DependencyNotFoundError, LifecycleError
from ttbt5_otel._sdk.setup import Telemetry, init
from ttbt5_otel._signals.log_bridge import add_console_handler
from ttbt5_otel._signals.tracing import SpanScope, span

_LOG = own_logger("ttbt5_otel.lifecycle")
_T = TypeVar("_T")


class LifecyclePhase(enum.StrEnum):
    """Where the application is in its life."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class LifecycleHook:
    """Something to start with the application and stop with it; override either method.

    Both may be plain or ``async``. ``name`` defaults to the class name and names the span.
    """

    name: str = ""

    def on_startup(self) -> Awaitable[None] | None:
        """Acquire resources; raising aborts start-up."""
        return None

    def on_shutdown(self) -> Awaitable[None] | None:
        """Release resources; errors are logged and the other hooks still run."""
        return None

    @property
    def hook_name(self) -> str:
        """The span and log name of this hook."""
        return self.name or type(self).__name__


def _label(key: str | type) -> str:
    return key if isinstance(key, str) else key.__name__


def _hook_span(name: str, hook: LifecycleHook) -> SpanScope:
    return SpanScope(name, SpanKind.INTERNAL, {"lifecycle.hook": hook.hook_name})


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result


class ApplicationContext:
    """Lifecycle, dependencies, events and health checks of one application."""

    def __init__(self, settings: Settings | None = None) -> None:
        """A context in phase ``created``; ``settings`` default to ``load_settings()``."""
        self._settings = settings
        self.phase = LifecyclePhase.CREATED
        self.events = EventBus()
        self._hooks: list[LifecycleHook] = []
        self._started: list[LifecycleHook] = []
        self._dependencies: dict[str | type, Any] = {}
        self._health: HealthRegistry | None = None
        self._health_server: HealthServer | None = None
        self.telemetry: Telemetry | None = None

    # -- settings, health ---------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """Settings in force (resolved on first use)."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def health(self) -> HealthRegistry:
        """The health checks of this application."""
        if self._health is None:
            self._health = HealthRegistry(self.settings.monitoring.health_check_timeout)
        return self._health

    @property
    def health_port(self) -> int | None:
        """Port of the running health endpoint, if it is enabled."""
        return None if self._health_server is None else self._health_server.port

    def add_health_check(
        self, name: str, check: HealthCheck, *, timeout: float | None = None, critical: bool = True
    ) -> None:
        """Register a named sync or async check (see ``HealthRegistry.add``)."""
        self.health.add(name, check, timeout=timeout, critical=critical)

    # -- hooks ----------------------------------------------------------------------------
    def add_lifecycle_hook(self, hook: LifecycleHook) -> None:
        """Start ``hook`` with the application (after those added before it)."""
        if self.phase not in (LifecyclePhase.CREATED, LifecyclePhase.STOPPED):
            raise LifecycleError(f"cannot add hook {hook.hook_name!r} while {self.phase.value}")
        self._hooks.append(hook)

    async def start_hook(self, hook: LifecycleHook) -> None:
        """Start ``hook`` in an application that is already running.

        It is started at once, in its own ``lifecycle.startup`` span, and from then on it is
        one of the hooks: stopped in reverse order with the others, started in order on a
        restart. A failure propagates and leaves it out (nothing to stop).
        """
        if self.phase is not LifecyclePhase.RUNNING:
            raise LifecycleError(f"cannot start hook {hook.hook_name!r} while {self.phase.value}")
        self._hooks.append(hook)
        try:
            with _hook_span("lifecycle.startup", hook):
                await _maybe_await(hook.on_startup())
        except Exception:
            self._hooks.remove(hook)
            _LOG.exception("start-up hook %s failed", hook.hook_name)
            raise
        self._started.append(hook)

    # -- dependencies -------------------------------------------------------------------
    def register(self, key: str | type[_T], instance: _T) -> None:
        """Register ``instance`` under a name or a type."""
        self._dependencies[key] = instance

    @property
    def dependencies(self) -> Mapping[str | type, Any]:
        """Everything registered, by name or type (a read-only view)."""
        return MappingProxyType(self._dependencies)

    def get(self, key: str | type[_T]) -> _T:
        """The dependency registered under ``key``; by type, a registered subclass also fits."""
        if key in self._dependencies:
            return cast("_T", self._dependencies[key])
        if isinstance(key, type):
            for value in self._dependencies.values():
                if isinstance(value, key):
                    return value
        known = ", ".join(
            sorted(k if isinstance(k, str) else k.__name__ for k in self._dependencies)
        )
        raise DependencyNotFoundError(
            f"no dependency registered as {_label(key)!r}; registered: {known or 'none'}"
        )

    # -- lifecycle --------------------------------------------------------------------------
    async def startup(self, **telemetry_options: Any) -> None:
        """Initialise telemetry, start the hooks in order, then health checks and endpoint."""
        if self.phase is not LifecyclePhase.CREATED and self.phase is not LifecyclePhase.STOPPED:
            raise LifecycleError(f"cannot start while {self.phase.value}")
        self.phase = LifecyclePhase.STARTING
        await self.events.publish("lifecycle.starting")
        self.telemetry = init(**{**_options_of(self.settings), **telemetry_options})
        add_console_handler(self.settings.logging.format, self.telemetry.config.log_level)
        with span("application.startup", hooks=len(self._hooks)):
            for hook in self._hooks:
                try:
                    with _hook_span("lifecycle.startup", hook):
                        await _maybe_await(hook.on_startup())
                except Exception:
                    _LOG.exception("start-up hook %s failed; stopping", hook.hook_name)
                    await self._stop_hooks()
                    await self._finish_stop()
                    raise
                self._started.append(hook)
        self._start_health()
        self.phase = LifecyclePhase.RUNNING
        await self.events.publish("lifecycle.running")
        _LOG.info("application started", extra={"ttbt5_fields": {"hooks": len(self._hooks)}})

    def _start_health(self) -> None:
        monitoring = self.settings.monitoring
        if self._health is not None and self._health.names:
            self._health.start(monitoring.interval)
        if monitoring.health_port is not None:
            self._health_server = HealthServer(
                self.health,
                monitoring.health_port,
                is_running=lambda: self.phase is LifecyclePhase.RUNNING,
            )
            self._health_server.start()

    def _is_running(self) -> bool:
        return self.phase is LifecyclePhase.RUNNING

    async def shutdown(self) -> None:
        """Stop health checks, the hooks in reverse order, then flush and close telemetry."""
        if self.phase in (LifecyclePhase.CREATED, LifecyclePhase.STOPPED, LifecyclePhase.STOPPING):
            return
        self.phase = LifecyclePhase.STOPPING
        await self.events.publish("lifecycle.stopping")
        if self._health_server is not None:
            self._health_server.stop()
            self._health_server = None
        if self._health is not None:
            await self._health.stop()
        with span("application.shutdown", hooks=len(self._started)):
            await self._stop_hooks()
        await self._finish_stop()

    async def _stop_hooks(self) -> None:
        while self._started:
            hook = self._started.pop()
            try:
                with _hook_span("lifecycle.shutdown", hook):
                    await _maybe_await(hook.on_shutdown())
            except Exception:
                _LOG.exception("shutdown hook %s failed; continuing", hook.hook_name)

    async def _finish_stop(self) -> None:
        self.phase = LifecyclePhase.STOPPED
        await self.events.publish("lifecycle.stopped")
        if self.telemetry is not None:
            self.telemetry.shutdown()


def _options_of(settings: Settings) -> dict[str, Any]:
    telemetry = settings.telemetry
    return {name: getattr(telemetry, name) for name in telemetry.__dataclass_fields__}


_context: ApplicationContext | None = None


def get_application_context() -> ApplicationContext:
    """The process's application context (created on first use)."""
    global _context  # noqa: PLW0603 - one context per process, by design
    if _context is None:
        _context = ApplicationContext()
    return _context


def reset_application_context(settings: Settings | None = None) -> ApplicationContext:
    """Replace the process's context with a fresh one (for tests)."""
    global _context  # noqa: PLW0603
    _context = ApplicationContext(settings)
    return _context
