"""A small app using only the README's API; run by the OTLP integration tests."""

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

ttbt5_otel.init(service_name="shop", service_version="1.2.3", environment="test")
log = ttbt5_otel.get_logger("shop")


@traced
@monitor_performance
async def charge(order_id: str) -> str:
    log.info("charging", order_id=order_id, password="hunter2")
    return f"charged-{order_id}"


@handle_errors(fallback="declined")
def authorize(amount: float) -> str:
    if amount > 100:
        raise ApplicationError("limit exceeded", severity=ErrorSeverity.HIGH)
    return "ok"


async def main() -> None:
    latencies = []
    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        start = time.perf_counter()
        with span("checkout", cart_size=3):
            await charge(f"o-{i}")
            authorize(150 if i % 2 else 10)
        latencies.append(time.perf_counter() - start)
    print(json.dumps({"max_call_seconds": max(latencies), "calls": len(latencies)}))


asyncio.run(main())
