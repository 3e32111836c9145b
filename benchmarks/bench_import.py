"""Import cost of ttbt5_otel against importing the OpenTelemetry API and SDK directly.

Each case runs in a fresh interpreter (nothing cached in ``sys.modules``), cases
interleaved, and the median of the rounds is printed in milliseconds with its ratio to the
raw import it corresponds to:

* ``import ttbt5_otel``: the decorators, metrics, logs and errors; OpenTelemetry API only;
* ``ttbt5_otel.init`` reached: the same plus the SDK and exporters ``init()`` needs;
* ``ttbt5_otel.HierarchicalCache`` and ``ttbt5_otel.application_lifecycle`` reached.

    python benchmarks/bench_import.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

RAW_API = "import opentelemetry.trace, opentelemetry.metrics, opentelemetry._logs"
RAW_SDK = (
    RAW_API + "; import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, "
    "opentelemetry.sdk._logs, opentelemetry.sdk.resources"
)
CASES = {
    "raw OTel API": RAW_API,
    "raw OTel API + SDK": RAW_SDK,
    "import ttbt5_otel": "import ttbt5_otel",
    "ttbt5_otel.init reached": "import ttbt5_otel; ttbt5_otel.init",
    "ttbt5_otel.HierarchicalCache reached": "import ttbt5_otel; ttbt5_otel.HierarchicalCache",
    "ttbt5_otel.application_lifecycle reached": (
        "import ttbt5_otel; ttbt5_otel.application_lifecycle"
    ),
}
BASELINE = {
    "import ttbt5_otel": "raw OTel API",
    "ttbt5_otel.init reached": "raw OTel API + SDK",
}
TIMER = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"


def _once(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name, code in CASES.items():
            samples[name].append(_once(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{'case':<42} {'median ms':>10} {'ratio':>8}")
    for name, median in medians.items():
        base = BASELINE.get(name)
        ratio = f"{median / medians[base]:.2f}x" if base else ""
        print(f"{name:<42} {median:>10.1f} {ratio:>8}")


if __name__ == "__main__":
    main()
