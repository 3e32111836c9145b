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
