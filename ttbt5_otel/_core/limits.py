"""Bounds every instrument shares: attribute sets per instrument and histogram buckets.

The Python SDK keeps one aggregation per distinct attribute set for the life of the
process, so each instrument of this package admits at most ``cardinality_limit()`` sets and
records the rest under ``OVERFLOW_ATTRIBUTES``. ``init()`` sets the limit from its
``metric_cardinality_limit`` option; instruments read it when a new set arrives, so those
created at import time follow it too.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.util.types import Attributes

OVERFLOW_ATTRIBUTES: Final[Attributes] = {"otel.metric.overflow": True}
DEFAULT_CARDINALITY_LIMIT: Final = 2000

# Seconds-scale buckets: sub-millisecond cache hits up to slow remote calls.
DURATION_BUCKETS_SECONDS: Final[tuple[float, ...]] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# Attempts per retried call are small integers; the SDK's default buckets are made for
# milliseconds and would put nearly everything into the first one.
RETRY_ATTEMPT_BUCKETS: Final[tuple[float, ...]] = (1, 2, 3, 4, 5, 7, 10)


class _Limits:
    cardinality = DEFAULT_CARDINALITY_LIMIT


def cardinality_limit() -> int:
    """Attribute sets an instrument admits before recording under the overflow set."""
    return _Limits.cardinality


def set_cardinality_limit(limit: int) -> None:
    """Change the limit of every instrument without one of its own."""
    _Limits.cardinality = limit
