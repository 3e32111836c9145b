"""Single-flight: concurrent misses of one key run the loader once.

The first caller starts the load as its own task; later callers for the same key await that
task (counted in ``ttbt5.cache.coalesced``). Every caller awaits it through
``asyncio.shield``, so a caller that is cancelled does not cancel the load for the others.
Threads calling a cached sync function do the same with a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from ttbt5_otel._cache.telemetry import Counts
from ttbt5_otel._core.guard import warn_once

_T = TypeVar("_T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Mark the outcome as seen: callers re-raise it; nobody may be left to do so.
    if not task.cancelled():
        task.exception()


class Flights:
    """In-flight loads of one cache, by key."""

    __slots__ = ("_background", "_counts", "_sync", "_sync_lock", "_tasks")

    def __init__(self, counts: Counts) -> None:
        """Count joined callers in ``counts.coalesced``."""
        self._counts = counts
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._sync: dict[str, Future[Any]] = {}
        self._sync_lock = threading.Lock()

    def _running(self, key: str) -> asyncio.Task[Any] | None:
        task = self._tasks.get(key)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _start(self, key: str, load: Callable[[], Coroutine[Any, Any, _T]]) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(load())
        self._tasks[key] = task
        task.add_done_callback(_retrieve)
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def run(self, key: str, load: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Run ``load`` for ``key``, or join the load already running for it."""
        task = self._running(key)
        if task is None:
            task = self._start(key, load)
        else:
            self._counts.coalesced += 1
        return await asyncio.shield(task)

    def refresh(self, key: str, load: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Start ``load`` in the background unless a load of ``key`` is already running."""
        if self._running(key) is None:
            task = self._start(key, load)
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)
            task.add_done_callback(self._report_refresh)

    def _report_refresh(self, task: asyncio.Task[Any]) -> None:
        # Nobody awaits a background refresh, so its failure would go unseen.
        if not task.cancelled() and task.exception() is not None:
            warn_once(
                f"cache-refresh:{self._counts.name}",
                "cache %r: a background refresh failed (%r); the stale value stays until it "
                "expires",
                self._counts.name,
                task.exception(),
            )

    def run_sync(self, key: str, load: Callable[[], _T]) -> _T:
        """``run`` for threads: one thread loads, the others wait for its result."""
        with self._sync_lock:
            future = self._sync.get(key)
            leader = future is None
            if future is None:
                future = self._sync[key] = Future()
            else:
                self._counts.coalesced += 1
        if not leader:
            return future.result()  # type: ignore[no-any-return]
        try:
            result = load()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            with self._sync_lock:
                del self._sync[key]
