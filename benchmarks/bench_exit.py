"""How long ``shutdown()`` and interpreter exit take when the collector misbehaves.

Each case runs an app in its own process: it queues spans and log records against an endpoint
that is down (connection refused) or frozen (accepts connections, never answers), then calls
``shutdown()`` or just exits. The promise is ``shutdown_timeout`` + 0.5 s, whatever the
collector does.

    python benchmarks/bench_exit.py [--shutdown-timeout 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

_APP = """
import json, logging, sys, time
import ttbt5_otel
from ttbt5_otel import traced
ttbt5_otel.init(service_name="exit-bench", endpoint=sys.argv[1], protocol=sys.argv[2],
                shutdown_timeout=float(sys.argv[3]), instrument=("none",), max_queue_size=4096)
log = logging.getLogger("exit-bench")

@traced
def work(i):
    log.warning("item %d", i)

for i in range(int(sys.argv[4])):
    work(i)
started = time.monotonic()
if sys.argv[5] == "shutdown":
    ttbt5_otel.shutdown()
    print(json.dumps({"shutdown_s": time.monotonic() - started}), flush=True)
"""


def _run(
    endpoint: str, protocol: str, budget: float, items: int, how: str, exporter: str = "otlp"
) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TTBT5_"))}
    env["TTBT5_EXPORTER"] = exporter
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", _APP, endpoint, protocol, str(budget), str(items), how],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shutdown-timeout", type=float, default=5.0)
    args = parser.parse_args()
    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(1024)  # accepts into the backlog, never reads: a frozen collector
    down = socket.socket()
    down.bind(("127.0.0.1", 0))  # bound, not listening: connection refused
    rows = []
    # The same app exporting nothing: interpreter start-up, imports and the work itself.
    baseline = _run("http://127.0.0.1:9", "grpc", args.shutdown_timeout, 3000, "exit", "none")
    for name, port in (("down", down.getsockname()[1]), ("frozen", frozen.getsockname()[1])):
        for protocol, scheme_port in (("grpc", port), ("http/protobuf", port)):
            for items in (100, 3000):
                for how in ("shutdown", "exit"):
                    endpoint = f"http://127.0.0.1:{scheme_port}"
                    elapsed = _run(endpoint, protocol, args.shutdown_timeout, items, how)
                    rows.append((name, protocol, items, how, elapsed - baseline))
    print(f"shutdown_timeout {args.shutdown_timeout:g} s; seconds beyond the same app "
          "exporting nothing")  # fmt: skip
    print(f"{'collector':<8} {'protocol':<14} {'items':>5} {'ending':<9} {'extra s':>8}")
    worst = 0.0
    for name, protocol, items, how, extra in rows:
        worst = max(worst, extra)
        print(f"{name:<8} {protocol:<14} {items:>5} {how:<9} {extra:>8.1f}")
    print(json.dumps({"worst_extra_s": round(worst, 2)}))
    return 0 if worst <= args.shutdown_timeout + 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
