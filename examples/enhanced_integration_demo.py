"""The TTBT5 guide's "enhanced integration demo", on the native ttbt5_otel API.

    python examples/enhanced_integration_demo.py

Runs for a second or two and exits. It exports where the environment says: with no
exporter or endpoint set it prints spans and log records to the console (no collector
needed); ``TTBT5_OTLP_ENDPOINT=http://127.0.0.1:4317`` (or ``ttbt5-otel stack up``) sends
traces, metrics and logs to a collector. The guide's ``.env`` variables work as they are
(``APP_NAME``, ``CACHE_TTL_DEFAULT``, ``ERROR_RETRY_MAX_ATTEMPTS``, ...; see
docs/migration.md), and so does ``TTBT5_CONFIG_FILE=config/base.json``.

What each guide pattern becomes:

* application context: ``application_lifecycle`` runs ``init()``, the start-up hooks (one span
  each), the main function, the shutdown hooks and the final flush;
* error handling: ``handle_errors`` turns an error into a span event, a ``ttbt5.errors``
  point and a log record; ``Validator`` raises ``ValidationError``; the retry policy of the
  settings records ``ttbt5.retry.*``;
* caching: a ``HierarchicalCache`` built from the settings, ``cached`` with tags;
* logging and monitoring: ``get_logger`` (records carry trace ids), ``monitor_performance``,
  health checks feeding ``ttbt5.health.status``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ttbt5_otel
from ttbt5_otel import (
    ApplicationError,
    ErrorSeverity,
    LifecycleHook,
    Settings,
    Validator,
    get_logger,
    handle_errors,
    load_settings,
    monitor_performance,
    span,
    traced,
)

log = get_logger("enhanced_demo")


def _init_defaults(settings: Settings) -> dict[str, Any]:
    """Options for what the environment and the config file leave unset.

    Passed as ``init()`` arguments, they would beat the environment; so only the unset ones.
    """
    defaults: dict[str, Any] = {}
    if "service_name" not in settings.sources:
        defaults["service_name"] = "enhanced-demo"
    if not {"exporter", "endpoint"} & settings.sources.keys():
        defaults["exporter"] = "console"  # nothing says where a collector is
    return defaults


class DatabaseHook(LifecycleHook):
    """Stands for a connection pool opened at start-up and closed at shutdown."""

    connected = False

    async def on_startup(self) -> None:
        """Open the pool (a short sleep here)."""
        await asyncio.sleep(0.01)
        self.connected = True

    async def on_shutdown(self) -> None:
        """Close the pool."""
        self.connected = False


SETTINGS = load_settings()
DATABASE = DatabaseHook()
AI_CACHE = SETTINGS.cache.build("ai_responses")
RETRY = SETTINGS.retry.policy(name="inventory", backoff=0.01)
_flaky_calls = {"inventory": 0}


@ttbt5_otel.cached(AI_CACHE, ttl=300, tags=("ai_response",))
async def expensive_ai_operation(prompt: str) -> str:
    """The guide's cached AI call: loaded once per prompt, then served from the cache."""
    await asyncio.sleep(0.05)
    return f"answer to {prompt!r}"


@handle_errors(fallback="Fallback")
@traced
async def risky_operation(data: str) -> str:
    """The guide's validated operation; an error is recorded, then the fallback returned."""
    Validator.validate_length(data, min_length=1, max_length=100)
    if "fail" in data:
        raise ApplicationError(
            "Operation failed",
            severity=ErrorSeverity.HIGH,
            recovery_suggestions=["Try again", "Check input data"],
        )
    return "Success"


@RETRY
@traced
def check_inventory(item: str) -> int:
    """Fails on its first call, as a flaky dependency would; the retry policy recovers."""
    _flaky_calls["inventory"] += 1
    if _flaky_calls["inventory"] == 1:
        raise ConnectionError("inventory service restarting")
    return len(item)


@monitor_performance
@traced
async def important_operation(user_id: str) -> dict[str, Any]:
    """One request through every pattern."""
    with log.contextualize(user_id=user_id, request_id=f"req-{user_id}"):
        answer = await expensive_ai_operation("What is observability?")
        outcome = await risky_operation("process this")
        failed = await risky_operation("please fail")
        stock = check_inventory("widget")
        log.info("Operation completed", operation="data_processing")
    return {"answer": answer, "outcome": outcome, "failed": failed, "stock": stock}


@ttbt5_otel.application_lifecycle(settings=SETTINGS, **_init_defaults(SETTINGS))
async def main() -> None:
    """Start-up hooks and health checks, a few requests, then an orderly shutdown."""
    context = ttbt5_otel.get_application_context()
    context.add_health_check("database", lambda: DATABASE.connected)
    context.add_health_check("cache", lambda: AI_CACHE is not None)
    with span("demo.requests", requests=3):
        for user in ("123", "456", "789"):
            result = await important_operation(user)
    await AI_CACHE.invalidate_tags("ai_response")
    log.info("demo finished", **result)
    print(f"demo finished: {result}")


if __name__ == "__main__":
    ttbt5_otel.get_application_context().add_lifecycle_hook(DATABASE)
    asyncio.run(main())
