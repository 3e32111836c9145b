"""Quick start: one init() call, then spans, metrics, logs and error events.

Runs without a collector: TTBT5_EXPORTER=console (the default here) prints every span and
log record. With the local stack up, run it with TTBT5_EXPORTER=otlp to send them there.
"""

import asyncio
import os

import ttbt5_otel
from ttbt5_otel import (
    ApplicationError,
    ErrorSeverity,
    Validator,
    get_logger,
    handle_errors,
    monitor_performance,
    span,
    traced,
)

ttbt5_otel.init(
    service_name="checkout",
    exporter=os.environ.get("TTBT5_EXPORTER", "console"),
    runtime_metrics=False,
)
log = get_logger("checkout")


@traced
@monitor_performance
async def charge(order_id: str, amount: float) -> str:
    Validator.validate_range(amount, min_value=0.01, max_value=1000, field="amount")
    log.info("charging card", order_id=order_id, amount=amount)
    await asyncio.sleep(0.01)
    if amount > 500:
        raise ApplicationError(
            "amount needs manual review",
            severity=ErrorSeverity.MEDIUM,
            recovery_suggestions=["Ask a supervisor to approve the charge"],
        )
    return f"receipt-{order_id}"


@traced
@handle_errors(fallback="queued-for-review")
async def checkout(order_id: str, amount: float) -> str:
    with span("load-cart", cart_size=3):
        await asyncio.sleep(0.005)
    return await charge(order_id, amount)


async def main() -> None:
    with log.contextualize(request_id="req-42"):
        print(await checkout("o-1", 25.0))
        print(await checkout("o-2", 750.0))


asyncio.run(main())
ttbt5_otel.shutdown()
