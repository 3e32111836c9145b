"""The configuration blocks of the TTBT5 guide, verbatim, for the migration tests.

Copied character for character from the guide's "Environment Variables" and "Configuration
Files" sections: code and config written against the guide must load unchanged.
"""

# ruff: noqa: W293 - the guide's code blocks keep their whitespace-only lines, verbatim

import json
from pathlib import Path
from typing import Any

GUIDE_ENV = """\
# Application
APP_NAME=TTBT5
APP_VERSION=2.0.0
APP_ENVIRONMENT=development

# Logging
LOG_LEVEL=INFO
LOG_FORMAT=json
LOG_FILE=logs/application.log

# Caching
CACHE_BACKEND=memory
CACHE_TTL_DEFAULT=3600
CACHE_MAX_SIZE_MB=100

# Monitoring
MONITORING_ENABLED=true
MONITORING_INTERVAL=60
HEALTH_CHECK_TIMEOUT=30

# Error Handling
ERROR_RETRY_MAX_ATTEMPTS=3
ERROR_RETRY_BACKOFF_FACTOR=2.0
"""

GUIDE_BASE_JSON = """\
{
  "application": {
    "name": "TTBT5",
    "version": "2.0.0"
  },
  "logging": {
    "level": "INFO",
    "format": "structured",
    "handlers": ["console", "file"]
  },
  "caching": {
    "default_ttl": 3600,
    "max_memory_mb": 100,
    "strategy": "lru"
  },
  "monitoring": {
    "enabled": true,
    "interval_seconds": 60,
    "metrics_retention_hours": 24
  }
}
"""

# The guide's six ```python blocks, in order (usage examples of sections 1-4, the basic
# integration, the debug-mode snippet).
GUIDE_PYTHON_BLOCKS = (
    """\
from src.patterns.application_context import get_application_context, application_lifecycle

@application_lifecycle
async def main():
    context = get_application_context()
    
    # Setup dependencies
    context.set_container(di_container)
    context.set_event_bus(event_bus)
    
    # Add lifecycle hooks
    context.add_lifecycle_hook(DatabaseHook())
    context.add_lifecycle_hook(CacheHook())
    
    # Application will automatically startup and shutdown
    # Your application logic here
""",
    """\
from src.patterns.error_handling import (
    ErrorManager, ApplicationError, Validator, handle_errors
)

# Setup error manager
error_manager = ErrorManager()
error_manager.register_handler(LoggingErrorHandler(logger))
error_manager.register_handler(RetryErrorHandler(max_retries=3))

# Use decorators for automatic error handling
@handle_errors(error_manager)
async def risky_operation(data: str):
    # Validate input
    Validator.validate_length(data, min_length=1, max_length=100)
    
    # Your operation logic
    if "fail" in data:
        raise ApplicationError(
            "Operation failed",
            severity=ErrorSeverity.HIGH,
            recovery_suggestions=["Try again", "Check input data"]
        )
    
    return "Success"
""",
    """\
from src.patterns.caching import (
    CacheManager, MemoryCacheBackend, HierarchicalCache, cached
)

# Setup hierarchical cache
memory_cache = CacheManager(MemoryCacheBackend(max_size=1000))
disk_cache = CacheManager(DiskCacheBackend(cache_dir="./cache"))

hierarchical = HierarchicalCache()
hierarchical.add_level(CacheLevel.L1_MEMORY, memory_cache)
hierarchical.add_level(CacheLevel.L2_DISK, disk_cache)

# Use caching decorator
@cached(ttl=300, tags={'ai_response'})
async def expensive_ai_operation(prompt: str) -> str:
    # Expensive operation that benefits from caching
    return await ai_service.generate_response(prompt)

# Manual cache operations
await cache_manager.set("user:123", user_data, ttl=3600)
user_data = await cache_manager.get("user:123")

# Cache invalidation by tags
await cache_manager.invalidate_by_tags({'ai_response'})
""",
    """\
from src.patterns.logging_monitoring import (
    MonitoringSystem, StructuredLogger, monitor_performance, log_calls
)

# Setup monitoring
monitoring = MonitoringSystem()
monitoring.setup_default_handlers()

# Add health checks
monitoring.add_health_check('database', lambda: check_db_connection())
monitoring.add_health_check('cache', lambda: check_cache_health())

# Start monitoring
await monitoring.start_monitoring(interval_seconds=60)

# Use decorators for automatic monitoring
@monitor_performance()
@log_calls()
async def important_operation():
    # Your operation logic
    pass

# Manual logging with context
logger = StructuredLogger("my_service")
logger.set_context(user_id="123", session_id="abc")
await logger.info("Operation completed", operation="data_processing")
""",
    """\
import asyncio
from src.patterns.application_context import get_application_context
from src.patterns.dependency_injection import DIContainer
from src.patterns.logging_monitoring import MonitoringSystem

async def setup_application():
    # Get application context
    context = get_application_context()
    
    # Setup dependencies
    container = DIContainer()
    monitoring = MonitoringSystem()
    
    # Register services
    container.register('monitoring', monitoring)
    
    # Configure context
    context.set_container(container)
    
    # Start application
    await context.startup()
    
    return context

async def main():
    context = await setup_application()
    
    try:
        # Your application logic here
        monitoring = context.get_dependency('monitoring')
        await monitoring.logger.info("Application running")
        
    finally:
        await context.shutdown()

if __name__ == "__main__":
    asyncio.run(main())
""",
    """\
# Set environment variable
export LOG_LEVEL=DEBUG

# Or in code
logger.set_min_level(LogLevel.DEBUG)
""",
)


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file; comments and blank lines skipped."""
    pairs = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def write_base_json(directory: Path) -> Path:
    """``config/base.json`` under ``directory``, as the guide's set-up step creates it."""
    path = directory / "config" / "base.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GUIDE_BASE_JSON, encoding="utf-8")
    json.loads(GUIDE_BASE_JSON)  # the guide's block is valid JSON as it stands
    return path


def guide_environ(**extra: Any) -> dict[str, str]:
    """The guide's ``.env`` as an environment, plus ``extra``."""
    return {**parse_env(GUIDE_ENV), **{k: str(v) for k, v in extra.items()}}
