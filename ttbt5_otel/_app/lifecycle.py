"""``application_lifecycle``: run a main function inside the application's lifecycle.

SIGTERM and SIGINT request an orderly shutdown: the main function is cancelled (async) or
interrupted (sync), the shutdown hooks run in reverse order and telemetry is flushed before
the process exits. A sync main gets its context on a private event loop thread, so health
checks keep running while the main function blocks.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

from ttbt5_otel._app.context import ApplicationContext, get_application_context
from ttbt5_otel._app.settings import Settings
from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._sdk.config import TelemetryOptions

P = ParamSpec("P")
R = TypeVar("R")
_LOG = own_logger("ttbt5_otel.lifecycle")
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _ShutdownRequestedError(BaseException):
    """Raised in a sync main by the signal handler; BaseException so app code can't swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _context_for(settings: Settings | None) -> ApplicationContext:
    context = get_application_context()
    if settings is not None:
        context._settings = settings  # noqa: SLF001 - configuring the process context is the point
    return context


def _wrap_async(
    func: Callable[P, Coroutine[Any, Any, R]],
    settings: Settings | None,
    options: dict[str, Any],
    handle_signals: bool,
) -> Callable[P, Coroutine[Any, Any, R | None]]:
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        context = _context_for(settings)
        await context.startup(**options)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        received: list[int] = []

        def request_stop(signum: int) -> None:
            _LOG.info("%s received; shutting down", signal.Signals(signum).name)
            received.append(signum)
            if task is not None:
                task.cancel()

        installed = []
        if handle_signals and threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                loop.add_signal_handler(signum, request_stop, signum)
                installed.append(signum)
        try:
            return await func(*args, **kwargs)
        except asyncio.CancelledError:
            if not received:
                raise
            if task is not None:
                task.uncancel()
            return None
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            await context.shutdown()

    return wrapper


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="ttbt5-lifecycle", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def _wrap_sync(
    func: Callable[P, R], settings: Settings | None, options: dict[str, Any], handle_signals: bool
) -> Callable[P, R | None]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        context = _context_for(settings)
        runner = _LoopThread()
        previous: dict[int, Any] = {}

        def request_stop(signum: int, frame: FrameType | None) -> None:
            del frame
            raise _ShutdownRequestedError(signum)

        try:
            runner.run(context.startup(**options))
            if handle_signals and threading.current_thread() is threading.main_thread():
                for signum in _SIGNALS:
                    previous[signum] = signal.signal(signum, request_stop)
            return func(*args, **kwargs)
        except _ShutdownRequestedError as stop:
            _LOG.info("%s received; shutting down", stop)
            return None
        finally:
            for restored, handler in previous.items():
                signal.signal(restored, handler)
            runner.run(context.shutdown())
            runner.close()

    return wrapper


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
    """Run the decorated (sync or async) main inside the application context's lifecycle.

    Before the main function: telemetry ``init()`` with ``telemetry_options`` (the same
    keyword options as ``init()``), the start-up hooks in order, health checks. After it — on
    return, on an exception, or on SIGTERM/SIGINT — the shutdown hooks in reverse order and
    a telemetry flush. A signal makes the main function return ``None``.
    """
    options: dict[str, Any] = dict(telemetry_options)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            return cast("Callable[P, R]", _wrap_async(fn, settings, options, handle_signals))
        return cast("Callable[P, R]", _wrap_sync(fn, settings, options, handle_signals))

    if func is not None:
        return decorate(func)
    return decorate
