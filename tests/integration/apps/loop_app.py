"""The shop app's calls in a loop for a given time; run by the local stack tests.

Usage: loop_app.py SECONDS [PAUSE [SERVICE_NAME]]. Prints a progress line each second
(``{"progress": calls so far, "time": unix time}``) and, at the end,
``{"calls": N, "max_call_seconds": S}`` as its last line.
"""

import asyncio
import json
import sys
import time

import ttbt5_otel
from ttbt5_otel import (
    ApplicationError,
    ErrorSeverity,
    handle_errors,
    monitor_performance,
    span,
    traced,
)

SERVICE = sys.argv[3] if len(sys.argv) > 3 else "shop"
ttbt5_otel.init(service_name=SERVICE, service_version="1.2.3", environment="test")
log = ttbt5_otel.get_logger("shop")


@traced
@monitor_performance
async def charge(order_id: str) -> str:
    log.info("charging", order_id=order_id)
    await asyncio.sleep(0.001)
    return f"charged-{order_id}"


@handle_errors(fallback="declined")
def authorize(amount: float) -> str:
    if amount > 100:
        raise ApplicationError("limit exceeded", severity=ErrorSeverity.HIGH)
    return "ok"


async def main(seconds: float, pause: float) -> None:
    started = time.monotonic()
    next_progress = started + 1
    latencies: list[float] = []
    while time.monotonic() - started < seconds:
        start = time.perf_counter()
        with span("checkout", cart_size=3):
            await charge(f"o-{len(latencies)}")
            authorize(150 if len(latencies) % 2 else 10)
        latencies.append(time.perf_counter() - start)
        if time.monotonic() >= next_progress:
            next_progress += 1
            print(json.dumps({"progress": len(latencies), "time": time.time()}), flush=True)
        await asyncio.sleep(pause)
    print(json.dumps({"calls": len(latencies), "max_call_seconds": max(latencies)}), flush=True)


asyncio.run(main(float(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.02))
