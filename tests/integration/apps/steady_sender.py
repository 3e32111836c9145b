"""Sends one span and one log record per operation at a steady rate, then reports its books.

    python steady_sender.py OPS_PER_SECOND SECONDS

Each span is named ``op`` and each log body is ``op <pid> <n>``, so a receiver can count unique
items. The last stdout line is JSON: what was sent and the delivery ledger after shutdown.
"""

import json
import logging
import os
import sys
import time

import ttbt5_otel
from ttbt5_otel._sdk.setup import current_telemetry

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
ttbt5_otel.init(service_name="steady-sender", instrument=("none",), log_level="INFO")
log = logging.getLogger("steady")
log.setLevel(logging.INFO)
sent = 0
started = time.monotonic()
while (elapsed := time.monotonic() - started) < seconds:
    with ttbt5_otel.span("op", seq=sent):
        log.info("op %d %d", os.getpid(), sent)
    sent += 1
    ahead = sent / rate - elapsed
    if ahead > 0:
        time.sleep(ahead)
telemetry = current_telemetry()
assert telemetry is not None
assert telemetry.providers is not None
exit_started = time.monotonic()
ttbt5_otel.shutdown()
books = telemetry.providers.ledger.snapshot()
print(json.dumps({"sent": sent, "exit_s": time.monotonic() - exit_started, **books}))
