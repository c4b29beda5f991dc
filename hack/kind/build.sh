#!/usr/bin/env bash
# Builds `kind` from its Go module (sigs.k8s.io/kind), offline after the first
# module download: no release binary, so pytest-kind never downloads one
# (tests/support/cluster.py hands it this path). A small wrapper module
# requires sigs.k8s.io/kind at the pinned version and builds its main package.
# The binary is cached under ${COALMINE_CACHE:-~/.cache/coalmine}/kind-<version>/kind,
# so a second run is instant. Progress goes to stderr; the binary's path is
# printed on stdout, for callers:  kind="$(hack/kind/build.sh)".
#
# Environment:
#   KIND_VERSION    sigs.k8s.io/kind version to build (default below)
#   COALMINE_CACHE  cache root (default ~/.cache/coalmine)
set -euo pipefail

# The newest kind release on the Go module proxy when this was written
# (`go list -m -versions sigs.k8s.io/kind`); bump deliberately. Its default node
# image (kindest/node) is what `kind create cluster` uses.
KIND_VERSION="${KIND_VERSION:-v0.33.0}"

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $KIND_VERSION == v0.* ]] || die "KIND_VERSION must be a kind release such as v0.33.0 (got $KIND_VERSION)"
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || die "go is required to build kind"

cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
dir="$cache/kind-$KIND_VERSION"
bin="$dir/kind"

if [[ -x $bin ]]; then
  step "kind $KIND_VERSION cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

work="$cache/build/kind-$KIND_VERSION"
mkdir -p "$work" "$dir"
printf 'module coalmine.dev/hack/kind\n\ngo 1.24\n\nrequire sigs.k8s.io/kind %s\n' "$KIND_VERSION" >"$work/go.mod"
step "building kind $KIND_VERSION from Go modules (cached after the first build)"
start=$SECONDS
(cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 10 go build -trimpath -ldflags "-s -w" \
  -o "$bin.tmp" sigs.k8s.io/kind)
mv "$bin.tmp" "$bin"
step "kind $KIND_VERSION built in $((SECONDS - start)) s: $("$bin" version)"
printf '%s\n' "$bin"
