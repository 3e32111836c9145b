"""A service written against the TTBT5 guide, migrated by changing its import prefix only.

Every ``from src.patterns.X import ...`` became ``from ttbt5_otel.patterns.X import ...``;
nothing else changed. The guide's names now report through OpenTelemetry: hooks and
requests are spans, errors are span events plus ``ttbt5.errors`` points, the cache reports
``ttbt5.cache.*``, logs are OTel log records with trace ids. Configure it with the guide's
``.env`` (``APP_NAME=TTBT5`` ...) and ``TTBT5_OTLP_ENDPOINT`` for a collector, or
``TTBT5_EXPORTER=console`` to read the signals on the terminal::

    TTBT5_EXPORTER=console APP_NAME=TTBT5 python examples/guide_service_migrated.py
"""

import asyncio

from ttbt5_otel.patterns.application_context import (
    LifecycleHook,
    application_lifecycle,
    get_application_context,
)
from ttbt5_otel.patterns.caching import CacheManager, MemoryCacheBackend, cached
from ttbt5_otel.patterns.dependency_injection import DIContainer
from ttbt5_otel.patterns.error_handling import (
    ApplicationError,
    ErrorManager,
    ErrorSeverity,
    LoggingErrorHandler,
    RetryErrorHandler,
    Validator,
    handle_errors,
)
from ttbt5_otel.patterns.logging_monitoring import (
    MonitoringSystem,
    StructuredLogger,
    log_calls,
    monitor_performance,
)

logger = StructuredLogger("order_service")
cache_manager = CacheManager(MemoryCacheBackend(max_size=1000))
error_manager = ErrorManager()
error_manager.register_handler(LoggingErrorHandler(logger))
error_manager.register_handler(RetryErrorHandler(max_retries=3))


class DatabaseHook(LifecycleHook):
    """The guide's database hook: connect at start-up, disconnect at shutdown."""

    def __init__(self) -> None:
        """Not connected yet."""
        self.connected = False

    async def on_startup(self, context: object) -> None:
        """Connect (a short sleep here)."""
        del context  # the guide passes the context; this hook needs nothing from it
        await asyncio.sleep(0.01)
        self.connected = True

    async def on_shutdown(self, context: object) -> None:
        """Disconnect."""
        del context
        self.connected = False


database = DatabaseHook()


@cached(ttl=300, tags={"ai_response"})
async def expensive_ai_operation(prompt: str) -> str:
    """The guide's cached AI call."""
    await asyncio.sleep(0.02)
    return f"answer to {prompt}"


@handle_errors(error_manager)
async def risky_operation(data: str) -> str:
    """The guide's validated operation."""
    Validator.validate_length(data, min_length=1, max_length=100)
    if "fail" in data:
        raise ApplicationError(
            "Operation failed",
            severity=ErrorSeverity.HIGH,
            recovery_suggestions=["Try again", "Check input data"],
        )
    return "Success"


@monitor_performance()
@log_calls()
async def important_operation(order_id: str) -> str:
    """One order: a cached answer, a validated step, the cache by hand."""
    answer = await expensive_ai_operation(f"order {order_id}")
    await cache_manager.set(f"order:{order_id}", {"answer": answer}, ttl=3600)
    await cache_manager.get(f"order:{order_id}")
    result = await risky_operation(order_id)
    await logger.info("Operation completed", operation="data_processing", order_id=order_id)
    return result


@application_lifecycle
async def main() -> None:
    """The guide's main: container, hooks, monitoring, then the work."""
    context = get_application_context()
    container = DIContainer()
    monitoring = MonitoringSystem()
    container.register("monitoring", monitoring)
    context.set_container(container)
    context.add_lifecycle_hook(database)  # started at the next await, as in the guide

    monitoring.setup_default_handlers()
    monitoring.add_health_check("database", lambda: database.connected)
    await monitoring.start_monitoring(interval_seconds=60)

    logger.set_context(service="orders")
    results = [await important_operation(order) for order in ("o-1", "o-2", "o-1")]
    try:
        await risky_operation("please fail")
    except ApplicationError:
        await logger.info("Failure recorded", handled=True)
    await cache_manager.invalidate_by_tags({"ai_response"})
    await context.get_dependency("monitoring").logger.info("Application finished")
    print(f"orders processed: {results}")


if __name__ == "__main__":
    asyncio.run(main())
