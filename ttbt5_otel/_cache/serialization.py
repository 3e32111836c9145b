"""Serializers of the shared levels (Redis, disk): strict JSON by default, pickle on request.

JSON is the default because a shared store is readable by other processes and, possibly,
by an attacker: decoding JSON cannot run code. The JSON serializer is strict: a value that
would not come back equal and of the same type (a tuple, a set, an int-keyed dict, a
subclass such as an ``IntEnum``, NaN) is refused with the path and the type, instead of
silently coming back different.
"""

from __future__ import annotations

import json
import math
import pickle
from typing import Any, Final, Protocol

_SCALARS: Final = (type(None), bool, int, str)


class Unstorable(TypeError):  # noqa: N818 - internal signal, turned into CacheSerializationError
    """A value (or a part of it, at ``path``) the serializer cannot store faithfully."""

    def __init__(self, path: str, value_type: str, hint: str) -> None:
        """Describe what was found where, and what to do about it."""
        super().__init__(f"{value_type} at {path}: {hint}")
        self.path = path
        self.value_type = value_type
        self.hint = hint


class Serializer(Protocol):
    """Turns cache envelopes into bytes and back."""

    name: str

    def check(self, value: Any) -> None:
        """Raise ``Unstorable`` if ``value`` would not come back unchanged."""
        ...

    def dumps(self, wire: Any) -> bytes:
        """Encode an envelope (already checked)."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode bytes written by ``dumps``."""
        ...


def _check_json(value: Any, path: str) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is float:
        if not math.isfinite(value):
            raise Unstorable(path, "float", "NaN and infinities have no JSON form")
        return
    if kind is list:
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise Unstorable(
                    f"{path} (key {key!r})",
                    type(key).__qualname__,
                    "JSON object keys must be str; other keys would come back as str",
                )
            _check_json(item, f"{path}[{key!r}]")
        return
    if kind is tuple:
        raise Unstorable(path, "tuple", "a tuple would come back as a list; store a list")
    raise Unstorable(
        path,
        kind.__qualname__,
        "not a JSON type (None, bool, int, float, str, list, dict with str keys); convert it "
        "first, or pass serializer=PickleSerializer() if the store is fully trusted",
    )


class JsonSerializer:
    """Strict JSON (UTF-8): values must be JSON types and come back exactly as stored."""

    name = "json"

    def check(self, value: Any) -> None:
        """Refuse anything JSON would not give back unchanged (see the module docstring)."""
        _check_json(value, "$")

    def dumps(self, wire: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(wire, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        """Decode JSON bytes."""
        return json.loads(data)


class PickleSerializer:
    """Pickle: stores most Python objects, but only for stores nobody else can write to.

    Warning:
        Unpickling runs code chosen by whoever wrote the bytes. Anyone able to write to the
        Redis database or the cache directory can then execute code in every process that
        reads from it. Use it only for fully trusted, access-controlled stores; the default
        ``JsonSerializer`` has no such risk.
    """

    name = "pickle"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        """Pickle with ``protocol``."""
        self.protocol = protocol

    def check(self, value: Any) -> None:
        """Refuse values pickle cannot encode (open files, locks, lambdas, ...)."""
        try:
            pickle.dumps(value, self.protocol)
        except Exception as exc:
            raise Unstorable("$", type(value).__qualname__, f"pickle failed: {exc}") from exc

    def dumps(self, wire: Any) -> bytes:
        """Pickled bytes."""
        return pickle.dumps(wire, self.protocol)

    def loads(self, data: bytes) -> Any:
        """Unpickle (see the class warning)."""
        return pickle.loads(data)  # noqa: S301 - opted into explicitly, documented above
