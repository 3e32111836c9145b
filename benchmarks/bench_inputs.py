"""Bad settings against ``init()`` (and a damaged disk cache): how fast and how big the refusal is.

Each case starts a fresh process with one bad input and reports the error it got, the wall
time and the process's peak resident memory. The promise: a ``ConfigError`` (or an error
naming the cache and path) in under a second, with bounded memory, and no secret echoed.

    python benchmarks/bench_inputs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_INIT = "import ttbt5_otel; ttbt5_otel.init(instrument=('none',))"
_DISK = "import sys; from ttbt5_otel import DiskCache; DiskCache(sys.argv[1], name='orders')"
SECRET = "pw-never-printed"


def cases(work: Path) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """Name: (code, environment, arguments)."""
    zero = work / "zero.json"
    zero.symlink_to("/dev/zero")
    fifo = work / "fifo.json"
    os.mkfifo(fifo)
    broken = work / "broken.yaml"
    broken.write_text("telemetry:\n  service_name: [unclosed\n")
    damaged = work / "cache"
    damaged.mkdir()
    (damaged / "cache.db").write_bytes(b"not a database" * 100)
    return {
        "header name with a space": (_INIT, {"TTBT5_OTLP_HEADERS": "bad key=v"}, []),
        "header value with a newline": (_INIT, {"TTBT5_OTLP_HEADERS": "k=v\nx"}, []),
        "password in the endpoint": (
            _INIT,
            {"TTBT5_OTLP_ENDPOINT": f"http://admin:{SECRET}@127.0.0.1:4317"},
            [],
        ),
        "config file -> /dev/zero": (_INIT, {"TTBT5_CONFIG_FILE": str(zero)}, []),
        "config file is a FIFO": (_INIT, {"TTBT5_CONFIG_FILE": str(fifo)}, []),
        "corrupt YAML config": (_INIT, {"TTBT5_CONFIG_FILE": str(broken)}, []),
        "missing certificate file": (
            _INIT,
            {"TTBT5_OTLP_CERTIFICATE": str(work / "missing.pem"), "TTBT5_OTLP_INSECURE": "false"},
            [],
        ),
        "TTBT5_OTLP_TIMEOUT=1e9": (_INIT, {"TTBT5_OTLP_TIMEOUT": "1e9"}, []),
        "damaged disk cache": (_DISK, {}, [str(damaged)]),
    }


def run(code: str, env: dict[str, str], args: list[str]) -> tuple[str, float, float, str]:
    """Error line, seconds, peak RSS in MB, and all output."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TTBT5_", "OTEL_"))}
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env={**base, **env},
            stdout=out,
            stderr=out,
            text=True,
        )
        try:
            _, _, usage = os.wait4(process.pid, 0)
        finally:
            process.returncode = 0  # reaped by wait4
        took = time.monotonic() - started
        out.seek(0)
        output = out.read()
    errors = [line for line in output.splitlines() if "Error: " in line]
    return (errors[-1] if errors else "(no error)"), took, usage.ru_maxrss / 1024, output


def main() -> int:
    """Print one row per bad input."""
    print("| input | error | time | peak RSS | secret printed |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name, (code, env, args) in cases(Path(work)).items():
            error, took, rss_mb, output = run(code, env, args)
            shown = error if len(error) <= 110 else error[:107] + "..."
            leaked = "yes" if SECRET in output else "no"
            print(f"| {name} | `{shown}` | {took:.2f} s | {rss_mb:.0f} MB | {leaked} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
