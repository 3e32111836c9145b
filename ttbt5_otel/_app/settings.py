"""One settings model for the application: telemetry plus the patterns' own settings.

Precedence, highest first: explicit argument > ``TTBT5_*`` environment variable > standard
``OTEL_*`` variable (telemetry only) > the TTBT5 guide's variable (``APP_NAME``,
``CACHE_MAX_SIZE_MB``, ...: each option's ``aliases``) > config file (``TTBT5_CONFIG_FILE``:
JSON, TOML or YAML) > default. A wrong type or an unknown key fails with the key and the file
or variable named; ``Settings.sources`` says where each value came from.

The file has one table per section::

    {"telemetry": {...TelemetryConfig fields...},
     "logging": {"level": "INFO", "format": "text", "file": "logs/app.log"},
     "cache": {...}, "monitoring": {...}, "retry": {...}}

and the guide's ``config/base.json`` (sections ``application``, ``caching``, and its keys of
``logging`` and ``monitoring``) is read as aliases of those: see ``config_file``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ttbt5_otel._exceptions import ConfigError
from ttbt5_otel._sdk.config import TelemetryConfig, resolve_with_sources, telemetry_options
from ttbt5_otel._sdk.config_file import CONFIG_FILE_VARIABLE, NativeFile, read_native_file
from ttbt5_otel._sdk.options import Declared, check_bounds, declared, option, resolve_section

if TYPE_CHECKING:
    from ttbt5_otel._cache import HierarchicalCache

_F = TypeVar("_F", bound=Callable[..., Any])
_MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """How the application's own log output looks (the level lives in ``telemetry``)."""

    format: Literal["text", "json"] = option(
        "text",
        doc="console log format: text for people, json for log shippers "
        '(file: "structured" is json)',
        env=("TTBT5_LOG_FORMAT",),
        aliases=("LOG_FORMAT",),
    )


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Defaults for caches built from settings."""

    backend: Literal["memory", "redis", "disk"] = option(
        "memory",
        doc="slowest level of caches built from settings: memory, redis or disk",
        env=("TTBT5_CACHE_BACKEND",),
        aliases=("CACHE_BACKEND",),
    )
    default_ttl: float = option(
        300.0,
        doc="seconds an entry lives unless a call says otherwise",
        env=("TTBT5_CACHE_DEFAULT_TTL",),
        aliases=("CACHE_TTL_DEFAULT",),
        minimum=0,
    )
    max_entries: int = option(
        1000, doc="bound of the in-memory level", env=("TTBT5_CACHE_MAX_ENTRIES",), minimum=1
    )
    max_memory_mb: float | None = option(
        None,
        doc="also bound the in-memory level by the approximate size of its values, in MiB "
        "(unset: entries only)",
        env=("TTBT5_CACHE_MAX_MEMORY_MB",),
        aliases=("CACHE_MAX_SIZE_MB",),
        positive=True,
    )
    strategy: Literal["lru", "lfu", "ttl"] = option(
        "lru",
        doc="eviction strategy of the in-memory level: lru, lfu or ttl",
        env=("TTBT5_CACHE_STRATEGY",),
    )
    redis_url: str = option(
        "redis://127.0.0.1:6379/0",
        doc="Redis of the second level",
        env=("TTBT5_CACHE_REDIS_URL",),
    )
    disk_path: str = option(
        ".cache/ttbt5", doc="directory of the disk level", env=("TTBT5_CACHE_DISK_PATH",)
    )

    def build(self, name: str, **options: Any) -> HierarchicalCache:
        """A ``HierarchicalCache`` named ``name`` with these settings' levels and TTL.

        The memory level is always there; ``backend`` adds Redis (``redis_url``) or the disk
        (``disk_path``) below it. ``options`` go to ``HierarchicalCache`` (``strict``, ...).
        """
        from ttbt5_otel._cache import HierarchicalCache, MemoryCache  # noqa: PLC0415

        max_bytes = None if self.max_memory_mb is None else int(self.max_memory_mb * _MIB)
        l1 = MemoryCache(self.max_entries, strategy=self.strategy, max_bytes=max_bytes, name=name)
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

    interval: float = option(
        60.0,
        doc="seconds between two runs of the health checks (file: also "
        "monitoring.interval_seconds)",
        env=("TTBT5_MONITORING_INTERVAL",),
        aliases=("MONITORING_INTERVAL",),
        positive=True,
    )
    health_check_timeout: float = option(
        5.0,
        doc="seconds one health check may take before it fails",
        env=("TTBT5_MONITORING_HEALTH_CHECK_TIMEOUT",),
        aliases=("HEALTH_CHECK_TIMEOUT",),
        positive=True,
    )
    health_port: int | None = option(
        None,
        doc="serve /healthz and /readyz on 127.0.0.1 at this port (unset: off)",
        env=("TTBT5_MONITORING_HEALTH_PORT",),
        minimum=0,
    )


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Defaults for ``retry`` policies built from settings."""

    attempts: int = option(
        3,
        doc="total attempts, the first included",
        env=("TTBT5_RETRY_ATTEMPTS",),
        aliases=("ERROR_RETRY_MAX_ATTEMPTS",),
        minimum=1,
    )
    backoff: float = option(
        0.5,
        doc="first wait in seconds, multiplied by backoff_factor each time",
        env=("TTBT5_RETRY_BACKOFF",),
        minimum=0,
    )
    backoff_factor: float = option(
        2.0,
        doc="growth of the wait between attempts",
        env=("TTBT5_RETRY_BACKOFF_FACTOR",),
        aliases=("ERROR_RETRY_BACKOFF_FACTOR",),
        minimum=1,
    )
    backoff_max: float = option(
        10.0, doc="longest single wait in seconds", env=("TTBT5_RETRY_BACKOFF_MAX",), minimum=0
    )

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
    sources: Mapping[str, str] = field(default_factory=dict)
    """Option key (``service_name``, ``cache.max_memory_mb``) -> where its value came from:
    ``argument``, the variable (``TTBT5_*``, ``OTEL_*`` or the guide's), the file (with the
    guide key it was read from). Options at their default are absent."""
    notes: tuple[str, ...] = ()
    """Settings the file asked for that this package does not apply, each in words."""


def option_table() -> list[Declared]:
    """Every setting of every section, telemetry first, in declaration order."""
    rows = list(telemetry_options())
    for section, cls in _SECTIONS.items():
        rows.extend(declared(cls, section))
    return rows


def _resolve_section(
    section: str,
    explicit: Mapping[str, Any],
    environ: Mapping[str, str],
    native: NativeFile,
    file_source: str,
    sources: dict[str, str],
) -> Any:
    rows = list(declared(_SECTIONS[section], section))
    file_values = native.sections.get(section, {})
    labels = native.labels.get(section, {})
    values, found = resolve_section(rows, explicit, environ, file_values, file_source, labels)
    for row in rows:
        if row.name in values:
            check_bounds(row, values[row.name], found[row.name])
            sources[row.key] = found[row.name]
    return _SECTIONS[section](**values)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **sections: Mapping[str, Any],
) -> Settings:
    """Resolve every setting: arguments (one mapping per section) > env > file > defaults.

    ``config_file`` defaults to ``TTBT5_CONFIG_FILE``. Example::

        settings = load_settings(telemetry={"service_name": "orders"}, cache={"max_entries": 50})

    What a file asks for that cannot be applied (the guide's ``metrics_retention_hours``)
    is in ``Settings.notes`` and logged once.
    """
    environ = os.environ if environ is None else environ
    unknown = sorted(set(sections) - {"telemetry", *_SECTIONS})
    if unknown:
        raise ConfigError(unknown[0], "unknown section", "argument")
    path = config_file or environ.get(CONFIG_FILE_VARIABLE) or None
    native = read_native_file(path) if path else NativeFile({}, {}, ())
    source = str(path) if path else "config file"
    explicit_logging = dict(sections.get("logging", {}))
    explicit_telemetry = dict(sections.get("telemetry", {}))
    for key, name in (("level", "log_level"), ("file", "log_file")):
        if key in explicit_logging:
            explicit_telemetry.setdefault(name, explicit_logging.pop(key))
    telemetry, sources = resolve_with_sources(
        explicit_telemetry,
        environ,
        native.sections.get("telemetry", {}),
        source,
        native.labels.get("telemetry"),
    )
    resolved = {
        name: _resolve_section(
            name,
            explicit_logging if name == "logging" else dict(sections.get(name, {})),
            environ,
            native,
            source,
            sources,
        )
        for name in _SECTIONS
    }
    return Settings(
        telemetry=telemetry,
        config_file=str(path) if path else None,
        sources=sources,
        notes=native.notes,
        **resolved,
    )
