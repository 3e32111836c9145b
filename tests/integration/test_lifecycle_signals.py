"""SIGTERM/SIGINT trigger an orderly shutdown of a real process."""

import signal
import subprocess
import sys
import time

import pytest

from tests.loopback import clean_env

pytestmark = pytest.mark.integration

ASYNC_APP = """
import asyncio, sys
from ttbt5_otel import LifecycleHook, application_lifecycle, get_application_context

class Hook(LifecycleHook):
    def on_startup(self):
        print("started", flush=True)
    async def on_shutdown(self):
        await asyncio.sleep(0)
        print("hook stopped", flush=True)

@application_lifecycle(service_name="sig", exporter="none", runtime_metrics=False)
async def main():
    print("running", flush=True)
    await asyncio.sleep(60)
    print("not reached", flush=True)

get_application_context().add_lifecycle_hook(Hook())
asyncio.run(main())
print("exited cleanly", flush=True)
"""

SYNC_APP = """
import time
from ttbt5_otel import LifecycleHook, application_lifecycle, get_application_context

class Hook(LifecycleHook):
    def on_shutdown(self):
        print("hook stopped", flush=True)

get_application_context().add_lifecycle_hook(Hook())

@application_lifecycle(service_name="sig", exporter="none", runtime_metrics=False)
def main():
    print("running", flush=True)
    time.sleep(60)

main()
print("exited cleanly", flush=True)
"""


def run_until_running(code):
    env = clean_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line.strip())
        if line.strip() == "running":
            return proc, lines
    proc.kill()
    pytest.fail(f"app never reported running: {lines} {proc.stderr.read()}")
    return None


@pytest.mark.parametrize("code", [ASYNC_APP, SYNC_APP], ids=["async-main", "sync-main"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_runs_shutdown_hooks_and_exits_cleanly(code, signum):
    proc, _ = run_until_running(code)
    try:
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "hook stopped" in out
    assert "exited cleanly" in out
    assert "not reached" not in out


DOWN_COLLECTOR_APP = """
import asyncio, logging
import ttbt5_otel
from ttbt5_otel import application_lifecycle

log = logging.getLogger("busy")

@application_lifecycle(service_name="sig", shutdown_timeout=2, instrument=("none",),
                       max_queue_size=4096)
async def main():
    for i in range(3000):
        with ttbt5_otel.span("work"):
            log.warning("item %d", i)
    print("running", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.parametrize("collector", ["down", "frozen"])
def test_sigterm_with_a_broken_collector_exits_within_the_shutdown_budget(collector, tmp_path):
    """3,000 spans and log records queued, nothing answering: SIGTERM to exit in ≤ 2.5 s."""
    import socket  # noqa: PLC0415

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if collector == "frozen":
        listener.listen(1024)  # accepts connections, never answers
    else:
        listener.close()  # connection refused
    env = clean_env(TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
    # The app's 3,000 warnings go to a file: a pipe nobody reads would block the app.
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", DOWN_COLLECTOR_APP],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout.readline().strip() == "running"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = errors.read_text()[-2000:]
    assert took < 2.5, err
    assert proc.returncode == 0, err
