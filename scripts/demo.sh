#!/usr/bin/env bash
# Set up (if needed) and run the example application with readable console telemetry.
#
#   bash scripts/demo.sh
set -euo pipefail
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"
bash scripts/setup.sh
.venv/bin/python examples/quickstart.py
