"""One settings model for the application: telemetry plus the patterns' own settings.

Precedence, highest first: explicit argument > ``TTBT5_*`` environment variable > standard
``OTEL_*`` variable (telemetry only) > config file (``TTBT5_CONFIG_FILE``: JSON, TOML or YAML)
> default. A wrong type or an unknown key fails with the key and the file or variable named.

The file has one table per section::

    {"telemetry": {...TelemetryConfig fields...},
     "logging": {"level": "INFO", "format": "text"},
     "cache": {...}, "monitoring": {...}, "retry": {...}}
"""

from __future__ import annotations

import contextlib
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ttbt5_otel._exceptions import ConfigError
from ttbt5_otel._sdk.config import TelemetryConfig, resolve_config
from ttbt5_otel._sdk.config_file import CONFIG_FILE_VARIABLE, read_config_file, telemetry_section
from ttbt5_otel._sdk.typecheck import check_value

if TYPE_CHECKING:
    from ttbt5_otel._cache import HierarchicalCache

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """How the application's own log output looks (the level lives in ``telemetry``)."""

    format: Literal["text", "json"] = "text"
    """TTBT5_LOG_FORMAT: ``text`` for people, ``json`` for log shippers."""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Defaults for caches built from settings."""

    backend: Literal["memory", "redis", "disk"] = "memory"
    """TTBT5_CACHE_BACKEND: the slowest level the application's caches use."""
    default_ttl: float = 300.0
    """TTBT5_CACHE_DEFAULT_TTL: seconds an entry lives unless a call says otherwise."""
    max_entries: int = 1000
    """TTBT5_CACHE_MAX_ENTRIES: bound of the in-memory level."""
    strategy: Literal["lru", "lfu", "ttl"] = "lru"
    """TTBT5_CACHE_STRATEGY: eviction strategy of the in-memory level."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """TTBT5_CACHE_REDIS_URL: Redis used by the second level."""
    disk_path: str = ".cache/ttbt5"
    """TTBT5_CACHE_DISK_PATH: directory of the disk level."""

    def build(self, name: str, **options: Any) -> HierarchicalCache:
        """A ``HierarchicalCache`` named ``name`` with these settings' levels and TTL.

        The memory level is always there; ``backend`` adds Redis (``redis_url``) or the disk
        (``disk_path``) below it. ``options`` go to ``HierarchicalCache`` (``strict``, ...).
        """
        from ttbt5_otel._cache import HierarchicalCache, MemoryCache  # noqa: PLC0415

        l1 = MemoryCache(self.max_entries, strategy=self.strategy, name=name)
        levels: dict[str, Any] = {"l1": l1}
        if self.backend == "redis":
            levels["l2"] = self.redis_url
        elif self.backend == "disk":
            levels["disk"] = self.disk_path
        options.setdefault("ttl", self.default_ttl)
        return HierarchicalCache.from_levels(name=name, **levels, **options)


@dataclass(frozen=True, slots=True)
class MonitoringSettings:
    """Health checks and their HTTP endpoint."""

    interval: float = 60.0
    """TTBT5_MONITORING_INTERVAL: seconds between two runs of the health checks."""
    health_check_timeout: float = 5.0
    """TTBT5_MONITORING_HEALTH_CHECK_TIMEOUT: seconds one check may take before it fails."""
    health_port: int | None = None
    """TTBT5_MONITORING_HEALTH_PORT: serve /healthz and /readyz on 127.0.0.1 (unset: off)."""


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Defaults for ``retry`` policies built from settings."""

    attempts: int = 3
    """TTBT5_RETRY_ATTEMPTS: total attempts, the first included."""
    backoff: float = 0.5
    """TTBT5_RETRY_BACKOFF: first wait in seconds, doubled (``backoff_factor``) each time."""
    backoff_factor: float = 2.0
    """TTBT5_RETRY_BACKOFF_FACTOR: growth of the wait between attempts."""
    backoff_max: float = 10.0
    """TTBT5_RETRY_BACKOFF_MAX: longest single wait in seconds."""

    def policy(self, name: str | None = None, **options: Any) -> Callable[[_F], _F]:
        """A ``retry`` decorator with these attempts and exponential backoff.

        ``options`` go to ``retry`` (``on=``, ``reraise=``, ...) and win over the settings.
        """
        import tenacity  # noqa: PLC0415

        from ttbt5_otel._resilience.retry import retry  # noqa: PLC0415

        options.setdefault("attempts", self.attempts)
        if "wait" not in options and "backoff" not in options:
            options["wait"] = tenacity.wait_exponential(
                multiplier=self.backoff, exp_base=self.backoff_factor, max=self.backoff_max
            )
        return retry(name=name, **options)  # type: ignore[return-value]


_SECTIONS: Final[dict[str, type]] = {
    "logging": LoggingSettings,
    "cache": CacheSettings,
    "monitoring": MonitoringSettings,
    "retry": RetrySettings,
}
_ENV_PREFIX: Final = {"logging": "TTBT5_LOG_", "cache": "TTBT5_CACHE_",
                      "monitoring": "TTBT5_MONITORING_", "retry": "TTBT5_RETRY_"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, resolved once; ``Settings.telemetry`` is what ``init()`` uses."""

    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    config_file: str | None = None
    """The file the settings were read from, if any."""


def env_variable(section: str, name: str) -> str:
    """Environment variable of setting ``name`` in ``section`` (not for ``telemetry``)."""
    return f"{_ENV_PREFIX[section]}{name.upper()}"


def _resolve_section(
    section: str,
    explicit: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    file_source: str,
) -> Any:
    cls = _SECTIONS[section]
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    for given, source in ((explicit, "argument"), (file_values, file_source)):
        unknown = sorted(set(given) - names)
        if unknown:
            raise ConfigError(
                f"{section}.{unknown[0]}",
                f"unknown setting; known: {', '.join(sorted(names))}",
                source,
            )
    values: dict[str, Any] = {}
    for name in names:
        option = f"{section}.{name}"
        variable = env_variable(section, name)
        if name in explicit:
            values[name] = check_value(option, explicit[name], hints[name], "argument")
        elif environ.get(variable, "").strip():
            values[name] = _parse_env(option, environ[variable], hints[name], variable)
        elif name in file_values:
            values[name] = check_value(option, file_values[name], hints[name], file_source)
    instance = cls(**values)
    for name in names:
        value = getattr(instance, name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{section}.{name}", f"{value} must not be negative")
    return instance


def _parse_env(option: str, raw: str, annotation: Any, variable: str) -> Any:
    text = raw.strip()
    candidates: list[Any] = [text]
    if text.lower() in ("none", "null", "off"):
        candidates.insert(0, None)
    for parse in (int, float):
        with contextlib.suppress(ValueError):
            candidates.append(parse(text))
    for candidate in candidates:
        try:
            return check_value(option, candidate, annotation, variable)
        except ConfigError:
            continue
    return check_value(option, text, annotation, variable)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **sections: Mapping[str, Any],
) -> Settings:
    """Resolve every setting: arguments (one mapping per section) > env > file > defaults.

    ``config_file`` defaults to ``TTBT5_CONFIG_FILE``. Example::

        settings = load_settings(telemetry={"service_name": "orders"}, cache={"max_entries": 50})
    """
    environ = os.environ if environ is None else environ
    unknown = sorted(set(sections) - {"telemetry", *_SECTIONS})
    if unknown:
        raise ConfigError(unknown[0], "unknown section", "argument")
    path = config_file or environ.get(CONFIG_FILE_VARIABLE) or None
    data = read_config_file(path, allowed_sections=("telemetry", *_SECTIONS)) if path else {}
    source = str(path) if path else "config file"
    file_logging = dict(data.get("logging", {}))
    file_logging.pop("level", None)
    explicit_logging = dict(sections.get("logging", {}))
    explicit_telemetry = dict(sections.get("telemetry", {}))
    if "level" in explicit_logging:
        explicit_telemetry.setdefault("log_level", explicit_logging.pop("level"))
    telemetry = resolve_config(explicit_telemetry, environ, telemetry_section(data), source)
    resolved = {
        name: _resolve_section(
            name,
            explicit_logging if name == "logging" else dict(sections.get(name, {})),
            environ,
            file_logging if name == "logging" else dict(data.get(name, {})),
            source,
        )
        for name in _SECTIONS
    }
    return Settings(telemetry=telemetry, config_file=str(path) if path else None, **resolved)
