"""Check natively typed settings values (from arguments or config files) against annotations."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from ttbt5_otel._exceptions import ConfigError


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def _matches(value: Any, annotation: Any) -> bool:  # noqa: PLR0911 - one case per type shape
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if origin in (Mapping, dict) or annotation is Mapping:
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
        )
    return isinstance(value, annotation)


def check_value(option: str, value: Any, annotation: Any, source: str) -> Any:
    """``value`` if it fits ``annotation``, else ``ConfigError`` naming option and source."""
    if not _matches(value, annotation):
        raise ConfigError(
            option,
            f"expected {_describe(annotation)}, got {type(value).__name__} {value!r}",
            source,
        )
    if typing.get_origin(annotation) is tuple:
        return tuple(value)
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if annotation is float or (
        typing.get_origin(annotation) in (types.UnionType, typing.Union)
        and float in typing.get_args(annotation)
        and isinstance(value, int)
    ):
        return float(value)
    return value
