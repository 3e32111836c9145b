"""A service in trouble, for the alert drills: slow requests, a failing health check, retries
that run out, and log records. Runs for ``SECONDS`` (argv[1]) and exits.

Everything goes through the public API and OTLP to the collector given by the environment.
"""

import asyncio
import logging
import sys
import time

import ttbt5_otel
from ttbt5_otel import get_application_context, retry, traced

SECONDS = float(sys.argv[1])
log = logging.getLogger("drills")


@traced(name="GET /slow")
async def slow_request() -> None:
    await asyncio.sleep(1.3)


@retry(name="inventory", attempts=2, wait=None)
def reserve() -> None:
    raise ConnectionError("inventory service refused the connection")


async def main() -> None:
    context = get_application_context()
    context.add_health_check("database", lambda: False)
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        await asyncio.gather(*(slow_request() for _ in range(3)))
        try:
            reserve()
        except ConnectionError:
            log.warning("reservation failed after its retries")
        await context.health.run_once()


ttbt5_otel.init(service_name="drills", metric_export_interval=1.0, schedule_delay=0.2)
asyncio.run(main())
ttbt5_otel.shutdown()
