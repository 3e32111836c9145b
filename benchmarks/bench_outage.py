"""What a collector outage costs, item by item: delivered, counted as lost, lost uncounted.

Runs the bundled collector (with its backend overlays and persistent queues) on loopback, real
OTLP receivers as the trace and log backends, and an app sending one span and one log record
per operation at a steady rate. Each case breaks the collector in one way while the app runs,
then compares what the backends hold with the app's own books:

- freeze: SIGSTOP for 30 s at 200 operations/s;
- kill: SIGKILL, restarted 20 s later, at 200 operations/s;
- down: no collector at all for a 20 s flood (as fast as the app can go);
- spool: the disk spool on, SIGKILL for 60 s at 500 operations/s, then the app restarted
  once more (what it had not resent before exiting, the next start sends).

Then the spool's own cost: microseconds per span to encode and store a batch, against the
OTLP encoding alone. Needs ``bash collector/build.sh``; loopback only; about five minutes.

    python benchmarks/bench_outage.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.delivery_rig import (
    Collector,
    books,
    lost_and_counted,
    new_collector,
    start_sender,
    unique_logs,
    unique_spans,
)
from tests.otlp_receiver import GrpcReceiver, HttpReceiver

FLOOD = 100_000  # operations per second: more than the app can do, so it goes flat out


def _spool_peak(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.glob("*.otlp")) if directory.exists() else 0


def run_case(fault: str, rate: int, outage_s: float, work: Path) -> dict[str, Any]:
    """One outage under load; the app's books and what the backends hold."""
    collector = new_collector(work)
    spool = work / "spool"
    settings = (
        {"TTBT5_SPOOL_DIR": str(spool), "TTBT5_MAX_QUEUE_SIZE": "2048"} if fault == "spool" else {}
    )
    lead, tail = 3.0, 5.0
    peak = 0
    with (
        GrpcReceiver(collector.ports["backend_traces"]) as traces,
        HttpReceiver(collector.ports["backend_logs"]) as logs,
    ):
        if fault != "down":
            collector.start()
        seconds = outage_s if fault == "down" else lead + outage_s + tail
        sender = start_sender(collector, FLOOD if fault == "down" else rate, seconds, **settings)
        try:
            if fault != "down":
                time.sleep(lead)
                _break(collector, fault)
                deadline = time.monotonic() + outage_s
                while time.monotonic() < deadline:
                    peak = max(peak, _spool_peak(spool))
                    time.sleep(0.5)
                _mend(collector, fault)
            result = books(sender)
            if fault == "spool":
                # What the run had not resent before it exited, the next start of the app
                # sends: a short second run against the same spool.
                _add(result, books(start_sender(collector, 10, 2, **settings)))
            delivered = _settled(traces, logs, result)
        finally:
            if collector.process is not None and collector.process.poll() is None:
                collector.signal(signal.SIGCONT)
                collector.kill()
    rows = {}
    for name in ("spans", "logs"):
        lost = lost_and_counted(result[name])
        rows[name] = {
            "sent": result["sent"],
            "delivered": delivered[name],
            "counted_lost": lost,
            "uncounted": max(0, result["sent"] - delivered[name] - lost),
            # Counted as lost, yet delivered (a frozen collector taking a request the app had
            # given up on) or counted twice (the SDK's queue-full check races its exporter).
            "over": max(0, delivered[name] + lost - result["sent"]),
        }
    return {"rows": rows, "spool_peak_bytes": peak, "exit_s": result["exit_s"]}


def _add(result: dict[str, Any], more: dict[str, Any]) -> None:
    result["sent"] += more["sent"]
    for name in ("spans", "logs"):
        for key, value in more[name].items():
            result[name][key] = result[name].get(key, 0) + value


def _settled(traces: GrpcReceiver, logs: HttpReceiver, result: dict[str, Any]) -> dict[str, int]:
    """What the backends hold once the collector has passed on what it accepted."""
    settle = time.monotonic() + 60
    while time.monotonic() < settle:
        delivered = {"spans": unique_spans(traces), "logs": unique_logs(logs)}
        if all(delivered[n] >= result[n]["exported"] for n in delivered):
            break
        time.sleep(0.5)
    time.sleep(2)
    return {"spans": unique_spans(traces), "logs": unique_logs(logs)}


def _break(collector: Collector, fault: str) -> None:
    if fault == "freeze":
        collector.signal(signal.SIGSTOP)
    else:
        collector.kill()


def _mend(collector: Collector, fault: str) -> None:
    if fault == "freeze":
        collector.signal(signal.SIGCONT)
    else:
        collector.start()


def spool_cost(batches: int = 40, batch_size: int = 512) -> dict[str, float]:
    """Microseconds per span: OTLP encoding alone, and encoding plus writing to the spool."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    from ttbt5_otel._sdk.accounting import Ledger  # noqa: PLC0415
    from ttbt5_otel._sdk.spool import Spool  # noqa: PLC0415
    from ttbt5_otel._sdk.spool_files import SpoolDirectory  # noqa: PLC0415

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(batch_size):
        with tracer.start_as_current_span("op", attributes={"seq": i, "route": "/orders/{id}"}):
            pass
    spans = memory.get_finished_spans()
    started = time.perf_counter()
    for _ in range(batches):
        encode_spans(spans).SerializeToString()
    encode_us = (time.perf_counter() - started) / (batches * batch_size) * 1e6
    with tempfile.TemporaryDirectory() as work:
        ledger = Ledger()
        spool = Spool(SpoolDirectory(work, 1 << 30), lambda *_: False, {"traces": ledger.spans})
        try:
            started = time.perf_counter()
            for _ in range(batches):
                spool.store("traces", encode_spans(spans).SerializeToString(), len(spans))
            store_us = (time.perf_counter() - started) / (batches * batch_size) * 1e6
        finally:
            spool.stop()
    return {"encode_us_per_span": encode_us, "encode_and_store_us_per_span": store_us}


CASES = {
    "freeze": ("collector frozen (SIGSTOP) 30 s, 200 ops/s", 200, 30.0),
    "kill": ("collector killed, restarted after 20 s, 200 ops/s", 200, 20.0),
    "down": ("collector down, 20 s flood", FLOOD, 20.0),
    "spool": ("spool on, collector killed 60 s, 500 ops/s", 500, 60.0),
}


def main() -> int:
    """Run every case and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="outages of 6 s instead")
    args = parser.parse_args()
    print("| case | signal | sent | delivered | counted as lost | over-counted "
          "| lost uncounted |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    spool_peak = 0
    for fault, (label, rate, outage_s) in CASES.items():
        with tempfile.TemporaryDirectory() as work:
            found = run_case(fault, rate, 6.0 if args.quick else outage_s, Path(work))
        for name, row in found["rows"].items():
            print(f"| {label} | {name} | {row['sent']} | {row['delivered']} | "
                  f"{row['counted_lost']} | {row['over']} | {row['uncounted']} |")  # fmt: skip
        if fault == "spool":
            spool_peak = found["spool_peak_bytes"]
    cost = spool_cost()
    print(f"\nspool peak during the outage: {spool_peak / 1e6:.1f} MB (cap 256 MB)")
    print(json.dumps({k: round(v, 2) for k, v in cost.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
