"""The configuration blocks of the TTBT5 guide, verbatim, for the migration tests.

Copied character for character from the guide's "Environment Variables" and "Configuration
Files" sections: code and config written against the guide must load unchanged.
"""

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
