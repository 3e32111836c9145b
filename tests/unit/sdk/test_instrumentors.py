"""init() activates the installed instrumentations, says what it skipped and why, and undoes it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask  # imported before anything is instrumented, as apps do

from ttbt5_otel import ConfigError, instrument_app
from ttbt5_otel._sdk.instrumentors import Instrumentors, installed_entry_points


@dataclass
class FakeEntryPoint:
    name: str
    instrumentor: Any = None
    dist: Any = None

    def load(self) -> Any:
        if self.instrumentor is None:
            raise ModuleNotFoundError(f"{self.name} must be installed")
        return self.instrumentor


class Recording:
    """An instrumentor class that records what was done to it."""

    calls: list[str] = []

    def __init__(self) -> None:
        self.is_instrumented_by_opentelemetry = False

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ()

    def instrument(self, **kwargs: Any) -> None:
        Recording.calls.append(f"instrument {sorted(kwargs)}")

    def uninstrument(self) -> None:
        Recording.calls.append("uninstrument")


class NeedsMissingLibrary(Recording):
    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("no-such-library >= 1",)


class Exploding(Recording):
    def instrument(self, **kwargs: Any) -> None:
        raise RuntimeError("boom")


def _statuses(results: Any) -> dict[str, tuple[str, str]]:
    return {r.name: (r.status, r.reason) for r in results}


def test_selection_and_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "sqlite3, grpc")
    Recording.calls = []
    points = [
        FakeEntryPoint("logging", Recording),
        FakeEntryPoint("sqlite3", Recording),
        FakeEntryPoint("absent"),
        FakeEntryPoint("exploding", Exploding),
        FakeEntryPoint("missing", NeedsMissingLibrary),
        FakeEntryPoint("good", Recording),
    ]
    activated = Instrumentors()
    results = _statuses(activated.activate(("all",), asyncio=True, entry_points=points))
    assert results["logging"] == ("skipped", "log records are exported by the ttbt5 logging bridge")
    assert results["sqlite3"] == (
        "skipped",
        "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    )
    assert results["absent"][0] == "skipped"
    assert results["absent"][1].startswith("library not installed")
    assert results["good"] == ("instrumented", "good")
    assert results["exploding"] == ("skipped", "failed: RuntimeError: boom")
    assert results["missing"] == ("skipped", "library not installed")
    assert results["good"] == ("instrumented", "good")
    assert Recording.calls == ["instrument ['skip_dep_check']"]
    activated.deactivate()
    assert Recording.calls[-1] == "uninstrument"


def test_a_list_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", raising=False)
    points = [FakeEntryPoint("httpx", Recording), FakeEntryPoint("flask", Recording)]
    listed = _statuses(Instrumentors().activate(("httpx",), asyncio=True, entry_points=points))
    assert listed["httpx"][0] == "instrumented"
    assert listed["flask"] == ("skipped", "not listed in instrument")
    nothing = _statuses(Instrumentors().activate(("none",), asyncio=True, entry_points=points))
    assert {status for status, _ in nothing.values()} == {"skipped"}
    no_asyncio = Instrumentors().activate(
        ("all",), asyncio=False, entry_points=[FakeEntryPoint("asyncio", Recording)]
    )
    assert no_asyncio[0].status == "skipped"


def test_real_entry_points_report_a_version_conflict_or_absence() -> None:
    names = {ep.name for ep in installed_entry_points()}
    assert {"flask", "fastapi", "httpx", "requests", "sqlalchemy", "redis"} <= names
    django = [ep for ep in installed_entry_points() if ep.name == "django"]
    results = Instrumentors().activate(("django",), asyncio=True, entry_points=django)
    assert results[0].reason.startswith("library not installed"), "django is not installed here"


def test_stable_http_semconv_is_chosen_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from ttbt5_otel._sdk.instrumentors import prefer_stable_http_semconv  # noqa: PLC0415

    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    prefer_stable_http_semconv()
    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http"
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup")
    prefer_stable_http_semconv()
    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http/dup"


def _flask_app() -> Flask:
    app = Flask("shop")

    @app.get("/orders/<order_id>")
    def order(order_id: str) -> str:
        return order_id

    return app


def test_flask_app_from_a_class_imported_before_init_is_instrumented(capture_telemetry) -> None:
    flask_only = [ep for ep in installed_entry_points() if ep.name == "flask"]
    activated = Instrumentors()
    activated.activate(("flask",), asyncio=True, entry_points=flask_only)
    try:
        assert _flask_app().test_client().get("/orders/7").status_code == 200
    finally:
        activated.deactivate()
    assert capture_telemetry.span_names() == ["GET /orders/<order_id>"]
    capture_telemetry.clear()
    _flask_app().test_client().get("/orders/8")
    assert capture_telemetry.span_names() == [], "deactivate() restored the class"


def test_instrument_app_for_an_app_created_earlier(capture_telemetry) -> None:
    app = _flask_app()
    assert instrument_app(app) is app
    instrument_app(app)  # a second call changes nothing
    app.test_client().get("/orders/9")
    assert capture_telemetry.span_names() == ["GET /orders/<order_id>"]


def test_instrument_app_names_what_it_cannot_instrument() -> None:
    with pytest.raises(ConfigError, match=r"app: builtins\.object is not a FastAPI or Flask"):
        instrument_app(object())
