"""Read and check the SLO spec (``dashboards/slos.yaml``): what each service promises.

The spec is small on purpose: per service, where its requests are counted (``source``)
and a list of SLOs, each an SLI (``availability`` or ``latency``), an objective in percent
and a compliance window. Everything else (windows, burn rates, thresholds of the alerts)
follows from it in ``render_slos.py``. ``slos.schema.json`` describes the same format for
editors; this module gives the errors a person can act on, each naming the field at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = Path(__file__).resolve().parents[1] / "slos.yaml"

# Bucket bounds (seconds) of the histograms a latency SLI can be read from: a threshold
# must be one of them, since a share "under the threshold" is one bucket's count.
# span_metrics: otel-collector.yaml, connectors.span_metrics.histogram.explicit.buckets;
# http_server: the advisory buckets of the OpenTelemetry HTTP instrumentations.
BUCKETS = {
    "span_metrics": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    "http_server": (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10),
}
SLIS = ("availability", "latency")
WINDOWS = ("28d", "30d")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_THRESHOLD = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")
_SERVICE_KEYS = {"source", "window", "environment", "slos"}
_SLO_KEYS = {"name", "sli", "objective", "threshold", "routes", "window", "description"}


class SpecError(ValueError):
    """The SLO spec is not usable; the message names the field."""


@dataclass(frozen=True)
class Slo:
    """One objective of one service, checked."""

    service: str
    name: str
    sli: str
    objective: float
    """Share of good events promised, 0 < objective < 1 (the spec says it in percent)."""
    window: str
    source: str
    threshold: float | None = None
    """Latency SLIs: seconds; a request is good when it takes at most this long."""
    routes: tuple[str, ...] = ()
    environment: str | None = None
    description: str = ""

    @property
    def budget(self) -> float:
        """The share of events allowed to be bad over the window."""
        return round(1 - self.objective, 10)

    @property
    def objective_percent(self) -> str:
        """The objective as the spec wrote it, e.g. ``99.9``."""
        return f"{self.objective * 100:.10g}"


def _fail(where: str, problem: str) -> SpecError:
    return SpecError(f"{where}: {problem}")


def _unknown_keys(where: str, found: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(found) - allowed)
    if extra:
        raise _fail(where, f"unknown field {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _objective(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"{value!r} is not a number; write the percentage, e.g. 99.9")
    # Below 50 % the value was most likely written as a ratio (0.999) instead of percent.
    if not 50 <= value < 100:  # noqa: PLR2004
        raise _fail(where, f"{value!r} is not a percentage from 50 to below 100, e.g. 99.9")
    return round(value / 100, 10)


def _threshold(where: str, value: Any, source: str) -> float:
    match = _THRESHOLD.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise _fail(where, f"{value!r} is not a duration such as 250ms or 1s")
    seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if not any(abs(seconds - bound) < 1e-9 for bound in BUCKETS[source]):  # noqa: PLR2004
        bounds = ", ".join(_seconds_text(bound) for bound in BUCKETS[source])
        raise _fail(
            where, f"{value} is not a bucket bound of the {source} histogram (one of: {bounds})"
        )
    return seconds


def _seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _fail(where, f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _routes(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, "expected a non-empty list of http.route values, e.g. ['/orders']")
    for index, route in enumerate(value):
        if not isinstance(route, str) or not route.startswith("/"):
            raise _fail(f"{where}[{index}]", f"{route!r} is not a route starting with /")
    return tuple(value)


def _slo(where: str, raw: Any, service: str, defaults: dict[str, Any]) -> Slo:
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping with name, sli and objective")
    _unknown_keys(where, raw, _SLO_KEYS)
    for required in ("name", "sli", "objective"):
        if required not in raw:
            raise _fail(f"{where}.{required}", "missing")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"{where}.name", f"{name!r} is not a lowercase name (a-z, 0-9, - _ .)")
    sli = _choice(f"{where}.sli", raw["sli"], SLIS)
    source = defaults["source"]
    threshold = None
    if sli == "latency":
        if "threshold" not in raw:
            raise _fail(f"{where}.threshold", "missing: a latency SLI needs one, e.g. 250ms")
        threshold = _threshold(f"{where}.threshold", raw["threshold"], source)
    elif "threshold" in raw:
        raise _fail(f"{where}.threshold", "only a latency SLI has a threshold")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{where}.description", "expected text")
    return Slo(
        service=service,
        name=name,
        sli=sli,
        objective=_objective(f"{where}.objective", raw["objective"]),
        window=_choice(f"{where}.window", raw.get("window", defaults["window"]), WINDOWS),
        source=source,
        threshold=threshold,
        routes=_routes(f"{where}.routes", raw["routes"]) if "routes" in raw else (),
        environment=defaults["environment"],
        description=" ".join(description.split()),
    )


def _service(service: Any, raw: Any) -> list[Slo]:
    where = f"services.{service}"
    if not isinstance(service, str) or not _SERVICE.match(service):
        raise _fail(where, f"{service!r} is not a service.name")
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping with a list of slos")
    _unknown_keys(where, raw, _SERVICE_KEYS)
    environment = raw.get("environment")
    if environment is not None and not isinstance(environment, str):
        raise _fail(f"{where}.environment", "expected a deployment.environment.name")
    defaults = {
        "source": _choice(f"{where}.source", raw.get("source", "span_metrics"), tuple(BUCKETS)),
        "window": _choice(f"{where}.window", raw.get("window", "30d"), WINDOWS),
        "environment": environment,
    }
    slos = raw.get("slos")
    if not isinstance(slos, list) or not slos:
        raise _fail(f"{where}.slos", "expected a non-empty list")
    found = [_slo(f"{where}.slos[{i}]", slo, service, defaults) for i, slo in enumerate(slos)]
    names = [slo.name for slo in found]
    for name in names:
        if names.count(name) > 1:
            raise _fail(f"{where}.slos", f"two SLOs are named {name!r}")
    return found


def parse(document: Any) -> list[Slo]:
    """Every SLO of a loaded spec document; ``SpecError`` names the first bad field."""
    if not isinstance(document, dict):
        raise SpecError("the SLO spec must be a mapping with 'version' and 'services'")
    _unknown_keys("spec", document, {"version", "services"})
    if document.get("version") != 1:
        raise _fail("version", f"{document.get('version')!r} is not supported; expected 1")
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        raise _fail("services", "expected a mapping of service.name to its SLOs")
    return [slo for name, raw in services.items() for slo in _service(name, raw)]


def load(path: Path = SPEC_FILE) -> list[Slo]:
    """The SLOs of the spec file at ``path``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from None
    try:
        return parse(document)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
