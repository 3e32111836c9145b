#!/usr/bin/env bash
# Set up (if needed) and run every check: lint, types, unit and integration tests.
#
#   bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"
bash scripts/setup.sh

.venv/bin/ruff check ttbt5_otel tests benchmarks examples dashboards scripts
.venv/bin/ruff format --check ttbt5_otel tests benchmarks examples dashboards scripts
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
# Short benchmark: fails only when a ratio to the raw SDK is 1.5x its target or worse.
.venv/bin/python benchmarks/bench_peers.py --quick --check
if [[ -z "${TTBT5_SKIP_MUTATION:-}" ]]; then
  .venv/bin/python scripts/mutation_check.py
fi
