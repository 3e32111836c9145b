"""The guide's ``src.patterns.application_context``, over ``ttbt5_otel.get_application_context``.

``get_application_context()`` returns the process's native ``ApplicationContext`` seen
through the guide's methods: ``startup()`` initialises telemetry and starts the hooks, each
in a ``lifecycle.startup`` span, ``shutdown()`` stops them in reverse (``lifecycle.shutdown``
spans) and flushes telemetry; dependencies live in the native registry; lifecycle events
go to the native ``EventBus`` (``lifecycle.starting`` ... ``lifecycle.stopped``).

Hooks are the guide's objects: ``on_startup(context)`` / ``on_shutdown(context)``, plain or
async, and an optional ``on_error(context, error)`` called when a start-up hook fails.
Native ``ttbt5_otel.LifecycleHook`` objects (no ``context`` argument) work as they are.

The guide adds its hooks *inside* the main function ``@application_lifecycle`` runs, after
start-up. Such a hook is started when it is added: a plain one before
``add_lifecycle_hook`` returns when no event loop runs, otherwise at the main function's
next ``await`` (``await context.add_lifecycle_hook(hook)`` waits for it), and in any case
before the main function's end; it stops with the others, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

from ttbt5_otel._app import context as _native
from ttbt5_otel._app.events import EventBus
from ttbt5_otel._app.lifecycle import application_lifecycle as _native_lifecycle
from ttbt5_otel._app.settings import Settings
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._exceptions import DependencyNotFoundError, LifecycleError
from ttbt5_otel._sdk.config import TelemetryOptions
from ttbt5_otel.patterns.dependency_injection import DIContainer

__all__ = [
    "ApplicationContext",
    "DependencyNotFoundError",
    "EventBus",
    "LifecycleError",
    "LifecycleHook",
    "application_lifecycle",
    "get_application_context",
]

P = ParamSpec("P")
R = TypeVar("R")
_LOG = own_logger("ttbt5_otel.lifecycle")


class LifecycleHook:
    """The guide's hook base: override what you need; each may be plain or ``async``."""

    def on_startup(self, context: ApplicationContext) -> Awaitable[None] | None:
        """Acquire resources; raising aborts start-up."""
        del context
        return None

    def on_shutdown(self, context: ApplicationContext) -> Awaitable[None] | None:
        """Release resources; errors are logged and the other hooks still run."""
        del context
        return None

    def on_error(self, context: ApplicationContext, error: Exception) -> Awaitable[None] | None:
        """Told of a start-up hook's failure (this hook's or another's)."""
        del context, error
        return None


def _takes_context(method: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature take none
        return False
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    return any(p.kind in positional for p in parameters)


async def _call(hook: object, method: str, *args: object) -> None:
    bound = getattr(hook, method, None)
    if bound is None:
        return
    result = bound(*args) if _takes_context(bound) else bound()
    if inspect.isawaitable(result):
        await result


class _GuideHook(_native.LifecycleHook):
    """A guide hook as the native context runs it (same spans, order and failure rules)."""

    def __init__(self, hook: object, owner: ApplicationContext) -> None:
        self.hook = hook
        self.owner = owner
        self.name = str(getattr(hook, "name", "") or type(hook).__name__)

    async def on_startup(self) -> None:
        try:
            await _call(self.hook, "on_startup", self.owner)
        except Exception as exc:
            await self.owner.notify_error(exc)
            raise

    async def on_shutdown(self) -> None:
        await _call(self.hook, "on_shutdown", self.owner)


class ApplicationContext:
    """The guide's view of the native context; other attributes are the native ones.

    ``native`` is the ``ttbt5_otel.ApplicationContext`` (phase, ``events``, ``register``,
    ``get``, ``add_health_check``, ``telemetry`` ... are reachable through this object too).
    """

    def __init__(self, native: _native.ApplicationContext) -> None:
        """Wrap ``native``; use ``get_application_context()`` rather than this."""
        self.native = native
        self._container: DIContainer | None = None
        self._guide_hooks: list[object] = []
        self._late: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        """Everything else is the native context's."""
        return getattr(self.native, name)

    # -- dependencies ---------------------------------------------------------------------
    @property
    def container(self) -> DIContainer:
        """The container set with ``set_container`` (an empty one attached on first use)."""
        if self._container is None:
            self.set_container(DIContainer())
        assert self._container is not None
        return self._container

    def set_container(self, container: DIContainer) -> None:
        """Make ``container`` the context's registry: its entries move into the native one."""
        if not isinstance(container, DIContainer):
            raise TypeError(
                "set_container takes a ttbt5_otel.patterns.dependency_injection.DIContainer, "
                f"got {type(container).__name__}; or register dependencies with "
                "context.register(name, instance)"
            )
        container.attach(self.native)
        self._container = container

    def get_dependency(self, name: str | type[R]) -> R:
        """The dependency registered as ``name`` (raises ``DependencyNotFoundError``)."""
        return self.native.get(name)

    # -- events ---------------------------------------------------------------------------
    @property
    def event_bus(self) -> EventBus:
        """The bus the lifecycle events are published on."""
        return self.native.events

    def set_event_bus(self, bus: EventBus) -> None:
        """Publish lifecycle events on ``bus`` (also registered as the ``event_bus`` dependency).

        Raises:
            TypeError: ``bus`` is not this package's ``EventBus`` (the context awaits its
                ``publish(event, **payload)``; subscribe your observers to one of these).
        """
        if not isinstance(bus, EventBus):
            raise TypeError(
                "set_event_bus takes a ttbt5_otel.patterns.application_context.EventBus, "
                f"got {type(bus).__name__}; subscribe your handlers to context.event_bus"
            )
        self.native.events = bus
        self.native.register("event_bus", bus)

    # -- hooks ----------------------------------------------------------------------------
    def add_lifecycle_hook(self, hook: object) -> asyncio.Task[None] | None:
        """Start ``hook`` with the application; while it runs, start it now (module doc).

        Returns the task starting it when it is started on the running event loop.
        """
        if not any(hasattr(hook, m) for m in ("on_startup", "on_shutdown")):
            raise TypeError(f"{type(hook).__name__} has neither on_startup nor on_shutdown")
        native_hook = hook if isinstance(hook, _native.LifecycleHook) else _GuideHook(hook, self)
        if native_hook is not hook:
            self._guide_hooks.append(hook)
        if self.native.phase is not _native.LifecyclePhase.RUNNING:
            self.native.add_lifecycle_hook(native_hook)
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.native.start_hook(native_hook))
            return None
        # Late hooks start one after the other, so they stop in the reverse of that order.
        task = loop.create_task(self._start_after(self._late, native_hook))
        task.add_done_callback(_retrieve)
        self._late = task
        return task

    async def _start_after(
        self, previous: asyncio.Task[None] | None, hook: _native.LifecycleHook
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):  # its failure was logged and traced
                await previous
        await self.native.start_hook(hook)

    async def settle(self) -> None:
        """Wait until the hooks added while running have started (or failed to)."""
        late, self._late = self._late, None
        if late is not None:
            with contextlib.suppress(Exception):
                await late

    async def notify_error(self, error: Exception) -> None:
        """Call ``on_error(context, error)`` of every guide hook that has one."""
        for hook in self._guide_hooks:
            try:
                await _call(hook, "on_error", self, error)
            except Exception:
                _LOG.exception("on_error of hook %s failed", type(hook).__name__)

    # -- lifecycle ------------------------------------------------------------------------
    async def startup(self, **telemetry_options: Unpack[TelemetryOptions]) -> None:
        """Initialise telemetry and start the hooks in order (native ``startup``)."""
        await self.native.startup(**telemetry_options)

    async def shutdown(self) -> None:
        """Let late hooks finish starting, stop all hooks in reverse, flush telemetry."""
        await self.settle()
        await self.native.shutdown()


def _retrieve(task: asyncio.Task[None]) -> None:
    # A failed start is already logged and on its span; retrieving it keeps asyncio quiet.
    if not task.cancelled():
        task.exception()


_current: ApplicationContext | None = None


def get_application_context() -> ApplicationContext:
    """The guide's view of the process's application context (one per process)."""
    global _current  # noqa: PLW0603 - one view per native context, like the context itself
    native = _native.get_application_context()
    if _current is None or _current.native is not native:
        _current = ApplicationContext(native)
    return _current


@overload
def application_lifecycle(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def application_lifecycle(
    *,
    settings: Settings | None = None,
    handle_signals: bool = True,
    **telemetry_options: Unpack[TelemetryOptions],
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def application_lifecycle(
    func: Callable[P, R] | None = None,
    /,
    *,
    settings: Settings | None = None,
    handle_signals: bool = True,
    **telemetry_options: Unpack[TelemetryOptions],
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """The native ``application_lifecycle``; hooks the main function adds start before it ends.

    Start-up (telemetry ``init()``, hooks, health checks) before the main function, shutdown
    (hooks in reverse, telemetry flush) after it, also on SIGTERM/SIGINT. Same options as
    ``ttbt5_otel.application_lifecycle``.
    """
    lifecycle = _native_lifecycle(
        settings=settings, handle_signals=handle_signals, **telemetry_options
    )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if not inspect.iscoroutinefunction(fn):
            return lifecycle(fn)
        return lifecycle(cast("Callable[P, R]", _settling(fn)))

    if func is not None:
        return decorate(func)
    return decorate


def _settling(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(fn)
    async def main(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        finally:
            await get_application_context().settle()

    return main
