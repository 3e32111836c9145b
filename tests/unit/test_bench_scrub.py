"""The scrubbing benchmark runs, measures what it says, and finds the target met."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scrub.py"


def test_scrub_benchmark_prints_every_row_and_its_verdict():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--spans", "300", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    for row in ("spans, values repeat", "spans, every value new", "log records, every body new"):
        assert any(line.startswith(row) for line in lines), result.stdout
    assert "of a raw span's CPU per span (target 30%)" in result.stdout
