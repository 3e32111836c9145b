"""Input checks raising ``ValidationError`` with the field name and what was expected."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sized
from typing import Any, TypeVar

from ttbt5_otel._exceptions import ValidationError

_T = TypeVar("_T")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Validator:
    """Static checks; each returns the value it accepted so checks can be chained.

    Messages never echo the rejected value: inputs may carry secrets or personal data.
    """

    @staticmethod
    def validate_required(value: _T | None, field: str = "value") -> _T:
        """``value`` must not be ``None`` or an empty string/collection."""
        if value is None or (isinstance(value, Sized) and len(value) == 0):
            raise ValidationError(field, "is required")
        return value

    @staticmethod
    def validate_required_fields(data: Mapping[str, Any], fields: Collection[str]) -> None:
        """Every name in ``fields`` must be present and non-empty in ``data``."""
        for field in fields:
            Validator.validate_required(data.get(field), field)

    @staticmethod
    def validate_type(
        value: Any, expected: type[_T] | tuple[type, ...], field: str = "value"
    ) -> _T:
        """``value`` must be an instance of ``expected`` (``bool`` is not accepted as int)."""
        types = expected if isinstance(expected, tuple) else (expected,)
        bool_as_number = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or bool_as_number:
            names = " or ".join(t.__name__ for t in types)
            raise ValidationError(field, f"must be of type {names}, got {type(value).__name__}")
        return value  # type: ignore[return-value]

    @staticmethod
    def validate_length(
        value: Sized,
        min_length: int | None = None,
        max_length: int | None = None,
        field: str = "value",
    ) -> Sized:
        """``len(value)`` must lie within ``min_length``..``max_length`` (inclusive)."""
        try:
            length = len(value)
        except TypeError:
            raise ValidationError(field, "must have a length") from None
        if min_length is not None and length < min_length:
            raise ValidationError(field, f"must be at least {min_length} long, got {length}")
        if max_length is not None and length > max_length:
            raise ValidationError(field, f"must be at most {max_length} long, got {length}")
        return value

    @staticmethod
    def validate_range(
        value: float,
        min_value: float | None = None,
        max_value: float | None = None,
        field: str = "value",
    ) -> float:
        """``value`` must be a number within ``min_value``..``max_value`` (inclusive)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(field, f"must be a number, got {type(value).__name__}")
        if math.isnan(value):  # NaN would pass both bounds
            raise ValidationError(field, "must be a number, got NaN")
        if min_value is not None and value < min_value:
            raise ValidationError(field, f"must be >= {min_value}")
        if max_value is not None and value > max_value:
            raise ValidationError(field, f"must be <= {max_value}")
        return value

    @staticmethod
    def validate_pattern(
        value: str, pattern: str | re.Pattern[str], field: str = "value", description: str = ""
    ) -> str:
        """``value`` must fully match ``pattern``; ``description`` explains it to humans."""
        if not isinstance(value, str):
            raise ValidationError(field, f"must be a string, got {type(value).__name__}")
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        if regex.fullmatch(value) is None:
            expected = description or f"the pattern {regex.pattern!r}"
            raise ValidationError(field, f"must match {expected}")
        return value

    @staticmethod
    def validate_email(value: str, field: str = "email") -> str:
        """``value`` must look like an e-mail address."""
        return Validator.validate_pattern(value, _EMAIL, field, "an e-mail address")

    @staticmethod
    def validate_choice(value: _T, choices: Collection[_T], field: str = "value") -> _T:
        """``value`` must be one of ``choices``."""
        if value not in choices:
            allowed = ", ".join(sorted(repr(c) for c in choices))
            raise ValidationError(field, f"must be one of {allowed}")
        return value
