"""Telemetry of ``multiprocessing`` workers reaches the collector before they exit.

A worker process started by ``multiprocessing`` (a ``Pool`` worker, a ``Process``) leaves
through ``os._exit``: interpreter exit hooks never run in it, so what its batch processors
still hold would be lost. Two hooks close that gap in every such worker (fork start method):

- a ``multiprocessing`` finalizer, which its exit path does run, shuts telemetry down within
  ``shutdown_timeout``;
- ``Pool.terminate()`` (also the end of ``with Pool(...)``) stops workers with SIGTERM, which
  by default kills at once; in workers that keep the default disposition, SIGTERM instead
  raises ``SystemExit``, so the worker leaves through the same exit path and flushes.

Workers started with the ``spawn`` or ``forkserver`` methods (``uvicorn --workers``, say)
import the app afresh and run its ``init()`` themselves; ``init()`` in such a worker
registers the same finalizer for itself.
"""

from __future__ import annotations

import multiprocessing.util
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Final

# Early among finalizers, so queues the app closes in its own finalizers are still usable.
_EXIT_PRIORITY: Final = 50


def _leave_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del frame
    # Once the worker is leaving (multiprocessing's exit path has begun, or this handler
    # already ran), a second SystemExit would abort the finalizers, and the flush with them.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not getattr(multiprocessing.util, "_exiting", False):
        raise SystemExit(128 + signum)


def flush_workers_at_exit(owner: object, shutdown: Callable[[], None]) -> None:
    """In every ``multiprocessing`` child of this process, run ``shutdown`` as it exits.

    ``owner`` keeps the registration alive (``multiprocessing`` holds it weakly).
    """

    def prepare(_owner: object) -> None:
        multiprocessing.util.Finalize(None, shutdown, exitpriority=_EXIT_PRIORITY)
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, _leave_on_sigterm)

    multiprocessing.util.register_after_fork(owner, prepare)


def flush_this_worker_at_exit(shutdown: Callable[[], None]) -> None:
    """When this process is a ``multiprocessing`` child, run ``shutdown`` as it exits."""
    if multiprocessing.parent_process() is not None:
        multiprocessing.util.Finalize(None, shutdown, exitpriority=_EXIT_PRIORITY)
