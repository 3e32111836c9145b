"""Which SLO rules the local Prometheus evaluates: the real ones, or the demo profile.

Both files are generated from ``dashboards/slos.yaml`` with the same rule names; the demo
profile divides every window and ``for:`` by 10, so that a demo incident pages within a
minute instead of an hour. Loading both would record every series twice, so the stack's
Prometheus reads a configuration written here, in the state directory: the shipped
``prometheus.yml`` with its ``rule_files`` replaced by absolute paths to the shipped rules,
the SLO file of the chosen profile among them. Alertmanager reads a copy of the shipped
configuration too, whose grouping timings the demo profile divides by the same factor (a
second incident a minute after the first would otherwise wait for the group's interval).
Switching profiles rewrites both files and reloads both processes with SIGHUP; the choice
stays until it is switched back.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final

import yaml

from ttbt5_otel._cli.stack_parts import STACK_FILES
from ttbt5_otel._exceptions import StackError

PROFILES: Final = ("standard", "demo")
PROFILE_ENV: Final = "TTBT5_SLO_PROFILE"
CONFIG_FILE: Final = "prometheus.yml"
ALERTMANAGER_CONFIG_FILE: Final = "alertmanager.yml"
_TIMINGS: Final = ("group_wait", "group_interval", "repeat_interval")
PROFILE_FILE: Final = "slo-profile"
_SLO_RULES: Final = "ttbt5-slos.yml"
# How the evaluation interval of an SLO group tells the profiles apart (the demo
# profile evaluates every second).
_DEMO_INTERVAL_S: Final = 1.0
DEMO_FACTOR: Final = 10
"""What the demo profile divides windows by (``render_slos.DEMO_FACTOR``); the scrape
interval is divided by it too, so that each window keeps as many points."""


def requested_profile(profile: str | None) -> str | None:
    """``profile``, else ``TTBT5_SLO_PROFILE``, else None (keep what the stack has)."""
    chosen = profile or os.environ.get(PROFILE_ENV, "").strip() or None
    if chosen is not None and chosen not in PROFILES:
        source = "--slo-profile" if profile else PROFILE_ENV
        raise StackError(f"{source}={chosen!r}: expected one of {', '.join(PROFILES)}")
    return chosen


def current_profile(state_dir: Path) -> str:
    """The profile last written for ``state_dir`` (standard when none was)."""
    try:
        found = (state_dir / PROFILE_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "standard"
    return found if found in PROFILES else "standard"


def rule_files(profile: str) -> list[str]:
    """Absolute paths of the rule files Prometheus loads under ``profile``."""
    rules = sorted((STACK_FILES / "prometheus" / "rules").glob("*.yml"))
    chosen = [str(path) for path in rules if path.name != _SLO_RULES]
    slo_rules = (
        STACK_FILES / "prometheus" / "rules" / _SLO_RULES
        if profile == "standard"
        else STACK_FILES / "prometheus" / "profiles" / profile / _SLO_RULES
    )
    if not slo_rules.is_file():
        raise StackError(f"{slo_rules} is missing: this installation of ttbt5-otel is incomplete")
    return [*chosen, str(slo_rules)]


def write_config(state_dir: Path, profile: str) -> Path:
    """Write the stack's Prometheus configuration for ``profile``; return its path."""
    shipped = STACK_FILES / "prometheus" / CONFIG_FILE
    config = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    config["rule_files"] = rule_files(profile)
    if profile == "demo":
        config["global"]["scrape_interval"] = _divided(str(config["global"]["scrape_interval"]))
    path = write_yaml(state_dir / CONFIG_FILE, shipped, profile, config)
    shipped = STACK_FILES / "alertmanager" / ALERTMANAGER_CONFIG_FILE
    routing = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    if profile == "demo":
        routes = [routing["route"]]
        while routes:
            route = routes.pop()
            for key in _TIMINGS:
                if key in route:
                    route[key] = _divided(str(route[key]))
            routes += route.get("routes", [])
    write_yaml(state_dir / ALERTMANAGER_CONFIG_FILE, shipped, profile, routing)
    write_text_private(state_dir / PROFILE_FILE, profile + "\n")
    return path


def write_yaml(path: Path, source: Path | str, profile: str, config: dict[str, Any]) -> Path:
    """Write ``config`` to ``path`` (0600, atomically) with a header naming its ``source``."""
    header = (
        f"# Written by `ttbt5-otel stack up` from {source}\n"
        f"# with the {profile} SLO profile; rewritten at every start and profile switch.\n"
    )
    return write_text_private(path, header + yaml.safe_dump(config, sort_keys=False))


def write_text_private(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically, as a file only its owner can read."""
    # A fresh 0600 file beside the target, then an atomic rename: never a planted link,
    # never a half-written config, never readable by others even for a moment.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_UNITS: Final = {"s": 1, "m": 60, "h": 3600}


def _divided(duration: str) -> str:
    """A simple duration (``10s``, ``5m``, ``4h``) divided by ``DEMO_FACTOR``, at least 1s."""
    seconds = max(1, int(duration[:-1]) * _UNITS[duration[-1]] // DEMO_FACTOR)
    for unit in ("h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def loaded_profile(prometheus_url: str, timeout: float = 2.0) -> str | None:
    """The SLO profile a running Prometheus evaluates, from its rule groups; None if unknown."""
    try:
        with urllib.request.urlopen(  # noqa: S310 - a loopback URL of our own stack
            f"{prometheus_url.rstrip('/')}/api/v1/rules", timeout=timeout
        ) as response:
            groups = json.load(response)["data"]["groups"]
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None
    intervals = {g["interval"] for g in groups if str(g.get("name", "")).startswith("ttbt5-slo-")}
    if not intervals:
        return None
    return "demo" if intervals == {_DEMO_INTERVAL_S} else "standard"


def wait_loaded(prometheus_url: str, profile: str, timeout: float = 15.0) -> None:
    """Wait until Prometheus evaluates ``profile``; ``StackError`` if it does not in time."""
    deadline = time.monotonic() + timeout
    while (found := loaded_profile(prometheus_url)) != profile:
        if time.monotonic() > deadline:
            raise StackError(
                f"Prometheus at {prometheus_url} evaluates the {found or 'unknown'} SLO "
                f"profile, not {profile}, {timeout:.0f}s after the reload; see its log"
            )
        time.sleep(0.2)
