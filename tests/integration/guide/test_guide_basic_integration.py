"""The guide's Quick Start "4. Basic Integration" program, run as written, in a separate process
exporting to a real OTLP receiver.

``GUIDE`` is the guide's program verbatim; only its three ``src.patterns`` import prefixes
are changed to ``ttbt5_otel.patterns``. It defines everything it uses and runs itself
(``if __name__ == "__main__": asyncio.run(main())``), so nothing is added: the file is run
as it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.guide.test_guide_monitoring import run_guide_app
from tests.otlp_receiver import GrpcReceiver

pytestmark = pytest.mark.integration

# -- Quick Start, 4. Basic Integration, verbatim but the prefix ----------------------------
GUIDE = """
import asyncio
from ttbt5_otel.patterns.application_context import get_application_context
from ttbt5_otel.patterns.dependency_injection import DIContainer
from ttbt5_otel.patterns.logging_monitoring import MonitoringSystem

async def setup_application():
    # Get application context
    context = get_application_context()
    
    # Setup dependencies
    container = DIContainer()
    monitoring = MonitoringSystem()
    
    # Register services
    container.register('monitoring', monitoring)
    
    # Configure context
    context.set_container(container)
    
    # Start application
    await context.startup()
    
    return context

async def main():
    context = await setup_application()
    
    try:
        # Your application logic here
        monitoring = context.get_dependency('monitoring')
        await monitoring.logger.info("Application running")
        
    finally:
        await context.shutdown()

if __name__ == "__main__":
    asyncio.run(main())
"""  # noqa: W293 - the guide's blank lines carry its indentation


def _run(receiver: GrpcReceiver, tmp_path: Path) -> str:
    """Run the program; its stderr."""
    proc = run_guide_app(
        receiver, tmp_path, {"basic_integration.py": GUIDE}, OTEL_SERVICE_NAME="guide-basic"
    )
    return proc.stderr


def test_guide_basic_integration(tmp_path: Path) -> None:
    """Start-up, the registered MonitoringSystem's log record and shutdown all arrive."""
    with GrpcReceiver() as receiver:
        _run(receiver, tmp_path)
        received = receiver.received

        [record] = [r for r in received.log_records() if r["body"] == "Application running"]
        assert record["severity"] == "INFO"
        assert record["attributes"]["logger.name"] == "monitoring"
        assert record["resource"]["service.name"] == "guide-basic"
        # The context's own record, from the same start-up.
        [started] = [r for r in received.log_records() if r["body"] == "application started"]
        assert started["resource"] == record["resource"]

        # The context's start-up and shutdown are traced; shutdown flushed everything above.
        names = [s["name"] for s in received.spans()]
        assert names.count("application.startup") == 1
        assert names.count("application.shutdown") == 1


def test_guide_basic_integration_prints_info_on_the_console(tmp_path: Path) -> None:
    """The lifecycle's console handler shows the INFO record it was added for."""
    with GrpcReceiver() as receiver:
        stderr = _run(receiver, tmp_path)
    assert any("Application running" in line for line in stderr.splitlines())
