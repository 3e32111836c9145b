"""Entry points for ``opentelemetry-instrument``: the same set-up as ``init()``, no code change.

The distro runs first and points the auto-instrumentation at our configurator, which calls
``init()`` with settings from the environment only.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._sdk.instrumentors import HANDLED_HERE, prefer_stable_http_semconv

_LOG = own_logger("ttbt5_otel")

CONFIGURATOR_NAME = "ttbt5"


class Ttbt5Distro(BaseDistro):  # type: ignore[misc]
    """Selects the ttbt5 configurator unless the user chose another one.

    It also leaves out the instrumentors whose work the ttbt5 set-up already does (the
    logging instrumentation would export every record a second time) and opts in to the
    stable HTTP semantic conventions, as ``init()`` does.
    """

    def _configure(self, **kwargs: Any) -> None:
        del kwargs
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", CONFIGURATOR_NAME)
        prefer_stable_http_semconv()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Activate one instrumentor, unless ttbt5 already does its work."""
        if entry_point.name in HANDLED_HERE:
            _LOG.debug("not loading %s: %s", entry_point.name, HANDLED_HERE[entry_point.name])
            return
        super().load_instrumentor(entry_point, **kwargs)


class Ttbt5Configurator(_BaseConfigurator):
    """Runs ``ttbt5_otel.init()`` from environment settings."""

    def _configure(self, **kwargs: Any) -> None:
        del kwargs
        from ttbt5_otel._sdk.setup import init_for_agent  # noqa: PLC0415 - a light entry point

        init_for_agent()
