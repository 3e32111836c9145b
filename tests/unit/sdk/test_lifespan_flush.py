"""An ASGI app's lifespan end flushes telemetry, and says so when the flush did not finish.

uvicorn kills a worker right after its app's lifespan ends, so this flush is the worker's last
chance to export; a flush that did not finish must not pass in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from ttbt5_otel._sdk import setup
from ttbt5_otel._sdk.web_apps import flush_when_lifespan_ends


def _app(events: list[str]) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        events.append("started")
        yield
        events.append("app stopped")

    app = FastAPI(lifespan=lifespan)
    flush_when_lifespan_ends(app)
    return app


def _run_lifespan(app: FastAPI, events: list[str]) -> None:
    """Start the app's lifespan, then end it, as a server does over ASGI."""
    incoming = iter(["lifespan.startup", "lifespan.shutdown"])

    async def receive() -> dict[str, Any]:
        return {"type": next(incoming)}

    async def send(message: dict[str, Any]) -> None:
        assert not message["type"].endswith(".failed"), message
        if message["type"] == "lifespan.startup.complete":
            events.append("serving")

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))


@pytest.mark.parametrize("flushed", [True, False])
def test_the_flush_runs_after_the_apps_own_shutdown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, flushed: bool
) -> None:
    events: list[str] = []

    def force_flush(timeout: float | None = None) -> bool:
        events.append("flushed")
        return flushed

    monkeypatch.setattr(setup, "force_flush", force_flush)
    with caplog.at_level(logging.WARNING, logger="ttbt5_otel"):
        _run_lifespan(_app(events), events)
    assert events == ["started", "serving", "app stopped", "flushed"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "ttbt5_otel"]
    if flushed:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0].startswith("telemetry flush at application shutdown did not finish")


def test_an_app_is_wrapped_once(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(setup, "force_flush", lambda timeout=None: events.append("flushed") or True)
    app = _app(events)
    flush_when_lifespan_ends(app)
    _run_lifespan(app, events)
    assert events.count("flushed") == 1
