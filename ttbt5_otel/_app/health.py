"""Named health checks: run on an interval, reported as a metric and over HTTP.

A check is a sync or async callable returning ``True``/``None`` (healthy) or ``False``, or
raising (unhealthy, the exception's type and message kept). Sync checks run in a worker
thread so a hanging one times out instead of freezing the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Observation

from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._core.otel import Lazy, meter

HealthCheck = Callable[[], Any]
HEALTH_METRIC: Final = "ttbt5.health.status"


@dataclass(frozen=True, slots=True)
class HealthResult:
    """Outcome of one run of one check."""

    name: str
    healthy: bool
    duration: float
    checked_at: float
    error: str | None = None
    critical: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form used by /readyz."""
        return {
            "healthy": self.healthy,
            "critical": self.critical,
            "duration_seconds": round(self.duration, 6),
            "checked_at": self.checked_at,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class _Registered:
    check: HealthCheck
    timeout: float
    critical: bool


_live: weakref.WeakSet[HealthRegistry] = weakref.WeakSet()


def _observe(_: CallbackOptions) -> Iterable[Observation]:
    return [
        Observation(1 if result.healthy else 0, {"health.check": result.name})
        for registry in list(_live)
        for result in list(registry.results.values())
    ]


_gauge: Lazy[Any] = Lazy(
    lambda: meter().create_observable_gauge(
        HEALTH_METRIC,
        [_observe],
        unit="{status}",
        description="1 while the check passes, 0 otherwise.",
    )
)


class HealthRegistry:
    """The checks of one application and their latest results."""

    def __init__(self, default_timeout: float = 5.0) -> None:
        """Checks without their own timeout get ``default_timeout`` seconds."""
        self.default_timeout = default_timeout
        self._checks: dict[str, _Registered] = {}
        self.results: dict[str, HealthResult] = {}
        self._task: asyncio.Task[None] | None = None
        _live.add(self)
        _gauge.get()

    def add(
        self, name: str, check: HealthCheck, *, timeout: float | None = None, critical: bool = True
    ) -> None:
        """Register ``check`` as ``name``; non-critical checks never make /readyz fail."""
        if not name or not isinstance(name, str):
            raise ValueError(f"health check name must be a non-empty string, got {name!r}")
        if not callable(check):
            raise TypeError(f"health check {name!r} is not callable")
        self._checks[name] = _Registered(check, timeout or self.default_timeout, critical)

    def remove(self, name: str) -> None:
        """Forget the check ``name`` and its result."""
        self._checks.pop(name, None)
        self.results.pop(name, None)

    @property
    def names(self) -> list[str]:
        """Registered check names."""
        return list(self._checks)

    async def _run(self, name: str, registered: _Registered) -> HealthResult:
        started = time.perf_counter()
        error: str | None = None
        healthy = False
        try:
            if inspect.iscoroutinefunction(registered.check):
                outcome = await asyncio.wait_for(registered.check(), registered.timeout)
            else:
                outcome = await asyncio.wait_for(
                    asyncio.to_thread(registered.check), registered.timeout
                )
                if inspect.isawaitable(outcome):
                    outcome = await asyncio.wait_for(_await(outcome), registered.timeout)
            healthy = outcome is None or bool(outcome)
            if not healthy:
                error = "check returned False"
        except TimeoutError:
            error = f"timed out after {registered.timeout:g}s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        return HealthResult(
            name, healthy, time.perf_counter() - started, time.time(), error, registered.critical
        )

    async def run_once(self) -> dict[str, HealthResult]:
        """Run every check concurrently and store the results."""
        _gauge.get()  # rebinds the gauge if providers were installed after this registry
        checks = list(self._checks.items())
        results = await asyncio.gather(*(self._run(n, r) for n, r in checks))
        for result in results:
            self.results[result.name] = result
        return {r.name: r for r in results}

    @property
    def ready(self) -> bool:
        """True when every critical check passed its latest run (and has run at least once)."""
        return all(
            (r := self.results.get(name)) is not None and r.healthy
            for name, reg in self._checks.items()
            if reg.critical
        )

    def start(self, interval: float, *, delay: float = 0.0) -> None:
        """Run the checks after ``delay`` seconds, then every ``interval`` s, until ``stop()``.

        ``delay`` lets a caller that has just awaited ``run_once()`` skip a second run now.
        """
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._loop(interval, delay), name="ttbt5-health-checks"
            )

    @property
    def running(self) -> bool:
        """True while the periodic runs are scheduled."""
        return self._task is not None and not self._task.done()

    async def _loop(self, interval: float, delay: float = 0.0) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                internal_error("health check loop", exc)
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the periodic runs."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class HealthServer:
    """``/healthz`` (liveness) and ``/readyz`` (readiness, per-check JSON) on 127.0.0.1."""

    def __init__(
        self,
        registry: HealthRegistry,
        port: int,
        *,
        is_running: Callable[[], bool] = lambda: True,
        host: str = "127.0.0.1",
    ) -> None:
        """Serve ``registry`` on ``host:port`` (port 0 picks a free one)."""
        self.registry = registry
        self._is_running = is_running
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = server.respond(self.path)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="ttbt5-health-http", daemon=True
        )

    def respond(self, path: str) -> tuple[int, dict[str, Any]]:
        """Status code and JSON body for ``path``."""
        route = path.split("?", 1)[0]
        if route == "/healthz":
            return 200, {"status": "alive"}
        if route == "/readyz":
            checks = {name: r.to_dict() for name, r in self.registry.results.items()}
            pending = [n for n in self.registry.names if n not in self.registry.results]
            ready = self._is_running() and self.registry.ready
            body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
            if pending:
                body["pending"] = pending
            return (200 if ready else 503), body
        return 404, {"error": f"unknown path {route}; use /healthz or /readyz"}

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
