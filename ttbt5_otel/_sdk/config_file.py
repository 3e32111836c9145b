"""The settings file named by ``TTBT5_CONFIG_FILE``: JSON, TOML or YAML, one table per section.

``init()`` reads only its ``telemetry`` section (and ``logging.level``, the bridge's
threshold, which people look for under ``logging``); ``load_settings`` reads them all.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

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


def telemetry_section(data: Mapping[str, Any]) -> dict[str, Any]:
    """The file's telemetry settings, with ``logging.level`` as ``log_level``."""
    telemetry = dict(data.get("telemetry", {}))
    logging_section = data.get("logging", {})
    if "level" in logging_section:
        telemetry.setdefault("log_level", logging_section["level"])
    return telemetry


def file_telemetry(environ: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The telemetry section of the file named in ``environ`` (empty without one)."""
    path = environ.get(CONFIG_FILE_VARIABLE) or None
    if not path:
        return {}, "config file"
    data = read_config_file(
        path, allowed_sections=("telemetry", "logging", "cache", "monitoring", "retry")
    )
    return telemetry_section(data), path
