"""Stable cache keys for function calls.

A key is ``<module>.<qualname>:<arguments>``, where ``<arguments>`` is canonical JSON of the
call's arguments bound to the function's signature (defaults applied, object keys sorted,
no whitespace), so ``f(1)``, ``f(x=1)`` and ``f(1, y=<default>)`` share one key, and the key
is the same in every process and on every run (no ``hash()``, no ``repr()`` of objects). A
first parameter called ``self`` or ``cls`` is left out: methods share entries across
instances unless a custom ``key=`` tells them apart. When the argument part is longer than
``MAX_ARGUMENTS_LENGTH`` characters it is replaced by ``sha256:<hex digest>`` of it.

Besides JSON types, arguments may be tuples (as lists), sets and frozensets (sorted), bytes,
enums, dates and times, ``Decimal``, ``UUID``, paths and dataclass instances; anything else
raises ``CacheError`` naming the function and the argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import inspect
import json
import pathlib
import uuid
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from typing import Any, Final

from ttbt5_otel._exceptions import CacheError

MAX_ARGUMENTS_LENGTH: Final = 200
_SIMPLE_KINDS: Final = (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
_EMPTY: Final = inspect.Parameter.empty
# Exactly what json.dumps writes for these types (subclasses take the general path).
_SCALARS: Final[dict[type, Callable[[Any], str]]] = {
    str: encode_basestring,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
}


def function_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of ``fn``."""
    return f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', repr(fn))}"


def _canonical(value: Any) -> Any:
    # json calls this only for values it cannot encode itself.
    if isinstance(value, set | frozenset):
        return sorted(_dumps(item) for item in value)
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, enum.Enum):
        return {"$enum": f"{type(value).__qualname__}.{value.name}"}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | pathlib.PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"$type": type(value).__qualname__, **fields}
    raise TypeError(type(value).__qualname__)


def _finish(prefix: str, text: str) -> str:
    if len(text) > MAX_ARGUMENTS_LENGTH:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return f"{prefix}:{text}"


def _dumps(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_canonical
    )


def key_from_arguments(prefix: str, arguments: Mapping[str, Any]) -> str:
    """The key of a call of the function called ``prefix`` with bound ``arguments``."""
    try:
        text = _dumps(arguments)
    except (TypeError, ValueError) as exc:
        culprit = next((n for n, v in arguments.items() if not _encodable(v)), "?")
        raise CacheError(
            f"cannot build a cache key for {prefix}: argument {culprit!r} ({exc}) has no "
            "stable representation; pass key=<callable> to cached()"
        ) from exc
    return _finish(prefix, text)


def _encodable(value: Any) -> bool:
    try:
        _dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class KeyBuilder:
    """Builds the key of each call of one function (see the module docstring)."""

    __slots__ = (
        "_defaults",
        "_index",
        "_names",
        "_order",
        "_quoted",
        "_signature",
        "_simple",
        "_skip",
        "prefix",
    )

    def __init__(self, fn: Callable[..., Any]) -> None:
        """Inspect ``fn``'s signature once."""
        self.prefix = function_name(fn)
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())
        self._skip = bool(params) and params[0].name in {"self", "cls"}
        kept = params[1:] if self._skip else params
        # Plain positional-or-keyword signatures are bound here without inspect.bind,
        # which is the slowest part of building a key.
        self._simple = all(p.kind in _SIMPLE_KINDS for p in params)
        self._names = tuple(p.name for p in kept)
        self._defaults = tuple(p.default for p in kept)
        self._index = {name: index for index, name in enumerate(self._names)}
        # For the scalar fast path: argument positions in sorted-name order, names as JSON.
        self._order = sorted(range(len(self._names)), key=self._names.__getitem__)
        self._quoted = tuple(encode_basestring(name) for name in self._names)

    def _positions(
        self, values: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        # Bind a call to a plain signature; None when inspect.bind must decide (or complain).
        count = len(self._names)
        if len(values) > count:
            return None
        if not kwargs and len(values) == count:
            return values
        filled = [*values, *self._defaults[len(values) :]]
        for name, value in kwargs.items():
            index = self._index.get(name, -1)
            if index < len(values):
                return None
            filled[index] = value
        if any(value is _EMPTY for value in filled):
            return None
        return tuple(filled)

    def _scalars(self, values: tuple[Any, ...]) -> str | None:
        # The canonical JSON of all-scalar arguments without json.dumps, which costs more
        # than the cache lookup it serves; any other type returns None (general path).
        parts = []
        for index in self._order:
            encode = _SCALARS.get(type(values[index]))
            if encode is None:
                return None
            parts.append(f"{self._quoted[index]}:{encode(values[index])}")
        return "{" + ",".join(parts) + "}"

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The key of a call with ``args`` and ``kwargs``."""
        if self._simple:
            values = self._positions(args[1:] if self._skip else args, kwargs)
            if values is not None:
                text = self._scalars(values)
                if text is not None:
                    return _finish(self.prefix, text)
                return key_from_arguments(self.prefix, dict(zip(self._names, values, strict=True)))
        try:
            call = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.prefix}(): {exc}") from None
        call.apply_defaults()
        arguments = dict(call.arguments)
        if self._skip:
            arguments.pop(next(iter(self._signature.parameters)))
        return key_from_arguments(self.prefix, arguments)
