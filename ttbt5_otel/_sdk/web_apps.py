"""Web application objects: instrumented however they were created, flushed as they stop.

The framework instrumentors swap the framework's class in its module, which misses the usual
layout of an app: ``from flask import Flask`` at the top, then ``init()``, then
``app = Flask(__name__)`` builds the app from the class imported before the swap. Wrapping
that original class's constructor covers those apps too; ``instrument_app`` covers an app
created before ``init()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from ttbt5_otel._core.guard import internal_error, own_logger
from ttbt5_otel._exceptions import ConfigError


def instrument_app(app: Any) -> Any:
    """Instrument a FastAPI or Flask application object created before ``init()``.

    ``init()`` patches the framework classes, so applications created afterwards are covered
    without this call; for one created earlier, call it once (it does nothing to an
    application that is already instrumented). Returns ``app``.
    """
    kind = _framework_of(app)
    # Both instrumentors leave an application they already instrumented untouched.
    if kind == "fastapi":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

        FastAPIInstrumentor.instrument_app(app)
        flush_when_lifespan_ends(app)
    elif kind == "flask":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415

        FlaskInstrumentor.instrument_app(app)  # type: ignore[no-untyped-call]
    else:
        raise ConfigError(
            "app",
            f"{type(app).__module__}.{type(app).__qualname__} is not a FastAPI or Flask "
            "application (Django is instrumented by init() before its settings load)",
        )
    return app


# Entry point name of the instrumentation -> the framework's module and application class.
APP_CLASSES: Final[Mapping[str, tuple[str, str]]] = {
    "flask": ("flask", "Flask"),
    "fastapi": ("fastapi", "FastAPI"),
}


def cover_apps_of_imported_class(name: str) -> Callable[[], None]:
    module_name, class_name = APP_CLASSES[name]
    current = getattr(sys.modules[module_name], class_name)
    original = next(
        k
        for k in current.__mro__
        if k.__name__ == class_name and k.__module__.split(".")[0] == module_name
    )
    constructor = original.__init__

    @functools.wraps(constructor)
    def construct_then_instrument(self: Any, *args: Any, **kwargs: Any) -> None:
        constructor(self, *args, **kwargs)
        try:
            # The instrumentor's own subclass instruments itself once constructed.
            if not type(self).__module__.startswith("opentelemetry.instrumentation"):
                instrument_app(self)
            elif name == "fastapi":
                flush_when_lifespan_ends(self)
        except Exception as exc:  # an app must start even if instrumenting it fails
            internal_error(f"instrumenting a {class_name} app", exc)

    original.__init__ = construct_then_instrument

    def undo() -> None:
        if original.__init__ is construct_then_instrument:
            original.__init__ = constructor

    return undo


def flush_when_lifespan_ends(app: Any) -> None:
    """Flush telemetry when an ASGI app's lifespan ends, before its server process exits.

    uvicorn stops a worker by re-raising SIGTERM once the app has shut down, which kills the
    process before interpreter exit hooks (and the flush they would run) get a turn.
    """
    router = getattr(app, "router", None)
    inner = getattr(router, "lifespan_context", None)
    if inner is None or getattr(inner, _FLUSHES, False):
        return

    @contextlib.asynccontextmanager
    async def lifespan_then_flush(asgi_app: Any) -> AsyncIterator[Any]:
        async with inner(asgi_app) as state:
            yield state
        from ttbt5_otel._sdk.setup import force_flush  # noqa: PLC0415 - setup imports this

        if not await asyncio.to_thread(force_flush):
            # The server kills the process next: whatever did not leave now never will.
            _LOG.warning(
                "telemetry flush at application shutdown did not finish; "
                "data not yet exported is lost with this process"
            )

    setattr(lifespan_then_flush, _FLUSHES, True)
    app.router.lifespan_context = lifespan_then_flush


_FLUSHES: Final = "_ttbt5_flushes_telemetry"
_LOG = own_logger("ttbt5_otel")


def _framework_of(app: Any) -> str | None:
    for klass in type(app).__mro__:
        module = klass.__module__.split(".")[0]
        if module == "fastapi" and klass.__name__ == "FastAPI":
            return "fastapi"
        if module == "flask" and klass.__name__ == "Flask":
            return "flask"
    return None
