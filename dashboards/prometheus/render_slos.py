"""Render SLI, error-budget and burn-rate rules from the SLO spec (``dashboards/slos.yaml``).

For each SLO: the share of bad events over every window the alerts read (5m, 30m, 1h, 2h,
6h, 1d, 3d) and over the SLO's own window, the error budget left, and the multi-window,
multi-burn-rate alerts of the SRE workbook:

    response  burn rate  long window  short window  budget spent when it fires
    page      14.4x      1h           5m            2 % in an hour
    page      6x         6h           30m           5 % in six hours
    ticket    3x         1d           2h            10 % in a day
    ticket    1x         3d           6h            10 % in three days

An alert fires only while both windows burn faster than its rate: the long window proves
the burn is big enough to matter, the short one that it is still going on, so a page
resolves within the short window of recovery. Pages are ``severity: critical``, tickets
``severity: warning`` (Alertmanager routes on it).

    python dashboards/prometheus/render_slos.py           # rewrite the committed files
    python dashboards/prometheus/render_slos.py --check   # exit 1 if they are stale

Two profiles are written: ``rules/ttbt5-slos.yml``, the real one, and
``profiles/demo/ttbt5-slos.yml``, every window and ``for:`` divided by the same factor
(``DEMO_FACTOR``), for a demo that must page within a minute. Rule names are the same in
both, so a stack loads one or the other (``ttbt5-otel stack up --slo-profile``), never both.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import render_rules  # noqa: E402
import slo_spec  # noqa: E402

SLO_FILE = "ttbt5-slos.yml"
STANDARD_PATH = HERE / "rules" / SLO_FILE
DEMO_PATH = HERE / "profiles" / "demo" / SLO_FILE
DEMO_FACTOR = 10
# Where the alerts' dashboard link leads; --grafana-url overrides it.
GRAFANA_URL = "http://localhost:3000"
DASHBOARD_UID = "ttbt5-error-budget"
DASHBOARD_SLUG = "ttbt5-error-budget"

# The windows of the burn-rate alerts, in seconds (5m ... 3d).
SLI_WINDOWS = (300, 1800, 3600, 7200, 21600, 86400, 259200)
# The labels a bad-event share is kept per: one series per service and environment.
BY = "service_name, deployment_environment_name"
# Entry spans, as in render_rules.ENTRY_MATCHERS: what a service was asked to do.
ENTRY_MATCHERS = render_rules.ENTRY_MATCHERS


@dataclass(frozen=True)
class BurnAlert:
    """One pair of windows of the multi-window, multi-burn-rate alerts."""

    response: str
    severity: str
    burn_rate: float
    long_window: int
    short_window: int

    @property
    def for_seconds(self) -> int:
        """A fifth of the short window: one noisy evaluation does not page."""
        return self.short_window // 5


BURN_ALERTS = (
    BurnAlert("page", "critical", 14.4, 3600, 300),
    BurnAlert("page", "critical", 6, 21600, 1800),
    BurnAlert("ticket", "warning", 3, 86400, 7200),
    BurnAlert("ticket", "warning", 1, 259200, 21600),
)


@dataclass(frozen=True)
class Profile:
    """How long the windows are in one rendering; the real profile has factor 1."""

    name: str
    factor: int
    interval: str | None
    grafana_url: str = GRAFANA_URL
    runbook_base: str = render_rules.RUNBOOK_BASE

    def window(self, seconds: int) -> str:
        """A window of the real profile, scaled into this one."""
        return render_rules.format_duration(seconds // self.factor)

    def period(self, slo: slo_spec.Slo) -> str:
        """The SLO's own window, scaled."""
        return self.window(render_rules.parse_duration(slo.window))


STANDARD = Profile("standard", 1, None)
# Every window and for: divided by DEMO_FACTOR; evaluated every second, since 10 s
# would be a third of the shortest window.
DEMO = Profile("demo", DEMO_FACTOR, "1s")


def _window_name(seconds: int) -> str:
    """The suffix of a recording rule for a window of the real profile (``rate5m``)."""
    return "rate" + render_rules.format_duration(seconds)


def _matchers(slo: slo_spec.Slo, *extra: str) -> str:
    found = [f'service_name="{slo.service}"']
    if slo.environment is not None:
        found.append(f'deployment_environment_name="{slo.environment}"')
    if slo.routes:
        found.append(f'http_route=~"{"|".join(_regex_escape(r) for r in slo.routes)}"')
    return ", ".join([*found, *extra])


def _regex_escape(text: str) -> str:
    # Backslashes doubled once for the regular expression, once for the PromQL string.
    return "".join(f"\\\\{c}" if c in r".^$*+?()[]{}|\\" else c for c in text)


def _rate_sum(metric: str, selectors: list[str], window: str) -> str:
    """``sum by (BY) (rate(...))`` over one or more alternative selectors."""
    rates = "\n  or\n  ".join(f"rate({metric}{{{s}}}[{window}])" for s in selectors)
    return f"sum by ({BY}) (\n  {rates}\n)"


def _events(slo: slo_spec.Slo, window: str) -> tuple[str, str]:
    """PromQL for the rate of all events and of bad events of ``slo`` over ``window``."""
    # Prometheus 2 writes the bound 1 as le="1", Prometheus 3 (and 2 scraping protobuf) as
    # le="1.0": accept both spellings of whole numbers.
    bound = f"{slo.threshold:g}" if slo.threshold is not None else ""
    le = f'le=~"{bound}|{bound}\\\\.0"' if bound.isdigit() else f'le="{bound}"'
    if slo.source == "span_metrics":
        entry = [_matchers(slo, matcher) for matcher in ENTRY_MATCHERS]
        calls = "traces_span_metrics_calls_total"
        if slo.sli == "availability":
            errors = [_matchers(slo, m, 'status_code="STATUS_CODE_ERROR"') for m in ENTRY_MATCHERS]
            return _rate_sum(calls, entry, window), _rate_sum(calls, errors, window)
        total = _rate_sum("traces_span_metrics_duration_seconds_count", entry, window)
        fast = [_matchers(slo, m, le) for m in ENTRY_MATCHERS]
        good = _rate_sum("traces_span_metrics_duration_seconds_bucket", fast, window)
        return total, _difference(total, good)
    requests = [_matchers(slo)]
    total = _rate_sum("http_server_request_duration_seconds_count", requests, window)
    if slo.sli == "availability":
        failed = [_matchers(slo, 'http_response_status_code=~"5.."')]
        return total, _rate_sum("http_server_request_duration_seconds_count", failed, window)
    good = _rate_sum("http_server_request_duration_seconds_bucket", [_matchers(slo, le)], window)
    return total, _difference(total, good)


def _nested(*parts: str) -> str:
    """``parts`` (expressions and operators) inside parentheses, indented."""
    return "(\n" + textwrap.indent("\n".join(parts), "  ") + "\n)"


def _difference(total: str, good: str) -> str:
    """Slow requests: all requests minus those within the bucket.

    A missing bucket counts none as fast, so a wrong threshold shows as a burning SLO
    rather than a silent one.
    """
    return _nested(total, "-", _nested(good, "or", f"{total} * 0"))


def _bad_or_zero(total: str, bad: str) -> str:
    """Bad events, or 0 where there is traffic but no series of bad events yet."""
    return _nested(bad, "or", f"{total} * 0")


def _labels(slo: slo_spec.Slo, profile: Profile) -> dict[str, str]:
    # service_name repeats what the expression gives, so that no two rules of the file
    # look alike to promtool's duplicate check.
    labels = {
        "service_name": slo.service,
        "slo": slo.name,
        "sli": slo.sli,
        "slo_window": slo.window,
    }
    if profile.factor != 1:
        labels["slo_profile"] = profile.name
    return labels


def _identity(slo: slo_spec.Slo, profile: Profile) -> str:
    """A selector of exactly this SLO's recorded series in this profile.

    Series of the other profile, or of this SLO before its window or SLI changed, stay in
    the range selections (a 30d sum_over_time) long after; matched by service and name
    alone, they would collide once the rule stamps its labels.
    """
    labels = {**_labels(slo, profile), "slo_profile": "" if profile.factor == 1 else profile.name}
    return "{" + ", ".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def _static(slo: slo_spec.Slo, profile: Profile, record: str, value: float) -> dict[str, Any]:
    """A constant of one SLO, with its service as a label (``vector()`` has none)."""
    return {"record": record, "expr": f"vector({value:.10g})", "labels": _labels(slo, profile)}


def recording_rules(slo: slo_spec.Slo, profile: Profile) -> list[dict[str, Any]]:
    """The SLI, budget and objective series of one SLO."""
    labels = _labels(slo, profile)
    short = profile.window(SLI_WINDOWS[0])
    total, bad = _events(slo, short)
    rules: list[dict[str, Any]] = [
        {"record": "slo:sli_total:rate5m", "expr": total, "labels": labels},
        {"record": "slo:sli_bad:rate5m", "expr": _bad_or_zero(total, bad), "labels": labels},
    ]
    for seconds in SLI_WINDOWS:
        total, bad = _events(slo, profile.window(seconds))
        rules.append(
            {
                "record": f"slo:sli_error:ratio_{_window_name(seconds)}",
                "expr": f"{_bad_or_zero(total, bad)}\n/\n{_nested(total, '> 0')}",
                "labels": labels,
            }
        )
    # Over the SLO's window, from the 5m rates recorded above: weighted by traffic, and
    # cheap, where a rate() over 30 days would read every raw sample of the month.
    match = _identity(slo, profile)
    period = profile.period(slo)
    rules += [
        {
            "record": "slo:sli_error:ratio_period",
            "expr": (
                f"sum_over_time(slo:sli_bad:rate5m{match}[{period}])\n/\n"
                f"(sum_over_time(slo:sli_total:rate5m{match}[{period}]) > 0)"
            ),
            "labels": labels,
        },
        _static(slo, profile, "slo:objective:ratio", slo.objective),
        _static(slo, profile, "slo:error_budget:ratio", slo.budget),
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": f"1 - slo:sli_error:ratio_period{match} / {slo.budget:.10g}",
            "labels": labels,
        },
    ]
    for rule in rules:
        rule["expr"] = render_rules._expr(rule["expr"], {})  # noqa: SLF001
    return rules


def _what(slo: slo_spec.Slo) -> str:
    if slo.sli == "latency" and slo.threshold is not None:
        return f"took longer than {slo_spec._seconds_text(slo.threshold)}"  # noqa: SLF001
    return "failed"


def _evidence(slo: slo_spec.Slo, burn: BurnAlert, profile: Profile) -> dict[str, str]:
    """Links to the traces and logs of the alert's long window, and to the dashboard."""
    settings = render_rules.Settings(runbook_base=profile.runbook_base)
    links = render_rules.evidence_links(settings, burn.long_window // profile.factor)
    if slo.sli == "latency" and slo.threshold is not None:
        # Jaeger finds the slow traces by duration, where the failed ones need a tag.
        slow = f"minDuration={slo_spec._seconds_text(slo.threshold)}"  # noqa: SLF001
        for key in ("traces_url", "traces_api_url"):
            links[key] = links[key].replace(render_rules.ERROR_TRACES_FILTER, slow)
    service = "{{ $labels.service_name | urlquery }}"
    links["dashboard_url"] = (
        f"{profile.grafana_url.rstrip('/')}/d/{DASHBOARD_UID}/{DASHBOARD_SLUG}"
        f"?var-service={service}&var-slo={slo.name}"
    )
    return links


def alert_rule(slo: slo_spec.Slo, burn: BurnAlert, profile: Profile) -> dict[str, Any]:
    """One burn-rate alert of one SLO."""
    threshold = f"{burn.burn_rate * slo.budget:.10g}"
    match = _identity(slo, profile)
    long_name = _window_name(burn.long_window)
    short_name = _window_name(burn.short_window)
    long_window = profile.window(burn.long_window)
    short_window = profile.window(burn.short_window)
    demo = "" if profile.factor == 1 else f"[{profile.name} profile, windows /{profile.factor}] "
    period = slo.window
    if profile.factor != 1:
        period += f" ({profile.period(slo)} in this profile)"
    exhausted = render_rules.parse_duration(profile.period(slo)) / 86400 / burn.burn_rate
    labels = {
        **_labels(slo, profile),
        "severity": burn.severity,
        "response": burn.response,
        "burn_rate": f"{burn.burn_rate:g}",
        "long_window": long_window,
        "short_window": short_window,
    }
    return {
        "alert": "Ttbt5ErrorBudgetBurn",
        "expr": (
            f"slo:sli_error:ratio_{long_name}{match} > {threshold}\n"
            f"and\nslo:sli_error:ratio_{short_name}{match} > {threshold}\n"
        ),
        "for": profile.window(burn.for_seconds),
        "labels": labels,
        "annotations": {
            "summary": (
                f"{demo}{{{{ $labels.service_name }}}}: {slo.name} SLO burns its error "
                f"budget {burn.burn_rate:g}x too fast"
            ),
            "description": (
                f"{demo}{{{{ $value | humanizePercentage }}}} of the requests of "
                f"{{{{ $labels.service_name }}}} ({{{{ $labels.deployment_environment_name }}}}) "
                f"{_what(slo)} over the last {long_window}, and still over "
                f"{burn.burn_rate:g}x the budget in the last {short_window}. The objective is "
                f"{slo.objective_percent} % over {period}, a budget of "
                f"{slo.budget * 100:.10g} %, which a {burn.burn_rate:g}x burn spends in "
                f"{_days_text(exhausted)}."
            ),
            "runbook_url": f"{profile.runbook_base}#error-budget-burn",
            **_evidence(slo, burn, profile),
        },
    }


def _days_text(days: float) -> str:
    return f"{days:.3g} days" if days >= 1 else f"{days * 24:.3g} hours"


def rule_file(slos: list[slo_spec.Slo], profile: Profile) -> dict[str, Any]:
    """One rule group per SLO: its recording rules, then its alerts.

    In one group, so that the alerts read the SLI of the same evaluation: groups run on
    their own timers, and an alert in another group would see it up to an interval late.
    """
    groups = []
    for slo in slos:
        group: dict[str, Any] = {"name": f"ttbt5-slo-{slo.service}-{slo.name}"}
        if profile.interval:
            group["interval"] = profile.interval
        # A burn the budget cannot reach (14.4x of a 10 % budget is over 100 % bad requests)
        # would be an alert that never fires: left out.
        group["rules"] = recording_rules(slo, profile) + [
            alert_rule(slo, burn, profile)
            for burn in BURN_ALERTS
            if burn.burn_rate * slo.budget < 1
        ]
        groups.append(group)
    return {"groups": groups}


def _header(profile: Profile) -> str:
    lines = [
        "# SLI, error-budget and burn-rate rules of the SLOs in dashboards/slos.yaml.",
        "#",
        "# Generated by dashboards/prometheus/render_slos.py: edit the spec and run it, do not",
        "# edit this file.",
    ]
    if profile.factor != 1:
        lines += [
            "#",
            (
                f"# DEMO PROFILE: every window and for: divided by {profile.factor} (5m -> "
                f"{profile.window(300)}, 1h -> {profile.window(3600)}, 30d -> "
                f"{render_rules.format_duration(30 * 86400 // profile.factor)}), evaluated "
                f"every {profile.interval},"
            ),
            (
                "# so that a demo incident pages within a minute. Its alerts carry "
                f'slo_profile="{profile.name}". Load it instead of'
            ),
            "# rules/ttbt5-slos.yml, never beside it: the rule names are the same.",
        ]
    return "\n".join(lines) + "\n\n"


class _Dumper(render_rules._Dumper):  # noqa: SLF001
    """The rule files' block style, with every mapping written out (no YAML aliases)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002
        return True


def render(slos: list[slo_spec.Slo], profile: Profile) -> str:
    """The text of one profile's rule file."""
    dump = {"Dumper": _Dumper, "sort_keys": False, "width": 1000}
    return _header(profile) + yaml.dump(rule_file(slos, profile), **dump)  # type: ignore[call-overload]


def outputs(spec: Path, grafana_url: str = GRAFANA_URL) -> dict[Path, str]:
    """Path -> text of every file rendered from ``spec``."""
    slos = slo_spec.load(spec)
    return {
        STANDARD_PATH: render(slos, Profile("standard", 1, None, grafana_url)),
        DEMO_PATH: render(slos, Profile("demo", DEMO_FACTOR, "1s", grafana_url)),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spec", type=Path, default=slo_spec.SPEC_FILE)
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    parser.add_argument("--grafana-url", default=GRAFANA_URL, help="base URL of Grafana")
    arguments = parser.parse_args(argv)
    try:
        rendered = outputs(arguments.spec, arguments.grafana_url)
    except slo_spec.SpecError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    stale = []
    for path, text in rendered.items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        stale.append(path)
        if not arguments.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            sys.stdout.write(f"wrote {path}\n")
    if arguments.check and stale:
        sys.stdout.write("".join(f"stale: {path}\n" for path in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
