"""Span attributes cleaned once, when a decorator is applied, instead of on every call.

The SDK runs every attribute of every new span through its cleaner (key check, value type
check, sequences copied to tuples): about a third of a small span's cost. A decorator's
static attributes never change, so ``CleanAttributes`` holds them as the SDK's own cleaner
left them, with what the span's limits are checked against, for ``lean_spans`` to skip
that pass. Anything else takes the SDK's normal path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.util.types import AttributeValue

UNFIT: Final = 1 << 62
"""``longest`` of a mapping that must take the SDK's path whatever the limits."""
_PLAIN: Final = (bool, int, float, bytes, type(None))
"""Values, besides strings, the SDK's cleaner keeps as they are."""


class CleanAttributes(dict[str, AttributeValue]):
    """Attributes in the form the SDK's cleaner gives them: valid keys, immutable values.

    ``longest`` is the length of the longest string value (inside sequences too), compared
    with the span attribute length limit, which the SDK applies by truncating.
    """

    __slots__ = ("longest",)

    def __init__(self, cleaned: Mapping[str, AttributeValue], longest: int) -> None:
        """Wrap an already cleaned mapping; use ``clean_attributes`` to build one."""
        super().__init__(cleaned)
        self.longest = longest

    def with_strings(self, extra: Mapping[str, str], *, before: bool = False) -> CleanAttributes:
        """These attributes and ``extra`` (non-empty keys, string values: clean as they are).

        ``extra`` goes after these, winning on a shared key, or ``before`` them, losing.
        """
        longest = max(self.longest, max(map(len, extra.values()), default=0))
        return CleanAttributes({**extra, **self} if before else {**self, **extra}, longest)


def _longest(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return max(map(_longest, value), default=0)
    if isinstance(value, _PLAIN):
        return 0
    # A mapping value stays mutable after cleaning: sharing it between spans would let one
    # span's change show in the others. A value of another type the SDK converts with a
    # warning, on every span. Either way such attributes always take the SDK's path.
    return UNFIT


def clean_attributes(attributes: Mapping[str, AttributeValue]) -> CleanAttributes:
    """``attributes`` as the SDK's own cleaner leaves them.

    No limits apply here: the span's limits are only known when it starts. Attributes the
    cleaner would drop or convert with a warning are kept as given and marked ``UNFIT``, so
    every span still gets the SDK's treatment (warning and dropped count) for them.
    """
    longest = 0
    sequences = False
    for key, value in attributes.items():
        if not (key and isinstance(key, str)):
            return CleanAttributes(attributes, UNFIT)  # the SDK drops or converts such keys
        # ``span(...)`` builds its attributes on every call: this loop, not the SDK's
        # cleaner, keeps that cheap for the usual plain values.
        if isinstance(value, str):
            longest = max(longest, len(value))
        elif not isinstance(value, _PLAIN):
            sequences = True
            longest = max(longest, _longest(value))
    if longest >= UNFIT:
        return CleanAttributes(attributes, UNFIT)
    # The cleaner returns plain values as they are; sequences it copies into tuples.
    cleaned = BoundedAttributes(None, attributes).copy() if sequences else attributes
    return CleanAttributes(cleaned, longest)
