"""A metric exporter that forwards to another one: the base of the SDK's exporter wrappers.

Wrappers (swapping after fork, counting, scrubbing) must keep the wrapped exporter's
temporality and aggregation preferences, which the metric reader reads from the exporter it
is given, and pass flushes and shutdowns through.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData


class ForwardingMetricExporter(MetricExporter):
    """Forwards every call to ``inner``; subclasses change ``export``."""

    def __init__(self, inner: MetricExporter) -> None:
        """Forward to ``inner``, keeping its temporality and aggregation preferences."""
        super().__init__(
            preferred_temporality=inner._preferred_temporality,  # noqa: SLF001 - the reader reads these
            preferred_aggregation=inner._preferred_aggregation,  # noqa: SLF001
        )
        self.inner = inner

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        """Export through ``inner``."""
        return self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush ``inner``."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        """Shut ``inner`` down."""
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
