#!/usr/bin/env bash
# Set up (if needed), start the local stack and run the order-service demo's incident
# against it: within a minute, an error-budget page arrives and is shown.
#
#   bash scripts/demo.sh [--seconds N] [--rate R]
#
# The stack keeps running afterwards so Prometheus and Alertmanager can be opened on the
# printed addresses; `.venv/bin/ttbt5-otel stack down` stops it.
set -euo pipefail
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"
bash scripts/setup.sh
.venv/bin/ttbt5-otel stack up --with-redis
.venv/bin/ttbt5-otel demo --incident "$@"
echo
echo "The stack is still running, with the demo SLO profile (windows divided by 10)."
echo "  the whole scripted demo:     .venv/bin/ttbt5-otel demo"
echo "  the real SLO rules again:    .venv/bin/ttbt5-otel stack up --slo-profile standard"
echo "  stop it:                     .venv/bin/ttbt5-otel stack down"
