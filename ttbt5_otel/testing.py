"""Pytest plugin: capture spans, metric points and log records in memory.

Request the ``capture_telemetry`` fixture in a test::

    def test_charge(capture_telemetry):
        charge("o-1")
        span = capture_telemetry.span("charge")
        assert capture_telemetry.counter_value("ttbt5.errors") == 0

The first use installs in-memory OpenTelemetry providers for the rest of the session (the
OpenTelemetry API allows one global provider per process); every test then starts from empty
buffers, with span and trace ids counting up from 1 so they are predictable. Metric values
are *changes during the test*: sums are added up over the test, gauges report the last value.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics._internal.instrument import Gauge  # the reader keys on it
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from ttbt5_otel._app.context import reset_application_context
from ttbt5_otel._core.otel import bump_generation
from ttbt5_otel._sdk.config import TelemetryConfig
from ttbt5_otel._sdk.providers import Providers, build_providers
from ttbt5_otel._sdk.scrubbing import scrub_metrics
from ttbt5_otel._signals.log_bridge import install_bridge, remove_bridge

__all__ = [
    "MetricPoint",
    "TelemetryCapture",
    "capture_telemetry",
    "reset_application_context",
]

_DELTA: dict[type, AggregationTemporality] = dict.fromkeys(
    (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
        Gauge,
    ),
    AggregationTemporality.DELTA,
)


class SequentialIdGenerator(IdGenerator):
    """Trace and span ids 1, 2, 3, ... so assertions and snapshots are stable."""

    def __init__(self) -> None:
        """Start counting at 1."""
        self._lock = threading.Lock()
        self._span = 0
        self._trace = 0

    def reset(self) -> None:
        """Count from 1 again."""
        with self._lock:
            self._span = 0
            self._trace = 0

    def generate_span_id(self) -> int:
        """Next span id."""
        with self._lock:
            self._span += 1
            return self._span

    def generate_trace_id(self) -> int:
        """Next trace id."""
        with self._lock:
            self._trace += 1
            return self._trace


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One captured data point of one collection, flattened."""

    name: str
    unit: str
    attributes: Mapping[str, Any]
    value: float | None
    """Sum or gauge value; ``None`` for histograms."""
    count: int = 0
    """Histogram count."""
    sum: float = 0.0
    """Histogram sum."""
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    is_sum: bool = False


def _matches(point: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    return not wanted or all(point.get(k) == v for k, v in wanted.items())


class TelemetryCapture:
    """In-memory view of every span, metric point and log record of the current test."""

    def __init__(
        self,
        providers: Providers,
        spans: InMemorySpanExporter,
        reader: InMemoryMetricReader,
        logs: InMemoryLogRecordExporter,
        ids: SequentialIdGenerator,
    ) -> None:
        """Wrap the session's in-memory exporters."""
        self.providers = providers
        self._spans = spans
        self._reader = reader
        self._logs = logs
        self._ids = ids
        self._points: list[MetricPoint] = []

    # -- lifecycle -------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget everything captured so far (metrics: start counting changes from now)."""
        self._reader.get_metrics_data()
        self._points.clear()
        self._spans.clear()
        self._logs.clear()
        self._ids.reset()

    # -- spans -------------------------------------------------------------------------------
    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self._spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; fails listing the names that exist."""
        found = [s for s in self.spans if s.name == name]
        if len(found) != 1:
            names = sorted({s.name for s in self.spans})
            msg = f"expected one span {name!r}, found {len(found)}; spans: {names}"
            raise AssertionError(msg)
        return found[0]

    def span_names(self) -> list[str]:
        """Names of the finished spans, in the order they ended."""
        return [s.name for s in self.spans]

    # -- logs --------------------------------------------------------------------------------
    @property
    def logs(self) -> list[ReadableLogRecord]:
        """Emitted OTel log records, in order."""
        return list(self._logs.get_finished_logs())

    def log_bodies(self) -> list[str]:
        """Bodies of the captured log records."""
        return [str(r.log_record.body) for r in self.logs]

    # -- metrics -------------------------------------------------------------------------
    def collect(self) -> list[MetricPoint]:
        """Collect now and return every point captured during this test so far."""
        data = self._reader.get_metrics_data()
        if data is not None:
            # What an exporter would send: the same export-side scrubbing.
            data = scrub_metrics(data)
            for resource_metrics in data.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        is_sum = type(metric.data).__name__ == "Sum"
                        for point in metric.data.data_points:
                            self._points.append(
                                self._point(metric.name, metric.unit, point, is_sum)
                            )
        return list(self._points)

    @staticmethod
    def _point(name: str, unit: str | None, point: Any, is_sum: bool) -> MetricPoint:
        attributes = dict(point.attributes or {})
        if isinstance(point, HistogramDataPoint):
            return MetricPoint(
                name,
                unit or "",
                attributes,
                None,
                point.count,
                point.sum,
                tuple(point.bucket_counts),
                tuple(point.explicit_bounds),
            )
        assert isinstance(point, NumberDataPoint)
        return MetricPoint(name, unit or "", attributes, point.value, is_sum=is_sum)

    def points(self, name: str, attributes: Mapping[str, Any] | None = None) -> list[MetricPoint]:
        """Points of metric ``name`` whose attributes include ``attributes``."""
        return [p for p in self.collect() if p.name == name and _matches(p.attributes, attributes)]

    def metric_names(self) -> set[str]:
        """Names of every metric with a point captured in this test."""
        return {p.name for p in self.collect()}

    def counter_value(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Total added to counter ``name`` during the test, over matching attribute sets."""
        return sum(p.value or 0 for p in self.points(name, attributes))

    def gauge_value(self, name: str, attributes: Mapping[str, Any] | None = None) -> float | None:
        """Last observed value of gauge ``name`` for matching attributes."""
        found = self.points(name, attributes)
        return found[-1].value if found else None

    def histogram_count(self, name: str, attributes: Mapping[str, Any] | None = None) -> int:
        """Values recorded into histogram ``name`` during the test."""
        return sum(p.count for p in self.points(name, attributes))

    def histogram_sum(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of values recorded into histogram ``name`` during the test."""
        return sum(p.sum for p in self.points(name, attributes))

    def attribute_sets(self, name: str) -> list[dict[str, Any]]:
        """Distinct attribute sets seen for metric ``name``."""
        seen: list[dict[str, Any]] = []
        for point in self.points(name):
            if dict(point.attributes) not in seen:
                seen.append(dict(point.attributes))
        return seen


class _Session:
    capture: TelemetryCapture | None = None
    lock = threading.Lock()


def _install() -> TelemetryCapture:
    with _Session.lock:
        if _Session.capture is not None:
            return _Session.capture
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            msg = (
                "capture_telemetry needs to install its own OpenTelemetry providers, but this "
                "process already has some (was ttbt5_otel.init() called at import time?)"
            )
            raise RuntimeError(msg)  # noqa: TRY004 - a state problem, not a type problem
        spans = InMemorySpanExporter()
        logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        reader = InMemoryMetricReader(preferred_temporality=_DELTA)
        ids = SequentialIdGenerator()
        providers = build_providers(
            TelemetryConfig(service_name="ttbt5-otel-tests", exporter="none"),
            spans,
            [reader],
            logs,
            synchronous=True,
            id_generator=ids,
        )
        trace.set_tracer_provider(providers.tracer_provider)
        metrics.set_meter_provider(providers.meter_provider)
        _logs.set_logger_provider(providers.logger_provider)
        bump_generation()
        _Session.capture = TelemetryCapture(providers, spans, reader, logs, ids)
        return _Session.capture


@pytest.fixture
def capture_telemetry() -> Iterator[TelemetryCapture]:
    """Spans, metric points and log records recorded during the test, in memory."""
    capture = _install()
    capture.clear()
    root = logging.getLogger()
    previous_level = root.level
    # Tests assert on every record, whatever the level the code under test logs at; set
    # first, so the bridge finds it the app's own level and lets handlers see every record.
    root.setLevel(logging.DEBUG)
    bridge = install_bridge("DEBUG")
    try:
        yield capture
    finally:
        remove_bridge(bridge)
        root.setLevel(previous_level)
