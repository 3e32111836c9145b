"""Per-call overhead of a closed ``CircuitBreaker`` and a first-try ``retry``.

Run: ``.venv/bin/python benchmarks/bench_resilience.py``. In-memory SDK providers are
installed first, so metric and span calls do their real work; nothing is exported. Each
figure is the best of several ``timeit`` repeats, in ns per call, next to the bare call and,
for ``retry``, next to tenacity's own decorator doing the same retrying without telemetry.
"""

from __future__ import annotations

import asyncio
import sys
import timeit
from collections.abc import Callable
from typing import Any

import tenacity
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ttbt5_otel._core.otel import bump_generation
from ttbt5_otel._resilience.breaker import CircuitBreaker
from ttbt5_otel._resilience.retry import retry
from ttbt5_otel._sdk.config import TelemetryConfig
from ttbt5_otel._sdk.providers import build_providers

NUMBER = 20_000
REPEAT = 5


def install_providers() -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    providers = build_providers(
        TelemetryConfig(service_name="bench", exporter="none"),
        InMemorySpanExporter(),
        [reader],
        InMemoryLogRecordExporter(),  # type: ignore[no-untyped-call]
        synchronous=True,
    )
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    _logs.set_logger_provider(providers.logger_provider)
    bump_generation()
    return reader


def ns_per_call(fn: Callable[[], Any], number: int = NUMBER) -> float:
    fn()  # warm caches and lazily created instruments
    best = min(timeit.repeat(fn, number=number, repeat=REPEAT))
    return best / number * 1e9


def main() -> None:
    reader = install_providers()

    def work(x: int = 1) -> int:
        return x + 1

    async def awork(x: int = 1) -> int:
        return x + 1

    breaker = CircuitBreaker("bench-breaker")
    guarded = breaker(work)
    aguarded = breaker(awork)
    retried = retry(name="bench-retry", sleep=lambda _s: None)(work)
    plain_tenacity = tenacity.retry(stop=tenacity.stop_after_attempt(3), reraise=True)(work)

    loop = asyncio.new_event_loop()

    def run_async(coro_fn: Callable[[], Any]) -> Callable[[], Any]:
        async def many() -> None:
            for _ in range(1000):
                await coro_fn()

        return lambda: loop.run_until_complete(many())

    bare = ns_per_call(work)
    rows = [
        ("bare call", bare, bare),
        ("closed breaker (sync)", ns_per_call(guarded), bare),
        ("breaker.call(fn)", ns_per_call(lambda: breaker.call(work)), bare),
        ("with breaker:", ns_per_call(lambda: _with(breaker, work)), bare),
        ("tenacity.retry, first try ok", ns_per_call(plain_tenacity, 5_000), bare),
        ("ttbt5 retry, first try ok", ns_per_call(retried, 5_000), bare),
    ]
    abare = ns_per_call(run_async(awork), 20) / 1000
    rows += [
        ("bare await", abare, abare),
        ("closed breaker (async)", ns_per_call(run_async(aguarded), 20) / 1000, abare),
    ]
    loop.close()

    print(f"python {sys.version.split()[0]}, best of {REPEAT}")
    print(f"{'case':34} {'ns/call':>10} {'ratio':>8} {'overhead ns':>12}")
    for label, ns, base in rows:
        print(f"{label:34} {ns:10.0f} {ns / base:7.2f}x {ns - base:12.0f}")
    tenacity_ns = rows[4][1]
    print(f"ttbt5 retry / tenacity.retry: {rows[5][1] / tenacity_ns:.2f}x")
    reader.get_metrics_data()  # the observable callbacks run once, as at an export


def _with(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    with breaker:
        return fn()


if __name__ == "__main__":
    main()
