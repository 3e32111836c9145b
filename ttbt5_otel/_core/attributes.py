"""Coercion of arbitrary Python values into OpenTelemetry attribute values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.scrub import REDACTED, active_scrubber

MAX_REPR: Final = 256
_PRIMITIVES: Final = (str, bool, int, float)


def attribute_value(value: Any) -> AttributeValue:
    """``value`` itself when OTel accepts it, else a bounded ``repr``."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    return short_repr(value)


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to ``MAX_REPR`` characters (secrets removed first); never raises."""
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__qualname__}>"
    if len(text) <= MAX_REPR:
        return text
    # Cutting could split a credential so that the export-side rules no longer see its
    # shape (a URL without its `@`): long renderings are scrubbed before they are cut.
    scrubbed = active_scrubber().text(text, "span.attribute")
    text = REDACTED if not isinstance(scrubbed, str) else scrubbed
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def argument_repr(name: str, value: Any) -> str:
    """``short_repr(value)``, or the redaction marker when ``name`` looks like a secret."""
    return REDACTED if active_scrubber().is_secret(name) else short_repr(value)


def attributes_of(mapping: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Every value of ``mapping`` coerced with ``attribute_value``."""
    return {key: attribute_value(value) for key, value in mapping.items()}
