"""The settings file named by ``TTBT5_CONFIG_FILE``: JSON, TOML or YAML, one table per section.

``init()`` reads only its ``telemetry`` section (and ``logging.level`` / ``logging.file``,
the bridge's threshold and file, which people look for under ``logging``); ``load_settings``
reads them all.

The TTBT5 guide's ``config/base.json`` sections are read too, as aliases of the native ones
(``native_sections``): ``application`` {name, version, environment} feeds the telemetry
resource, ``caching`` {default_ttl, max_memory_mb, strategy, backend} the ``cache`` section,
``logging.format: "structured"`` means ``json``, ``logging.handlers: ["console", "file"]``
turns the rotating log file on, ``monitoring.enabled`` / ``interval_seconds`` feed
``runtime_metrics`` / ``monitoring.interval``. A native key beats its guide alias when a file
has both. ``monitoring.metrics_retention_hours`` has no counterpart in the process (retention
is the metrics store's: Prometheus ``--storage.tsdb.retention.time``); it is accepted,
reported as a note (``ttbt5-otel doctor`` prints it) and logged once, never applied.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._exceptions import ConfigError

CONFIG_FILE_VARIABLE: Final = "TTBT5_CONFIG_FILE"
MAX_CONFIG_BYTES: Final = 1 << 20
"""A settings file is a few kilobytes; anything past this is a mistake, not settings."""


def _read_regular_file(file: Path, source: str) -> str:
    """The text of ``file`` if it is a regular file within the size cap.

    Opened without blocking and checked before reading: a FIFO would hang the read and a
    device such as ``/dev/zero`` (behind an innocent-looking symlink) would never end it.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(file, flags)
    except OSError as exc:
        raise ConfigError(CONFIG_FILE_VARIABLE, f"cannot read {source}: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(CONFIG_FILE_VARIABLE, f"{source} is not a regular file")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            CONFIG_FILE_VARIABLE, f"{source} is larger than {MAX_CONFIG_BYTES // 1024} KiB"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(CONFIG_FILE_VARIABLE, f"{source} is not UTF-8 text: {exc}") from None


def _parse_text(text: str, suffix: str, source: str) -> Any:
    if suffix == ".json":
        return json.loads(text)
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # noqa: PLC0415 - optional extra
        except ImportError:
            msg = f"{source} is YAML; install the 'yaml' extra (pip install ttbt5-otel[yaml])"
            raise ConfigError(CONFIG_FILE_VARIABLE, msg) from None
        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from None
    msg = f"{source}: unsupported file type {suffix!r} (use .json, .toml, .yaml)"
    raise ConfigError(CONFIG_FILE_VARIABLE, msg)


def read_config_file(
    path: str | os.PathLike[str], allowed_sections: Iterable[str] | None = None
) -> dict[str, Any]:
    """Parse a JSON, TOML or YAML settings file into a dict of sections.

    With ``allowed_sections`` any other section is an error; without, any table is taken
    (``init()`` reads its own sections and leaves the others to ``load_settings``).
    """
    file = Path(path)
    source = str(file)
    text = _read_regular_file(file, source)
    try:
        data = _parse_text(text, file.suffix.lower(), source)
    except (ValueError, RecursionError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(CONFIG_FILE_VARIABLE, f"{source} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(CONFIG_FILE_VARIABLE, f"{source} must hold a table of sections")
    allowed = None if allowed_sections is None else set(allowed_sections)
    for key, value in data.items():
        if allowed is not None and key not in allowed:
            raise ConfigError(key, f"unknown section; known: {', '.join(sorted(allowed))}", source)
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table of settings", source)
    return data


GUIDE_SECTIONS: Final = ("application", "caching")
"""Sections of the guide's ``config/base.json`` that have a native section of another name."""
SECTIONS: Final = ("telemetry", "logging", "cache", "monitoring", "retry", *GUIDE_SECTIONS)
DEFAULT_LOG_FILE: Final = "logs/application.log"
"""Where ``logging.handlers: ["file"]`` writes when no file is named (the guide's path)."""
_HANDLERS: Final = frozenset({"console", "file"})
# (guide section, guide key) -> (native section, native option); telemetry options by name.
_MOVED: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("application", "name"): ("telemetry", "service_name"),
    ("application", "version"): ("telemetry", "service_version"),
    ("application", "environment"): ("telemetry", "environment"),
    ("logging", "level"): ("telemetry", "log_level"),
    ("logging", "file"): ("telemetry", "log_file"),
    ("caching", "backend"): ("cache", "backend"),
    ("caching", "default_ttl"): ("cache", "default_ttl"),
    ("caching", "max_memory_mb"): ("cache", "max_memory_mb"),
    ("caching", "strategy"): ("cache", "strategy"),
    ("monitoring", "enabled"): ("telemetry", "runtime_metrics"),
    ("monitoring", "interval_seconds"): ("monitoring", "interval"),
}


@dataclass(frozen=True, slots=True)
class NativeFile:
    """A settings file with the guide's sections and keys moved to the native ones."""

    sections: dict[str, dict[str, Any]]
    """Native section -> option -> value (only what the file set)."""
    labels: dict[str, dict[str, str]]
    """Native section -> option -> source, for values that came from a guide key."""
    notes: tuple[str, ...]
    """What the file asked for that this package does not do, in words."""


def native_sections(data: Mapping[str, Any], source: str) -> NativeFile:
    """``data`` (from ``read_config_file``) in native sections; guide keys become aliases."""
    sections: dict[str, dict[str, Any]] = {
        name: dict(data.get(name, {})) for name in SECTIONS if name not in GUIDE_SECTIONS
    }
    labels: dict[str, dict[str, str]] = {name: {} for name in sections}
    for section in GUIDE_SECTIONS:
        sections.setdefault(section, {}).update(data.get(section, {}))
    for (section, key), (target, name) in _MOVED.items():
        if key not in sections[section]:
            continue
        value = sections[section].pop(key)
        if name in sections[target]:  # the native key wins
            continue
        sections[target][name] = value
        if (section, key) != ("logging", "level"):  # the usual spelling of log_level in files
            labels[target][name] = f"{source}: {section}.{key}"
    _logging_handlers(sections, labels, source)
    if sections["logging"].get("format") == "structured":
        sections["logging"]["format"] = "json"
        labels["logging"]["format"] = f"{source}: logging.format structured"
    notes = _unmapped(sections["monitoring"], source)
    for section in GUIDE_SECTIONS:
        leftover = sorted(sections.pop(section))
        if leftover:
            raise ConfigError(f"{section}.{leftover[0]}", "unknown guide setting", source)
    return NativeFile(sections, labels, tuple(notes))


def _logging_handlers(
    sections: dict[str, dict[str, Any]], labels: dict[str, dict[str, str]], source: str
) -> None:
    handlers = sections["logging"].pop("handlers", None)
    if handlers is None:
        return
    if not isinstance(handlers, list) or not set(handlers) <= _HANDLERS:
        raise ConfigError(
            "logging.handlers", f"expected a list of console and file, got {handlers!r}", source
        )
    # Console output is the application's logging (or the lifecycle's console handler):
    # it stays whether or not "console" is listed; "file" is the rotating log file.
    if "file" in handlers and "log_file" not in sections["telemetry"]:
        sections["telemetry"]["log_file"] = DEFAULT_LOG_FILE
        labels["telemetry"]["log_file"] = f'{source}: logging.handlers "file"'


def _unmapped(monitoring: dict[str, Any], source: str) -> list[str]:
    retention = monitoring.pop("metrics_retention_hours", None)
    if retention is None:
        return []
    if not isinstance(retention, int | float) or isinstance(retention, bool) or retention <= 0:
        raise ConfigError(
            "monitoring.metrics_retention_hours",
            f"expected a positive number of hours, got {retention!r}",
            source,
        )
    note = (
        f"monitoring.metrics_retention_hours = {retention:g} ({source}) is not applied: "
        "metrics leave the process as OTLP and are kept by the metrics store; set its "
        f"retention there (Prometheus: --storage.tsdb.retention.time={retention:g}h)"
    )
    return [note]


def telemetry_section(data: Mapping[str, Any]) -> dict[str, Any]:
    """The file's telemetry settings, with ``logging.level`` as ``log_level`` (and aliases)."""
    return native_sections(data, "config file").sections["telemetry"]


def read_native_file(path: str | os.PathLike[str]) -> NativeFile:
    """The settings file at ``path``, read and moved to native sections; notes logged once."""
    native = native_sections(read_config_file(path, allowed_sections=SECTIONS), str(path))
    for note in native.notes:
        warn_once(f"settings-note:{note}", "ttbt5_otel: %s", note)
    return native


def file_telemetry(environ: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The telemetry section of the file named in ``environ`` (empty without one)."""
    path = environ.get(CONFIG_FILE_VARIABLE) or None
    if not path:
        return {}, "config file"
    return read_native_file(path).sections["telemetry"], path
