"""The OpenTelemetry instrumentations installed beside the app, activated by ``init()``.

Each installed ``opentelemetry-instrumentation-*`` package announces an instrumentor through
the ``opentelemetry_instrumentor`` entry point group, and declares the library versions it
supports. ``init()`` activates every one whose library is installed at a supported version,
unless the ``instrument`` option or ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` leaves it out;
nothing here ever raises into the app: a failing instrumentor is reported as skipped.

The stable HTTP semantic conventions are chosen unless the user chose otherwise, so
``http.request.method``, ``http.route`` and ``http.response.status_code`` reach the span
metrics and the HTTP duration histograms.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ttbt5_otel._core.guard import own_logger
from ttbt5_otel._sdk.web_apps import APP_CLASSES, cover_apps_of_imported_class

_LOG = own_logger("ttbt5_otel")
ENTRY_POINT_GROUP: Final = "opentelemetry_instrumentor"
DISABLED_VARIABLE: Final = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
SEMCONV_VARIABLE: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
ALL: Final = "all"
NONE: Final = "none"
# Instrumentors whose job this package already does; running both would duplicate records.
HANDLED_HERE: Final[Mapping[str, str]] = {
    "logging": "log records are exported by the ttbt5 logging bridge",
}


@dataclass(frozen=True, slots=True)
class Instrumentation:
    """What ``init()`` did with one installed OpenTelemetry instrumentation."""

    name: str
    """The entry point name (``flask``, ``httpx``, ``sqlalchemy``, ...)."""
    status: Literal["instrumented", "skipped"]
    reason: str
    """For an instrumented library its installed version; for a skipped one, why."""


def prefer_stable_http_semconv() -> None:
    """Opt in to the stable HTTP conventions unless the user set the variable."""
    if not os.environ.get(SEMCONV_VARIABLE):
        os.environ[SEMCONV_VARIABLE] = "http"


def disabled_names(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The instrumentations ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` switches off."""
    raw = environ.get(DISABLED_VARIABLE, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def installed_entry_points() -> list[Any]:
    """Every installed instrumentor entry point, in a stable order."""
    from opentelemetry.util._importlib_metadata import entry_points  # noqa: PLC0415

    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return [found[name] for name in sorted(found)]


def _skip_reason(entry_point: Any, wanted: tuple[str, ...], disabled: frozenset[str]) -> str | None:
    name = entry_point.name
    if name in HANDLED_HERE:
        return HANDLED_HERE[name]
    if NONE in wanted:
        return "instrument=none"
    if ALL not in wanted and name not in wanted:
        return "not listed in instrument"
    if name in disabled:
        return f"disabled by {DISABLED_VARIABLE}"
    return None


def _conflict(instrumentor: Any) -> str | None:
    """Why the libraries this instrumentor needs are unusable, if they are."""
    from opentelemetry.instrumentation.dependencies import (  # noqa: PLC0415
        get_dependency_conflicts,
    )

    conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    if conflict is None:
        return None
    if conflict.found or conflict.found_any:
        return f"version conflict: {conflict}"
    return "library not installed"


def _load(
    entry_point: Any, wanted: tuple[str, ...], disabled: frozenset[str]
) -> tuple[Any, str | None]:
    """The instrumentor of ``entry_point`` if it is to be activated, else why not."""
    reason = _skip_reason(entry_point, wanted, disabled)
    if reason is not None:
        return None, reason
    try:
        instrumentor = entry_point.load()()
    except ImportError as exc:
        return None, f"library not installed ({exc})"
    return instrumentor, _conflict(instrumentor)


def _library_version(entry_point: Any) -> str:
    from opentelemetry.util._importlib_metadata import version  # noqa: PLC0415
    from packaging.requirements import Requirement  # noqa: PLC0415

    dist = entry_point.dist
    for requirement in (dist.requires if dist is not None else None) or ():
        if "instruments" in requirement:
            package = Requirement(requirement).name
            try:
                return f"{package} {version(package)}"
            except Exception:  # noqa: S112 - the next declared library may be present
                continue
    return f"{entry_point.name} {dist.version if dist is not None else ''}".strip()


class Instrumentors:
    """The instrumentors ``init()`` activated, so ``shutdown()`` can undo exactly those."""

    def __init__(self) -> None:
        """Nothing activated yet."""
        self.results: tuple[Instrumentation, ...] = ()
        self._active: list[Any] = []
        self._undo: list[Callable[[], None]] = []

    def activate(
        self,
        wanted: tuple[str, ...],
        *,
        asyncio: bool,
        entry_points: Iterable[Any] | None = None,
    ) -> tuple[Instrumentation, ...]:
        """Activate what ``wanted`` selects among ``entry_points`` (default: all installed)."""
        disabled = disabled_names()
        if not asyncio:
            disabled |= {"asyncio"}
        candidates = installed_entry_points() if entry_points is None else entry_points
        self.results = tuple(self._activate_one(ep, wanted, disabled) for ep in candidates)
        return self.results

    def _activate_one(
        self, entry_point: Any, wanted: tuple[str, ...], disabled: frozenset[str]
    ) -> Instrumentation:
        name = entry_point.name
        try:
            instrumentor, reason = _load(entry_point, wanted, disabled)
            if reason is not None:
                return Instrumentation(name, "skipped", reason)
            if instrumentor.is_instrumented_by_opentelemetry:
                return Instrumentation(name, "skipped", "already instrumented elsewhere")
            instrumentor.instrument(skip_dep_check=True)
            self._active.append(instrumentor)
            if name in APP_CLASSES:
                self._undo.append(cover_apps_of_imported_class(name))
            library = _library_version(entry_point)
        # An instrumentor must never break the app: whatever it raises makes it skipped.
        except Exception as exc:
            return Instrumentation(name, "skipped", f"failed: {type(exc).__name__}: {exc}")
        _LOG.info("ttbt5_otel instrumented %s", library)
        return Instrumentation(name, "instrumented", library)

    def deactivate(self) -> None:
        """Undo every activation (at shutdown), newest first."""
        while self._undo:
            self._undo.pop()()
        while self._active:
            instrumentor = self._active.pop()
            try:
                instrumentor.uninstrument()
            except Exception as exc:  # shutdown goes on with the others
                _LOG.debug("uninstrumenting %s failed: %s", type(instrumentor).__name__, exc)


def preview(wanted: tuple[str, ...], *, asyncio: bool) -> tuple[Instrumentation, ...]:
    """What ``init()`` would do with each installed instrumentation, changing nothing."""
    disabled = disabled_names() | ({"asyncio"} if not asyncio else set())
    results = []
    for entry_point in installed_entry_points():
        try:
            reason = _load(entry_point, wanted, disabled)[1]
        except Exception as exc:
            reason = f"failed: {type(exc).__name__}: {exc}"
        if reason is None:
            reason, status = _library_version(entry_point), "instrumented"
        else:
            status = "skipped"
        results.append(Instrumentation(entry_point.name, status, reason))  # type: ignore[arg-type]
    return tuple(results)
