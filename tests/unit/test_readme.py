"""The README's quick start and the example app run as written."""

import re
import subprocess
import sys
from pathlib import Path

from tests.loopback import clean_env
from tests.paths import REPO as ROOT


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def run(code_or_path: str | Path) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    args = [str(code_or_path)] if isinstance(code_or_path, Path) else ["-c", code_or_path]
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_web_app_quick_start_runs_with_spans_and_logs_from_one_line():
    [web_app] = [b for b in python_blocks((ROOT / "README.md").read_text()) if "Flask" in b]
    proc = run(web_app)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "{'quantity': 12, 'sku': 'apple'}"
    [server] = [line for line in proc.stderr.splitlines() if line.startswith("[span] GET")]
    assert "http.route='/stock/<sku>'" in server
    assert "http.response.status_code=200" in server
    trace_id = server.split("trace=")[1].split()[0]
    # The app's own console line, as without init(), and the exported record with the trace.
    assert "stock checked for apple\n" in proc.stderr
    [record] = [line for line in proc.stderr.splitlines() if line.startswith("[log] WARN")]
    assert "stock checked for apple" in record
    assert f"trace={trace_id}" in record


def test_quick_start_runs_and_prints_every_signal():
    [quick_start] = [b for b in python_blocks((ROOT / "README.md").read_text()) if "load-cart" in b]
    proc = run(quick_start)
    assert proc.returncode == 0, proc.stderr
    assert "[span] charge" in proc.stderr
    assert "[span] load-cart" in proc.stderr
    assert "[log] INFO charging" in proc.stderr
    assert "[log] ERROR ValueError: invalid literal" in proc.stderr
    assert "[metric] ttbt5.errors{error.type=ValueError" in proc.stderr
    assert "[metric] ttbt5.operation.duration{code.function=charge" in proc.stderr


def test_resilience_example_runs():
    [example] = [
        b for b in python_blocks((ROOT / "README.md").read_text()) if "CircuitBreaker" in b
    ]
    proc = run(example)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "charged-flaky",
        "gave up: CircuitOpenError",
        "breaker is open",
    ]
    assert "retry.outcome=success_with_retry} 1" in proc.stderr
    assert "circuit_breaker.calls{circuit_breaker.name=payments,result=rejected} 1" in proc.stderr


def test_lifecycle_example_runs():
    [example] = [b for b in python_blocks((ROOT / "README.md").read_text()) if "DatabaseHook" in b]
    proc = run(example)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["database connected", "db healthy: True", "database closed"]
    assert "[span] lifecycle.startup" in proc.stderr


def test_caching_example_runs():
    [example] = [b for b in python_blocks((ROOT / "README.md").read_text()) if "@cached" in b]
    proc = run(example)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["{'id': 1, 'name': 'product 1'} loads: 1", "loads: 2"]
    assert "ttbt5.cache.coalesced{cache.name=products} 49" in proc.stderr


def test_example_quickstart_runs():
    proc = run(ROOT / "examples" / "quickstart.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["receipt-o-1", "queued-for-review"]
    assert "request_id='req-42'" in proc.stderr
