#!/usr/bin/env bash
# Builds `helm` (v3) from its Go module, offline after the first module
# download: no release tarball. A small wrapper module requires
# helm.sh/helm/v3 at the pinned version and builds its cmd/helm. The binary is
# cached under ${COALMINE_CACHE:-~/.cache/coalmine}/helm-<version>/helm, so a
# second run is instant. Progress goes to stderr; the binary's path is printed
# on stdout, for callers:  helm="$(hack/helm/build.sh)".
#
# Environment:
#   HELM_VERSION    helm.sh/helm/v3 version to build (default below)
#   COALMINE_CACHE  cache root (default ~/.cache/coalmine)
set -euo pipefail

# The newest helm v3 release on the Go module proxy when this was written
# (`go list -m -versions helm.sh/helm/v3`); bump deliberately.
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

# step, die, run_logged: one progress line per step; go's output in a log
# shellcheck source=../lib/progress.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/progress.sh"

[[ $HELM_VERSION == v3.* ]] || die "HELM_VERSION must be a helm v3 release (got $HELM_VERSION)"
command -v go >/dev/null || die "go is required to build helm"

cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
dir="$cache/helm-$HELM_VERSION"
bin="$dir/helm"

if [[ -x $bin ]]; then
  step "helm $HELM_VERSION cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

work="$cache/build/helm-$HELM_VERSION"
mkdir -p "$work" "$dir"
log="$work/build.log"
: >"$log"
printf 'module coalmine.dev/hack/helm\n\ngo 1.24\n\nrequire helm.sh/helm/v3 %s\n' "$HELM_VERSION" >"$work/go.mod"
# The same version stamps helm's own Makefile sets: `helm version`, and the
# Kubernetes version that `helm template` and `helm lint` assume without a
# cluster (client-go v0.N -> 1.N; unset, helm would claim v1.20).
step "resolving helm $HELM_VERSION's modules (1/2)"
client_go="$(cd "$work" && GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/client-go 2>>"$log")" \
  || { tail -n 25 "$log" >&2; die "cannot resolve helm's modules; log: $log"; }
kube_minor="$(cut -d. -f2 <<<"$client_go")"
[[ $kube_minor =~ ^[0-9]+$ ]] || die "cannot read the client-go version of helm $HELM_VERSION ($client_go)"
ldflags="-s -w"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
done
pkg=helm.sh/helm/v3/internal/version
ldflags+=" -X $pkg.version=$HELM_VERSION -X $pkg.gitTreeState=clean"
step "building helm $HELM_VERSION from Go modules (2/2; cached after the first build)"
run_logged "$log" env -C "$work" CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 10 go build -trimpath \
  -ldflags "$ldflags" -o "$bin.tmp" helm.sh/helm/v3/cmd/helm
mv "$bin.tmp" "$bin"
step "helm $HELM_VERSION built: $("$bin" version --short)"
printf '%s\n' "$bin"
