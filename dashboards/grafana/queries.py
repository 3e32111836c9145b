"""Every PromQL query of the bundled Grafana dashboards, with the variables filled in.

Reads the committed dashboard JSON (what Grafana loads), so a check that runs these queries
against a Prometheus filled with real data checks exactly what the panels show:

    import sys; sys.path.insert(0, "dashboards/grafana")
    from queries import all_queries
    for query in all_queries(service="shop"):
        ...  # GET http://127.0.0.1:9090/api/v1/query?query=<query.expr>

    python dashboards/grafana/queries.py --service shop           # one JSON object a line

Grafana's own variables get fixed values: ``$__rate_interval`` and ``$__interval`` 1m (four
scrapes at the 10s scrape interval of dashboards/prometheus/prometheus.yml), ``$__range``
1h. ``$instance``, ``$collector`` and ``$slo`` (the error-budget dashboard's SLO names) are
regular expressions (``.*`` selects all, as the dashboards' "All" option does); ``$service``
is one service name.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel."""

    dashboard: str
    """The dashboard's uid."""
    panel: str
    """The panel's title."""
    ref_id: str
    """The query's letter within the panel (A, B, ...)."""
    expr: str
    """The PromQL expression with every variable replaced."""
    template: str
    """The expression as stored in the dashboard, with ``$variables``."""
    instant: bool
    """True for panels that query one instant (tables, bar gauges) rather than a range."""
    exemplar: bool = False
    """True for queries that also show exemplars (histogram range queries): their trace ids
    come from ``/api/v1/query_exemplars`` with the same expression."""


def variables(
    service: str,
    instance: str = ".*",
    *,
    collector: str = ".*",
    slo: str = ".*",
    rate_interval: str = "1m",
    time_range: str = "1h",
) -> dict[str, str]:
    """Values of every variable the dashboards use."""
    return {
        "service": service,
        "instance": instance,
        "collector": collector,
        "slo": slo,
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": time_range,
    }


def substitute(template: str, values: dict[str, str]) -> str:
    """Replace ``$name`` and ``${name}``; an unknown variable raises ``KeyError``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown dashboard variable ${name} in {template!r}")
        return values[name]

    return _VARIABLE.sub(replace, template)


def all_queries(
    service: str,
    instance: str = ".*",
    *,
    collector: str = ".*",
    slo: str = ".*",
    rate_interval: str = "1m",
    time_range: str = "1h",
    directory: Path = DASHBOARDS_DIR,
) -> list[PanelQuery]:
    """Every panel query of every dashboard in ``directory``, in dashboard and panel order."""
    values = variables(
        service,
        instance,
        collector=collector,
        slo=slo,
        rate_interval=rate_interval,
        time_range=time_range,
    )
    found: list[PanelQuery] = []
    for path in sorted(directory.glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        found.extend(
            PanelQuery(
                dashboard=model["uid"],
                panel=panel["title"],
                ref_id=target["refId"],
                expr=substitute(target["expr"], values),
                template=target["expr"],
                instant=bool(target.get("instant", False)),
                exemplar=bool(target.get("exemplar", False)),
            )
            for panel in model["panels"]
            for target in panel.get("targets", [])
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Print every query as one JSON object a line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--service", required=True, help="value of $service")
    parser.add_argument("--instance", default=".*", help="regular expression for $instance")
    parser.add_argument("--collector", default=".*", help="regular expression for $collector")
    parser.add_argument("--slo", default=".*", help="regular expression for $slo")
    parser.add_argument("--rate-interval", default="1m", help="value of $__rate_interval")
    parser.add_argument("--range", dest="time_range", default="1h", help="value of $__range")
    arguments = parser.parse_args(argv)
    for query in all_queries(
        arguments.service,
        arguments.instance,
        collector=arguments.collector,
        slo=arguments.slo,
        rate_interval=arguments.rate_interval,
        time_range=arguments.time_range,
    ):
        sys.stdout.write(json.dumps(asdict(query), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
