#!/usr/bin/env bash
# Build the ttbt5-otelcol collector distribution described by manifest.yaml.
#
#   bash collector/build.sh          # from any directory
#
# Prints the absolute path of the binary as its last line. Does nothing (beyond
# printing that path) when the binary is already built from the current
# manifest and script, so callers can run it unconditionally before using the
# collector. Everything it writes lives under collector/_build/ (git-ignored):
# the builder in _build/bin, the generated Go sources, the binary, a log.
#
# Needs Go and access to a Go module proxy on the first run; the Go toolchain
# on the PATH is used as is (GOTOOLCHAIN=local), never a downloaded one.
set -euo pipefail

# Must match every component version in manifest.yaml.
BUILDER_VERSION=v0.161.0
DIST_NAME=ttbt5-otelcol

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
build_dir="$here/_build"
binary="$build_dir/$DIST_NAME"
stamp="$build_dir/.stamp"
builder="$build_dir/bin/builder"

export GOTOOLCHAIN=local
# The generated module sits inside this repository's work tree; stamping VCS
# data into the binary would make the build depend on git being usable here.
case " ${GOFLAGS:-} " in
  *" -buildvcs="*) ;;
  *) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" ;;
esac

mkdir -p "$build_dir"
cd "$here"

# Concurrent callers (a test run and a local stack, say) wait for one build
# instead of writing the same files at once.
exec 9>"$build_dir/.lock"
flock 9

want="$(cat manifest.yaml build.sh | sha256sum | cut -d' ' -f1)"
if [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$binary"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is required to build the collector (go not found on PATH)" >&2
  exit 1
fi

if [[ ! -x "$builder" ]] || ! "$builder" version 2>&1 | grep -q " $BUILDER_VERSION\$"; then
  echo "Installing the collector builder $BUILDER_VERSION into $build_dir/bin ..." >&2
  GOBIN="$build_dir/bin" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
fi

rm -f "$stamp"
log="$build_dir/build.log"
echo "Building $DIST_NAME (log: $log) ..." >&2
if ! "$builder" --config manifest.yaml >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build.sh: the collector build failed; full log in $log" >&2
  exit 1
fi

# Written last, so an interrupted build is never mistaken for a finished one.
echo "$want" >"$stamp"
echo "$binary"
