#!/usr/bin/env bash
# Build the local stack's metrics query layer, Thanos (one binary for `thanos
# query` and `thanos sidecar` in front of the two Prometheus replicas).
#
#   bash collector/thanos/build.sh     # from any directory
#
# Prints the absolute path of the binary. Does nothing beyond that when it is
# already built from the current go.mod, go.sum and this script. Output goes to
# collector/_build/ (git-ignored), beside the collector. Needs Go and a Go module
# proxy on the first run; the Go toolchain on the PATH is used as is
# (GOTOOLCHAIN=local). A cold build takes minutes (Thanos is large); later runs
# reuse Go's module and build caches.
set -euo pipefail

# Pinned version; go.mod records it as a tool, with Thanos's replace directives.
# v0.42.5 needs go >= 1.26.10, so it cannot be built with GOTOOLCHAIN=local on an
# older Go 1.26.
THANOS=github.com/thanos-io/thanos/cmd/thanos
THANOS_VERSION=v0.42.4

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
build_dir="$(dirname -- "$here")/_build"
thanos_bin="$build_dir/ttbt5-thanos"
stamp="$build_dir/.thanos-stamp"

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -trimpath"

mkdir -p "$build_dir"
cd "$here"
exec 9>"$build_dir/.thanos-lock"
flock 9

want="$(cat go.mod go.sum build.sh 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ -x "$thanos_bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  printf '%s\n' "$thanos_bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "thanos/build.sh: Go is required to build Thanos (go not found on PATH)" >&2
  exit 1
fi

rm -f "$stamp"
log="$build_dir/thanos-build.log"
: >"$log"
# go.mod and go.sum are committed; `go get -tool` only fills them in when they lack
# the pinned version (a first checkout of a new pin). The replace block in go.mod
# must match Thanos's own go.mod at that version (see go.mod).
if ! grep -q "^tool $THANOS\$" go.mod || ! grep -q "thanos-io/thanos $THANOS_VERSION" go.mod; then
  echo "Resolving $THANOS@$THANOS_VERSION ..." >&2
  go get -tool "$THANOS@$THANOS_VERSION" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
fi

# Build as Thanos's release builds do (.promu.yml): static (CGO off), tags netgo and
# slicelabels, version stamped into prometheus/common/version (`thanos --version`,
# thanos_build_info). slicelabels is REQUIRED: Thanos casts Prometheus's
# labels.Labels to its own protobuf labels with unsafe, assuming the slice layout;
# without the tag Prometheus's default (stringlabels) layout is compiled in, label
# sets get garbage sizes, and the sidecar panics on query's first Info call
# ("index out of range [64] with length 63" in grpc's buffer pool).
echo "Building Thanos (several minutes on a cold cache; log: $log) ..." >&2
CGO_ENABLED=0 go build -tags netgo,slicelabels \
  -ldflags "-X github.com/prometheus/common/version.Version=${THANOS_VERSION#v}" \
  -o "$thanos_bin" "$THANOS" >>"$log" 2>&1 \
  || { tail -n 30 "$log" >&2; echo "thanos/build.sh: Thanos build failed" >&2; exit 1; }

want="$(cat go.mod go.sum build.sh | sha256sum | cut -d' ' -f1)"
echo "$want" >"$stamp"
printf '%s\n' "$thanos_bin"
