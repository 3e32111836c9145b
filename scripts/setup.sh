#!/usr/bin/env bash
# Prepare a fresh Debian machine for ttbt5-otel: system packages, a virtualenv with the
# package and its development extras, the collector distribution, the trace and log
# stores (Jaeger, VictoriaLogs) and the metrics query layer of the HA topology (Thanos).
#
#   bash scripts/setup.sh
#
# Safe to run again: every step skips work that is already done.
set -euo pipefail
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if ((${#need_apt[@]})); then
  echo "Installing ${need_apt[*]} ..." >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi
# The Debian packages start system-wide services on the stack's ports; the stack and the
# tests run their own instances on 127.0.0.1, so the packaged ones are stopped.
for service in prometheus prometheus-alertmanager redis-server prometheus-node-exporter; do
  if command -v service >/dev/null 2>&1; then
    service "$service" stop >/dev/null 2>&1 || true
  fi
done

# The Go builds (minutes when cold) download and compile while pip installs; their
# output is kept for a failure report.
mkdir -p collector/_build
stores_log="collector/_build/stores-setup.log"
bash collector/stores/build.sh >/dev/null 2>"$stores_log" &
stores_pid=$!
thanos_log="collector/_build/thanos-setup.log"
bash collector/thanos/build.sh >/dev/null 2>"$thanos_log" &
thanos_pid=$!

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,redis,disk,yaml]"

bash collector/build.sh >/dev/null
if ! wait "$stores_pid"; then
  cat "$stores_log" >&2
  echo "setup.sh: building Jaeger and VictoriaLogs failed" >&2
  exit 1
fi
if ! wait "$thanos_pid"; then
  cat "$thanos_log" >&2
  echo "setup.sh: building Thanos failed" >&2
  exit 1
fi
echo "setup done: $(.venv/bin/python --version), collector, Jaeger, VictoriaLogs and Thanos in collector/_build/" >&2
