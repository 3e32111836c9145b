#!/usr/bin/env bash
# Build the local stack's trace store (Jaeger v2) and log store (VictoriaLogs).
#
#   bash collector/stores/build.sh     # from any directory
#
# Prints the absolute paths of the two binaries, one per line. Does nothing
# beyond that when both are already built from the current go.mod, go.sum and
# this script. Output goes to collector/_build/ (git-ignored), beside the
# collector. Needs Go and a Go module proxy on the first run; the Go toolchain
# on the PATH is used as is (GOTOOLCHAIN=local). A cold build takes minutes
# (Jaeger is large); later runs reuse Go's module and build caches.
set -euo pipefail

# Pinned versions; go.mod records Jaeger's as a tool.
JAEGER=github.com/jaegertracing/jaeger/cmd/jaeger
JAEGER_VERSION=v1.76.0
VICTORIALOGS=github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs
VICTORIALOGS_VERSION=v1.52.1

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
build_dir="$(dirname -- "$here")/_build"
jaeger_bin="$build_dir/ttbt5-jaeger"
vlogs_bin="$build_dir/ttbt5-victoria-logs"
stamp="$build_dir/.stores-stamp"

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -trimpath"

mkdir -p "$build_dir"
cd "$here"
exec 9>"$build_dir/.stores-lock"
flock 9

want="$(cat go.mod go.sum build.sh 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ -x "$jaeger_bin" && -x "$vlogs_bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  printf '%s\n%s\n' "$jaeger_bin" "$vlogs_bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "stores/build.sh: Go is required to build Jaeger and VictoriaLogs (go not found on PATH)" >&2
  exit 1
fi

rm -f "$stamp"
log="$build_dir/stores-build.log"
: >"$log"
# go.mod and go.sum are committed; `go get -tool` only fills them in when they lack
# the pinned version (a first checkout of a new pin).
if ! grep -q "^tool $JAEGER\$" go.mod || ! grep -q "jaegertracing/jaeger $JAEGER_VERSION" go.mod; then
  echo "Resolving $JAEGER@$JAEGER_VERSION ..." >&2
  go get -tool "$JAEGER@$JAEGER_VERSION" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
fi

# VictoriaLogs has no replace directives: `go install` builds it at the pinned version
# in a module graph of its own (sharing one with Jaeger would move Jaeger's
# dependencies to versions it was not released with).
echo "Building VictoriaLogs (log: $log) ..." >&2
GOBIN="$build_dir/.victorialogs-bin" go install "$VICTORIALOGS@$VICTORIALOGS_VERSION" >>"$log" 2>&1 \
  || { tail -n 30 "$log" >&2; echo "stores/build.sh: VictoriaLogs build failed" >&2; exit 1; }
mv -f "$build_dir/.victorialogs-bin/victoria-logs" "$vlogs_bin"
echo "Building Jaeger (several minutes on a cold cache; log: $log) ..." >&2
go build -o "$jaeger_bin" "$JAEGER" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "stores/build.sh: Jaeger build failed" >&2; exit 1; }

want="$(cat go.mod go.sum build.sh | sha256sum | cut -d' ' -f1)"
echo "$want" >"$stamp"
printf '%s\n%s\n' "$jaeger_bin" "$vlogs_bin"
