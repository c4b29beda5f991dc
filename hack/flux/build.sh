#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller from Go modules and
# packs each as an image, coalmine/flux-<controller>:<version> (the static
# binary and /tmp, UID 65532), for the Flux end-to-end test (issue 18). No
# release binary, no registry, no Docker daemon. Also lays out what a test
# applies, without applying it: the controllers' CRDs, taken from the same
# module zips (config/crd/bases), and hack/flux/manifests/controllers.yaml
# with the image tags filled in.
#
# Versions: the newest pair whose go.mod accepts this machine's Go 1.26 (both
# v1.10.x require go >= 1.27.0) and the Flux 2.9 line, which supports
# Kubernetes 1.34 (>= 1.34.1), 1.35 and 1.36; 2.10 builds on Kubernetes 1.37
# libraries. kustomize-controller v1.9.6 requires source-controller/api v1.9.0:
# the same API minor as source-controller v1.9.6.
#
# Each controller is built as its own main module, from a copy of its module
# zip, with upstream's go.mod and go.sum and two changes made here at build
# time (nothing of Flux's is committed; GOFLAGS=-mod=mod adds the new sums):
#   - each go.mod replaces its own API module with ./api, a nested module that
#     the published zip leaves out: that replace is dropped, and the published
#     github.com/fluxcd/<controller>/api is taken at the version the go.mod
#     requires (the controller's own tag).
#   - source-controller v1.9.6 requires github.com/fluxcd/pkg/artifact v0.18.3,
#     whose zip the proxy refuses (`go list -deps .`: "reading .../github.com/
#     fluxcd/pkg/artifact/@v/v0.18.3.zip: 403 Forbidden, This module version
#     is not available"; it lists only v0.3.0 v0.5.0 v0.8.0 v0.18.0). It is
#     replaced by v0.18.0: v0.18.1 to v0.18.3 are dependency bumps only (in
#     fluxcd/pkg's history v0.18.0..v0.18.2 changes artifact/go.mod and go.sum
#     alone, and the proxy's v0.18.3.mod differs from v0.18.0's only in
#     required versions, which source-controller's go.mod requires at least as
#     high, so the build list is the same).
#
# Binaries, images and CRDs are cached under ${COALMINE_CACHE:-~/.cache/coalmine}/
# flux-<controller>-<version>/; the archives are copied to _out/images/, and the
# manifests are written to the directory the last line names:
#   kubectl apply --server-side -f DIR/crds && kubectl apply -f DIR/controllers.yaml
#
# Cold, each controller takes about ten minutes to build with GOFLAGS=-p=1 on
# a busy 2-core machine; the binaries are static and stripped, 101 MB
# (source-controller: Helm, OCI, cosign, notation and three clouds' SDKs
# linked in) and 86 MB. A cached run only copies the archives (2 s).
#
# Environment: SOURCE_CONTROLLER_VERSION, KUSTOMIZE_CONTROLLER_VERSION,
# COALMINE_CACHE, COALMINE_IMAGES_OUT, GOFLAGS (e.g. -p=1 on a busy machine).
set -euo pipefail

# Pinned; bump both together, within one Flux minor (`go list -m -versions
# github.com/fluxcd/source-controller`) and the cluster's Kubernetes support.
SOURCE_CONTROLLER_VERSION="${SOURCE_CONTROLLER_VERSION:-v1.9.6}"
KUSTOMIZE_CONTROLLER_VERSION="${KUSTOMIZE_CONTROLLER_VERSION:-v1.9.6}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out_dir="${COALMINE_IMAGES_OUT:-$repo/_out/images}"

# step, die, run_logged: one progress line per step; go's output in a log
# shellcheck source-path=SCRIPTDIR source=../lib/progress.sh
source "$here/../lib/progress.sh"

command -v go >/dev/null || die "go is required to build the Flux controllers"

cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
mkdir -p "$out_dir" "$cache/build"
rootfs=""
trap '[[ -z $rootfs ]] || rm -rf "$rootfs"' EXIT

module_dir() {
  (cd "$cache/build" && GOFLAGS=-mod=mod go mod download -json "$1") 2>>"$log" |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))'
}

# build_controller NAME VERSION STEP [OLD=NEW ...]: binary, CRDs and image of
# one controller; each OLD=NEW is a `go mod edit -replace`, made only where
# the go.mod requires exactly OLD (module@version), so that a version bump
# fails loudly instead of carrying a stale workaround.
build_controller() {
  local name="$1" version="$2" n="$3" module="github.com/fluxcd/$1"
  shift 3
  local rep
  local dir="$cache/flux-$name-$version" src work
  local bin="$dir/$name" image="$dir/coalmine-flux-$name.tar"
  log="$cache/build/flux-$name-$version.log"
  mkdir -p "$dir"
  if [[ ! -x $bin || ! -d $dir/crds ]]; then
    : >"$log"
    step "downloading $name $version and its dependencies ($n/6)"
    src="$(module_dir "$module@$version")" || die "cannot download $module@$version (see $log)"
    work="$cache/build/flux-$name-$version"
    rm -rf "$work" "$dir/crds"
    cp -r "$src" "$work"
    chmod -R u+w "$work"
    cp -r "$src/config/crd/bases" "$dir/crds.tmp"
    chmod -R u+w "$dir/crds.tmp"
    mv "$dir/crds.tmp" "$dir/crds"
    (cd "$work" && go mod edit -dropreplace="$module/api")
    for rep in "$@"; do
      [[ "$(awk -v m="${rep%%@*}" '$1 == m {print m "@" $2}' "$work/go.mod")" == "${rep%%=*}" ]] ||
        die "$name $version does not require ${rep%%=*}: review the replace $rep in $0"
      (cd "$work" && go mod edit -replace="$rep")
    done
    (cd "$work" && run_logged "${log%.log}-download.log" env GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
      nice -n 19 go list -deps .) || die "downloading $name's dependencies failed"
    step "building $name $version from Go modules ($n/6; minutes, cached after)"
    (cd "$work" && run_logged "$log" env CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
      nice -n 19 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .) || die "building $name failed"
    mv "$bin.tmp" "$bin"
    rm -rf "$work"
  fi
  if [[ ! -f $image || $bin -nt $image ]]; then
    step "packing coalmine/flux-$name:$version ($((n + 1))/6)"
    rootfs="$(mktemp -d)"
    install -m 0755 "$bin" "$rootfs/$name"
    mkdir -m 1777 "$rootfs/tmp"
    python3 "$repo/hack/images/mkimage.py" --rootfs "$rootfs" \
      --name "coalmine/flux-$name:$version" --output "$image.tmp" \
      --entrypoint "[\"/$name\"]" --user 65532:65532 --workdir /tmp \
      --label "org.opencontainers.image.title=coalmine-flux-$name" \
      --label "org.opencontainers.image.version=$version"
    mv "$image.tmp" "$image"
    rm -rf "$rootfs"
    rootfs=""
  fi
  cp "$image" "$out_dir/coalmine-flux-$name.tar"
  step "image ready: $out_dir/coalmine-flux-$name.tar ($(du -h "$image" | cut -f1))"
}

build_controller source-controller "$SOURCE_CONTROLLER_VERSION" 1 \
  github.com/fluxcd/pkg/artifact@v0.18.3=github.com/fluxcd/pkg/artifact@v0.18.0
build_controller kustomize-controller "$KUSTOMIZE_CONTROLLER_VERSION" 3

step "writing the CRDs and controllers.yaml (5/6)"
manifests="$cache/flux-manifests-$SOURCE_CONTROLLER_VERSION-$KUSTOMIZE_CONTROLLER_VERSION"
rm -rf "$manifests.tmp"
mkdir -p "$manifests.tmp/crds"
cp "$cache/flux-source-controller-$SOURCE_CONTROLLER_VERSION/crds/"*.yaml \
  "$cache/flux-kustomize-controller-$KUSTOMIZE_CONTROLLER_VERSION/crds/"*.yaml "$manifests.tmp/crds/"
sed -e "s|@SOURCE_CONTROLLER_VERSION@|$SOURCE_CONTROLLER_VERSION|g" \
  -e "s|@KUSTOMIZE_CONTROLLER_VERSION@|$KUSTOMIZE_CONTROLLER_VERSION|g" \
  "$here/manifests/controllers.yaml" >"$manifests.tmp/controllers.yaml"
rm -rf "$manifests"
mv "$manifests.tmp" "$manifests"
step "manifests ready (6/6): $manifests"
printf '%s\n' "$manifests"
