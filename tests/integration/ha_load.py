"""A steady, counted load for the HA topology tests (run as a separate process).

    python -m tests.integration.ha_load ENDPOINT SERVICE RATE SECONDS OUT

Sends one root span per call, RATE calls a second for SECONDS, to the agent at ENDPOINT
(OTLP gRPC), then shuts down (flushing everything) and writes OUT: one JSON line per span,
``[trace id, start time in unix seconds]``, the ground truth the test compares the stores
and the span metrics with.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from opentelemetry import trace

import ttbt5_otel


def main(endpoint: str, service: str, rate: float, seconds: float, out: Path) -> None:
    ttbt5_otel.init(service_name=service, endpoint=endpoint, protocol="grpc")
    sent: list[tuple[str, float]] = []
    started = time.monotonic()
    period = 1.0 / rate
    while (elapsed := time.monotonic() - started) < seconds:
        with ttbt5_otel.span("ha-load", seq=len(sent)):
            context = trace.get_current_span().get_span_context()
            sent.append((format(context.trace_id, "032x"), time.time()))
        # Paced against the start, so a slow moment is caught up instead of lost.
        pause = started + len(sent) * period - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    ttbt5_otel.shutdown()
    out.write_text("".join(json.dumps(item) + "\n" for item in sent), encoding="utf-8")
    print(f"sent {len(sent)} spans in {elapsed:.1f}s", flush=True)


if __name__ == "__main__":
    endpoint, service, rate, seconds, out = sys.argv[1:6]
    main(endpoint, service, float(rate), float(seconds), Path(out))
