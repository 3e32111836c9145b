"""The option table: every setting declared once, on its settings dataclass.

A setting is a dataclass field whose default comes from ``option(...)``: its name, type and
default are the field's; its environment variables, bounds and one-line description are the
``OptionSpec`` in the field's metadata. Everything else reads that declaration: resolving
values (``resolve_section``), ``init()``'s errors, ``load_settings``, ``ttbt5-otel doctor``,
the README settings table and ``.env.example``.

A setting may also have ``aliases``: the TTBT5 guide's variable names, read after its own
variables (so ``TTBT5_*`` and ``OTEL_*`` win); a value of an alias that does not parse is
logged once and skipped, since such generic names can belong to other software.

Values are converted by the declared type, never guessed: an environment string is parsed
as exactly that type (``bool`` takes true/false/1/0/yes/no/on/off, ``Literal`` choices match
case-insensitively, ``tuple[str, ...]`` is comma separated, ``Mapping[str, str]`` is
``k=v,k2=v2`` with percent-decoding); argument and file values must already have the type
(an ``int`` is accepted for a ``float``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, overload
from urllib.parse import unquote

from ttbt5_otel._core.guard import warn_once
from ttbt5_otel._exceptions import ConfigError

T = TypeVar("T")
_META: Final = "ttbt5_option"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """What a settings field declares besides its name, type and default."""

    doc: str
    """One line for the README table, ``.env.example`` and editors."""
    env: tuple[str, ...] = ()
    """Variables read, highest precedence first (``TTBT5_*`` before the standard ``OTEL_*``)."""
    millis_env: tuple[str, ...] = ()
    """Standard variables read in milliseconds for a setting kept in seconds."""
    aliases: tuple[str, ...] = ()
    """The TTBT5 guide's names for the setting (``APP_NAME``, ``LOG_FILE``, ...), read after
    every variable above so the package's own names win when both are set."""
    minimum: float | None = None
    """Smallest value allowed (inclusive)."""
    maximum: float | None = None
    """Largest value allowed (inclusive)."""
    positive: bool = False
    """The value must be greater than zero."""
    shown_default: str | None = None
    """How the documents show the default, where the value itself says too little."""


@overload
def option(
    default: T,
    *,
    doc: str,
    env: tuple[str, ...] = (),
    millis_env: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    shown_default: str | None = None,
) -> T: ...


@overload
def option(
    *,
    default_factory: Callable[[], T],
    doc: str,
    env: tuple[str, ...] = (),
    millis_env: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    shown_default: str | None = None,
) -> T: ...


def option(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    doc: str,
    env: tuple[str, ...] = (),
    millis_env: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    shown_default: str | None = None,
) -> Any:
    """Declare a setting: use as the default of a settings dataclass field."""
    spec = OptionSpec(doc, env, millis_env, aliases, minimum, maximum, positive, shown_default)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={_META: spec})
    return dataclasses.field(default=default, metadata={_META: spec})


@dataclass(frozen=True, slots=True)
class Declared:
    """One row of the option table."""

    section: str
    name: str
    annotation: Any
    default: Any
    spec: OptionSpec

    @property
    def key(self) -> str:
        """``name`` for telemetry options (``init()`` arguments), else ``section.name``."""
        return self.name if self.section == "telemetry" else f"{self.section}.{self.name}"

    @property
    def variables(self) -> tuple[str, ...]:
        """Every environment variable read, highest precedence first."""
        return self.spec.env + self.spec.millis_env + self.spec.aliases


def declared(cls: type, section: str) -> Iterator[Declared]:
    """The rows of settings dataclass ``cls``, in field order."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        spec = field.metadata.get(_META)
        if spec is None:
            continue
        default = (
            field.default_factory()
            if field.default_factory is not dataclasses.MISSING
            else field.default
        )
        yield Declared(section, field.name, hints[field.name], default, spec)


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def describe(annotation: Any) -> str:  # noqa: PLR0911 - one case per type shape
    """How an error message names the expected type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(describe(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is tuple:
        return "list of strings"
    if origin is collections.abc.Callable:
        return "function"
    if origin is not None:
        return "table of strings"
    return getattr(annotation, "__name__", str(annotation))


def parse_text(row: Declared, raw: str, source: str) -> Any:  # noqa: C901, PLR0911 - per type
    """``raw`` (an environment value) as ``row``'s declared type."""
    annotation = _without_none(row.annotation)
    origin = typing.get_origin(annotation)
    text = raw.strip()
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(row.key, f"{raw!r} is not a boolean (use true/false)", source)
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(row.key, f"{raw!r} is not an integer", source) from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(row.key, f"{raw!r} is not a number", source) from None
    if origin is typing.Literal:
        return _choice(row, annotation, text, source)
    if origin is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if origin is not None:  # Mapping[str, str]
        return parse_pairs(row.key, text, source)
    if not text:
        raise ConfigError(row.key, "must not be empty", source)
    return text


def _choice(row: Declared, annotation: Any, text: str, source: str) -> str:
    choices = typing.get_args(annotation)
    for choice in choices:
        if text.lower() == str(choice).lower():
            return str(choice)
    raise ConfigError(row.key, f"{text!r} is not one of {', '.join(choices)}", source)


def parse_pairs(option_key: str, raw: str, source: str) -> dict[str, str]:
    """``k=v,k2=v2`` (percent-encoded, as the OpenTelemetry variables are) as a dict."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(option_key, f"{item.strip()!r} is not a key=value pair", source)
        pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


def _fits(value: Any, annotation: Any) -> bool:  # noqa: PLR0911 - one case per type shape
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return value is None
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return isinstance(value, str) and value in typing.get_args(annotation)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if origin is collections.abc.Callable:
        return callable(value)
    if origin is not None:  # Mapping[str, str]
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
        )
    return isinstance(value, annotation)


def check_native(row: Declared, value: Any, source: str) -> Any:
    """``value`` (an argument or file value) if it has ``row``'s type, normalized."""
    annotation = row.annotation
    if isinstance(value, str) and typing.get_origin(_without_none(annotation)) is typing.Literal:
        value = _choice(row, _without_none(annotation), value, source)
    if not _fits(value, annotation):
        raise ConfigError(
            row.key,
            f"expected {describe(annotation)}, got {type(value).__name__} {value!r}",
            source,
        )
    if isinstance(value, list | tuple):
        return tuple(value)
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if _without_none(annotation) is float and value is not None:
        return float(value)
    if isinstance(value, str) and not value.strip():
        raise ConfigError(row.key, "must not be empty", source)
    return value


def check_bounds(row: Declared, value: Any, source: str | None) -> None:
    """The declared bounds of ``row``, for a resolved ``value``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if not math.isfinite(value):
        raise ConfigError(row.key, f"{value} is not a finite number", source)
    spec = row.spec
    if spec.positive and value <= 0:
        raise ConfigError(row.key, f"{value} must be greater than 0", source)
    low, high = spec.minimum, spec.maximum
    if low is not None and high is not None and not low <= value <= high:
        raise ConfigError(row.key, f"{value} is outside {low:g}..{high:g}", source)
    if low is not None and value < low:
        raise ConfigError(row.key, f"{value} must be at least {low:g}", source)
    if high is not None and value > high:
        raise ConfigError(row.key, f"{value} must be at most {high:g}", source)


def resolve_section(
    rows: Sequence[Declared],
    explicit: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    file_source: str,
    file_labels: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Values and their sources: ``explicit`` > variables in order > ``file_values``.

    Unknown keys in ``explicit`` or ``file_values`` raise ``ConfigError`` listing the known
    ones. Options found nowhere are left out (the dataclass default applies).
    ``file_labels`` names the source of a file value taken from another key than the
    option's own (a guide section such as ``caching.max_memory_mb``); others are
    ``file_source``.
    """
    names = {row.name: row for row in rows}
    for given, source in ((explicit, "argument"), (file_values, file_source)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            prefix = "" if rows[0].section == "telemetry" else f"{rows[0].section}."
            raise ConfigError(
                f"{prefix}{unknown[0]}",
                f"unknown option; known options are: {', '.join(sorted(names))}",
                source,
            )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for row in rows:
        label = (file_labels or {}).get(row.name, file_source)
        found = _find(row, explicit, environ, file_values, label)
        if found is not None:
            values[row.name], sources[row.name] = found
    return values, sources


def _find(
    row: Declared,
    explicit: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    file_source: str,
) -> tuple[Any, str] | None:
    if explicit.get(row.name) is not None:
        return check_native(row, explicit[row.name], "argument"), "argument"
    for variable in row.spec.env:
        raw = environ.get(variable, "")
        if raw.strip():
            return parse_text(row, raw, variable), variable
    for variable in row.spec.millis_env:
        raw = environ.get(variable, "")
        if raw.strip():
            return parse_text(row, raw, variable) / 1000.0, variable
    for variable in row.spec.aliases:
        raw = environ.get(variable, "")
        if not raw.strip():
            continue
        try:
            return parse_text(row, raw, variable), variable
        except ConfigError as exc:
            # The guide's names are generic (LOG_LEVEL, APP_NAME): the variable may belong
            # to other software in the same environment, so a value that does not fit is
            # reported once and skipped instead of stopping the application.
            warn_once(f"alias:{variable}", "ttbt5_otel: %s; ignored", exc)
    if file_values.get(row.name) is not None:
        return check_native(row, file_values[row.name], file_source), file_source
    return None
