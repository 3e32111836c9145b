"""Protocol Buffers wire format, written directly: the pieces every OTLP message is made of.

The reference encoder builds a protobuf object per span, attribute and value, then
serializes the tree. Writing the bytes straight from the SDK's objects skips both steps;
field order and presence follow what the reference serializer emits (ascending field
numbers, proto3 defaults left out, oneof members and sub-messages always written), so
the bytes are the same and any OTLP receiver reads them the same way.

Attribute key/value pairs repeat on almost every span (routes, methods, code locations),
so their encoding is remembered, up to a bound.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes

# The reference encoder's logger: its level, filters and rate limits apply unchanged.
_LOG = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")

pack_fixed64: Final = struct.Struct("<Q").pack
pack_fixed32: Final = struct.Struct("<I").pack
pack_double: Final = struct.Struct("<d").pack
_SMALL: Final = tuple(bytes((n,)) for n in range(128))
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_MAX_CACHED_PAIRS: Final = 4_096
_MAX_CACHED_LENGTH: Final = 256


def varint(value: int) -> bytes:
    """``value`` (0 <= value < 2**64) as a base-128 varint."""
    if value < 128:  # noqa: PLR2004 - one byte holds 7 bits
        return _SMALL[value]
    out = bytearray()
    while value > 127:  # noqa: PLR2004
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_bytes(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag, the payload's length, the payload."""
    return tag + varint(len(payload)) + payload


def int64(value: int) -> bytes:
    """A signed 64-bit integer as protobuf writes ``int64`` (two's complement varint)."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        msg = f"{value} does not fit in int64"
        raise ValueError(msg)
    return varint(value & 0xFFFFFFFFFFFFFFFF)


def any_value(value: Any) -> bytes:  # noqa: PLR0911 - one return per kind of value
    """The body of an ``AnyValue`` holding ``value`` (the reference encoder's type order)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return field_bytes(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + int64(value)
    if isinstance(value, float):
        return b"\x21" + pack_double(value)
    if isinstance(value, bytes):
        return field_bytes(b"\x3a", value)
    if isinstance(value, Sequence):
        items = b"".join(field_bytes(b"\x0a", any_value(item)) for item in value)
        return field_bytes(b"\x2a", items)
    if isinstance(value, Mapping):
        pairs = b"".join(field_bytes(b"\x0a", key_value(str(k), v)) for k, v in value.items())
        return field_bytes(b"\x32", pairs)
    msg = f"Invalid type {type(value)} of value {value}"
    raise TypeError(msg)


def key_value(key: str, value: Any) -> bytes:
    """The body of a ``KeyValue``."""
    encoded_key = field_bytes(b"\x0a", key.encode()) if key else b""
    return encoded_key + field_bytes(b"\x12", any_value(value))


_pairs: dict[tuple[str, type, Any], bytes] = {}


def attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Every pair of ``attributes`` as a repeated ``KeyValue`` field numbered by ``tag``.

    A pair whose value cannot be encoded is left out and logged, as the reference encoder
    does; the rest of the message is still sent.
    """
    if not attributes:
        return b""
    if isinstance(attributes, BoundedAttributes):
        # Iterating the SDK's mapping runs Python code per key; its copy is a plain dict.
        attributes = attributes.copy()
    out = bytearray()
    cache = _pairs
    for key, value in attributes.items():
        kind = type(value)
        # Floats are left out: 0.0 == -0.0 differ in bits, and they rarely repeat anyway.
        cacheable = kind is str or kind is int or kind is bool
        if cacheable:
            # The type is part of the key: True == 1 would share an entry.
            encoded = cache.get((key, kind, value))
            if encoded is not None:
                out += tag
                out += encoded
                continue
        try:
            body = key_value(key, value)
        except Exception:
            _LOG.exception("Failed to encode key %s", key)
            continue
        encoded = varint(len(body)) + body
        if cacheable and len(body) <= _MAX_CACHED_LENGTH:
            if len(cache) >= _MAX_CACHED_PAIRS:
                cache.clear()
            cache[(key, kind, value)] = encoded
        out += tag
        out += encoded
    return bytes(out)
