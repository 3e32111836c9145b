"""Entry points for ``opentelemetry-instrument``: the same set-up as ``init()``, no code change.

The distro runs first and points the auto-instrumentation at our configurator, which calls
``init()`` with settings from the environment only.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

CONFIGURATOR_NAME = "ttbt5"


class Ttbt5Distro(BaseDistro):  # type: ignore[misc]
    """Selects the ttbt5 configurator unless the user chose another one."""

    def _configure(self, **kwargs: Any) -> None:
        del kwargs
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", CONFIGURATOR_NAME)


class Ttbt5Configurator(_BaseConfigurator):
    """Runs ``ttbt5_otel.init()`` from environment settings."""

    def _configure(self, **kwargs: Any) -> None:
        del kwargs
        from ttbt5_otel._sdk.setup import init  # noqa: PLC0415 - keep entry-point import light

        init()
