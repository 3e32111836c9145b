"""Metrics and span events of ``retry``.

An SDK counter ``add`` costs microseconds, as much as a fast retried call itself, so call
outcomes are counted as plain integers (``ObservedCounts``), one per attribute set, and
reported by one observable counter at collection time, under the process cardinality
limit. The totals are module-level rather than per decorated function: functions decorated
on the fly (a closure per request) would otherwise take their counts with them. The
attempts histogram has no observable form and stays synchronous.
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry import trace
from opentelemetry.metrics import Histogram, ObservableCounter
from opentelemetry.util.types import AttributeValue

from ttbt5_otel._core.guard import internal_error
from ttbt5_otel._core.limits import RETRY_ATTEMPT_BUCKETS
from ttbt5_otel._core.observed import ObservedCounts
from ttbt5_otel._core.otel import Lazy, meter

CALLS: Final = "ttbt5.retry.calls"
ATTEMPTS: Final = "ttbt5.retry.attempts"
ATTEMPT_EVENT: Final = "retry.attempt_failed"
SUCCESS_WITHOUT_RETRY: Final = "success_without_retry"
SUCCESS_WITH_RETRY: Final = "success_with_retry"
FAILED_WITHOUT_RETRY: Final = "failed_without_retry"
FAILED_WITH_RETRY: Final = "failed_with_retry"

_Key = tuple[str, str, str]
"""(retry.name, retry.outcome, error.type or "" on success)."""


def _attributes(key: _Key) -> dict[str, AttributeValue]:
    name, outcome, error = key
    attributes: dict[str, AttributeValue] = {"retry.name": name, "retry.outcome": outcome}
    if error:
        attributes["error.type"] = error
    return attributes


_counts: ObservedCounts[_Key] = ObservedCounts(_attributes)

_calls: Lazy[ObservableCounter] = Lazy(
    lambda: meter().create_observable_counter(
        CALLS,
        [_counts.observe],
        unit="{call}",
        description="Calls of retried functions, by outcome.",
    )
)
_attempts: Lazy[Histogram] = Lazy(
    lambda: meter().create_histogram(
        ATTEMPTS,
        unit="{attempt}",
        description="Attempts made per call of a retried function.",
        explicit_bucket_boundaries_advisory=RETRY_ATTEMPT_BUCKETS,
    )
)


class RetryTelemetry:
    """Reports the calls of one decorated function; shared by all its calls."""

    __slots__ = ("_name_only", "_ok", "name")

    def __init__(self, name: str) -> None:
        """Prepare the fixed attribute sets of ``retry.name`` = ``name``."""
        self.name = name
        self._name_only = {"retry.name": name}
        self._ok = ((name, SUCCESS_WITHOUT_RETRY, ""), (name, SUCCESS_WITH_RETRY, ""))
        # The observable counter must exist for its callback to run at collection time.
        _calls.get()

    def succeeded(self, attempts: int) -> None:
        """One call returned after ``attempts`` attempts."""
        _counts.add(self._ok[attempts > 1])
        _attempts.get().record(attempts, self._name_only)

    def failed(self, attempts: int, error: str) -> None:
        """One call raised ``error`` (a class name) after ``attempts`` attempts."""
        _calls.get()
        outcome = FAILED_WITH_RETRY if attempts > 1 else FAILED_WITHOUT_RETRY
        _counts.add((self.name, outcome, error))
        _attempts.get().record(attempts, self._name_only)

    def attempt_failed(self, number: int, exc: BaseException | None, sleep: float | None) -> None:
        """Span event for attempt ``number``; ``sleep`` is ``None`` when no retry follows."""
        try:
            span = trace.get_current_span()
            if not span.is_recording():
                return
            attributes: dict[str, Any] = {
                "retry.name": self.name,
                "retry.attempt": number,
                "retry.will_retry": sleep is not None,
                "retry.sleep": float(sleep or 0.0),
            }
            if exc is not None:
                attributes["exception.type"] = type(exc).__qualname__
            span.add_event(ATTEMPT_EVENT, attributes)
        except Exception as hook_exc:
            internal_error(f"retry({self.name})", hook_exc)
